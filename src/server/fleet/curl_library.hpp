// SPDX-License-Identifier: Apache-2.0
// libcurl, loaded at run time on the first -fleet use rather than linked: its ~35 libraries would
// otherwise be mapped by every start, and by every SIGHUP re-exec, of a daemon without -fleet.
// <curl/curl.h> still gives the types and constants; the functions come from this table.
#pragma once

#include <curl/curl.h>

#include <optional>
#include <string>

namespace epmdx::server::fleet {

// The libcurl functions epmdx calls. The members are not named after them: curl.h may define
// curl_easy_setopt and curl_easy_getinfo as macros.
struct CurlFunctions {
    decltype(&::curl_easy_init) easy_init;
    decltype(&::curl_easy_cleanup) easy_cleanup;
    decltype(&::curl_easy_reset) easy_reset;
    decltype(&::curl_easy_setopt) easy_setopt;
    decltype(&::curl_easy_perform) easy_perform;
    decltype(&::curl_easy_getinfo) easy_getinfo;
    decltype(&::curl_easy_strerror) easy_strerror;
    decltype(&::curl_slist_append) slist_append;
    decltype(&::curl_slist_free_all) slist_free_all;
    decltype(&::curl_url) url;
    decltype(&::curl_url_set) url_set;
    decltype(&::curl_url_get) url_get;
    decltype(&::curl_url_cleanup) url_cleanup;
    decltype(&::curl_free) free;
    decltype(&::curl_global_init) global_init;
};

// Loads libcurl and initialises it, once: nullopt when it is usable, else a message saying so and
// which package brings it. Every -fleet entry point (the daemon's configuration check, the
// command line's actions) asks this first.
std::optional<std::string> curl_load_error();

// The loaded functions; throws std::runtime_error with curl_load_error()'s message when libcurl
// cannot be loaded (a caller that did not ask first).
const CurlFunctions& libcurl();

}  // namespace epmdx::server::fleet
