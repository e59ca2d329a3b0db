// SPDX-License-Identifier: Apache-2.0
#include "server/fleet/curl_library.hpp"

#include <dlfcn.h>

#include <mutex>
#include <stdexcept>

namespace epmdx::server::fleet {
namespace {

#ifdef __APPLE__
constexpr const char* library_name = "libcurl.4.dylib";
#else
constexpr const char* library_name = "libcurl.so.4";
#endif

struct Loaded {
    CurlFunctions functions{};
    std::string error;  // empty when functions is complete
};

// dlsym's answer as the member's type; false (and the error) when the symbol is missing.
template <typename Function>
bool bind(void* library, const char* name, Function& member, std::string& error) {
    void* symbol = ::dlsym(library, name);
    if (symbol == nullptr) {
        const char* why = ::dlerror();
        error = why != nullptr ? why : std::string(name) + ": not found";
        return false;
    }
    // POSIX guarantees a function's address survives the trip through void*.
    member = reinterpret_cast<Function>(symbol);
    return true;
}

Loaded load() {
    Loaded loaded;
    // Never closed: the functions stay in use until the process ends.
    void* library = ::dlopen(library_name, RTLD_NOW | RTLD_LOCAL);
    std::string error;
    if (library == nullptr) {
        const char* why = ::dlerror();
        error = why != nullptr ? why : library_name;
    } else {
        CurlFunctions& f = loaded.functions;
        (void)(bind(library, "curl_easy_init", f.easy_init, error) &&
               bind(library, "curl_easy_cleanup", f.easy_cleanup, error) &&
               bind(library, "curl_easy_reset", f.easy_reset, error) &&
               bind(library, "curl_easy_setopt", f.easy_setopt, error) &&
               bind(library, "curl_easy_perform", f.easy_perform, error) &&
               bind(library, "curl_easy_getinfo", f.easy_getinfo, error) &&
               bind(library, "curl_easy_strerror", f.easy_strerror, error) &&
               bind(library, "curl_slist_append", f.slist_append, error) &&
               bind(library, "curl_slist_free_all", f.slist_free_all, error) &&
               bind(library, "curl_url", f.url, error) &&
               bind(library, "curl_url_set", f.url_set, error) &&
               bind(library, "curl_url_get", f.url_get, error) &&
               bind(library, "curl_url_cleanup", f.url_cleanup, error) &&
               bind(library, "curl_free", f.free, error) &&
               bind(library, "curl_global_init", f.global_init, error));
    }
    if (error.empty() && loaded.functions.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        error = "curl_global_init failed";
    }
    if (!error.empty()) {
        loaded.error = "-fleet needs libcurl (Debian: libcurl4): " + error;
    }
    return loaded;
}

const Loaded& loaded() {
    static std::once_flag once;
    static Loaded result;
    std::call_once(once, [] { result = load(); });
    return result;
}

}  // namespace

std::optional<std::string> curl_load_error() {
    const Loaded& result = loaded();
    if (result.error.empty()) {
        return std::nullopt;
    }
    return result.error;
}

const CurlFunctions& libcurl() {
    const Loaded& result = loaded();
    if (!result.error.empty()) {
        throw std::runtime_error(result.error);
    }
    return result.functions;
}

}  // namespace epmdx::server::fleet
