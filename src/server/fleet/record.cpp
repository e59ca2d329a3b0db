// SPDX-License-Identifier: Apache-2.0
#include "server/fleet/record.hpp"

#include <limits.h>
#include <unistd.h>

#include <array>
#include <ctime>
#include <memory>
#include <set>
#include <utility>

#include "server/config/values.hpp"
#include "server/fleet/curl_library.hpp"

namespace epmdx::server::fleet {
namespace {

// Marks a value as ours, and the layout it has.
constexpr int value_format = 1;

constexpr std::string_view key_hex_digits = "0123456789ABCDEF";

std::string utc_text(std::chrono::system_clock::time_point when) {
    const std::time_t seconds = std::chrono::system_clock::to_time_t(when);
    std::tm parts{};
    (void)::gmtime_r(&seconds, &parts);
    std::array<char, 32> text{};
    const std::size_t length =
        std::strftime(text.data(), text.size(), "%Y-%m-%dT%H:%M:%SZ", &parts);
    return {text.data(), length};
}

bool is_unsigned_below(const nlohmann::json& value, std::uint64_t limit) {
    return value.is_number_unsigned() && value.get<std::uint64_t>() < limit;
}

struct UrlDeleter {
    void operator()(CURLU* url) const { libcurl().url_cleanup(url); }
};

// A part of a parsed URL, or nullopt when it has none.
std::optional<std::string> url_part(CURLU* url, CURLUPart part) {
    char* text = nullptr;
    if (libcurl().url_get(url, part, &text, 0) != CURLUE_OK) {
        return std::nullopt;
    }
    std::string copy(text);
    libcurl().free(text);
    return copy;
}

// nullopt if `item` is a usable endpoint, with its scheme ("http" or "https"), else why not.
std::optional<std::string> endpoint_error(const std::string& item, std::string& scheme) {
    const std::unique_ptr<CURLU, UrlDeleter> url(libcurl().url());
    if (!url || libcurl().url_set(url.get(), CURLUPART_URL, item.c_str(), 0) != CURLUE_OK) {
        return "\"" + item + "\" is not a URL (expected http://HOST:PORT or https://HOST:PORT)";
    }
    scheme = url_part(url.get(), CURLUPART_SCHEME).value_or("");
    if (scheme != "http" && scheme != "https") {
        return "\"" + item + "\": only http:// and https:// endpoints are supported";
    }
    const std::optional<std::string> path = url_part(url.get(), CURLUPART_PATH);
    if ((path && *path != "/") || url_part(url.get(), CURLUPART_QUERY) ||
        url_part(url.get(), CURLUPART_USER)) {
        return "\"" + item + "\": an endpoint is " + scheme + "://HOST:PORT, with nothing after it";
    }
    return std::nullopt;
}

// hex_text's bytes back; nullopt for anything it cannot have written.
std::optional<std::string> from_hex_text(std::string_view text) {
    static constexpr std::string_view digits = "0123456789abcdef";
    if (text.size() % 2 != 0) {
        return std::nullopt;
    }
    std::string bytes;
    for (std::size_t i = 0; i < text.size(); i += 2) {
        const std::size_t high = digits.find(text[i]);
        const std::size_t low = digits.find(text[i + 1]);
        if (high == std::string_view::npos || low == std::string_view::npos) {
            return std::nullopt;
        }
        bytes += static_cast<char>((high << 4U) | low);
    }
    return bytes;
}

bool kept_plain(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

}  // namespace

std::string escape_key_part(std::string_view bytes) {
    std::string out;
    for (const char c : bytes) {
        const auto byte = static_cast<unsigned char>(c);
        if (kept_plain(c)) {
            out += c;
        } else {
            out += '%';
            out += key_hex_digits[byte >> 4U];
            out += key_hex_digits[byte & 0xFU];
        }
    }
    return out;
}

std::optional<std::string> unescape_key_part(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (kept_plain(text[i])) {
            out += text[i];
            continue;
        }
        if (text[i] != '%' || i + 2 >= text.size()) {
            return std::nullopt;
        }
        const std::size_t high = key_hex_digits.find(text[i + 1]);
        const std::size_t low = key_hex_digits.find(text[i + 2]);
        if (high == std::string_view::npos || low == std::string_view::npos) {
            return std::nullopt;
        }
        const char byte = static_cast<char>((high << 4U) | low);
        if (kept_plain(byte)) {
            return std::nullopt;
        }
        out += byte;
        i += 2;
    }
    return out;
}

std::string nodes_prefix(std::string_view prefix) {
    return std::string(prefix) + "nodes/";
}

std::string host_prefix(std::string_view prefix, std::string_view host) {
    return nodes_prefix(prefix) + escape_key_part(host) + "/";
}

std::string node_key(std::string_view prefix, std::string_view host, std::string_view name) {
    return host_prefix(prefix, host) + escape_key_part(name);
}

std::optional<NodeKey> parse_node_key(std::string_view prefix, std::string_view key) {
    const std::string nodes = nodes_prefix(prefix);
    if (!key.starts_with(nodes)) {
        return std::nullopt;
    }
    const std::string_view rest = key.substr(nodes.size());
    const std::size_t slash = rest.find('/');
    if (slash == std::string_view::npos) {
        return std::nullopt;
    }
    std::optional<std::string> host = unescape_key_part(rest.substr(0, slash));
    std::optional<std::string> name = unescape_key_part(rest.substr(slash + 1));
    if (!host || !name || host->empty() || name->empty()) {
        return std::nullopt;
    }
    return NodeKey{std::move(*host), std::move(*name)};
}

std::string encode_node(const FleetNode& node) {
    const nlohmann::json value = {{"epmdx_fleet", value_format},
                                  {"name", node.info.name},
                                  {"host", node.host},
                                  {"port", node.info.port},
                                  {"type", node.info.node_type},
                                  {"protocol", node.info.protocol},
                                  {"highest_version", node.info.highest_version},
                                  {"lowest_version", node.info.lowest_version},
                                  {"extra_hex", hex_text(node.info.extra)},
                                  {"creation", node.creation},
                                  {"registered_since", utc_text(node.since)},
                                  {"static", node.is_static}};
    // A name's bytes that are not UTF-8 show as U+FFFD here; the key keeps them all, escaped.
    return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

wire::NodeInfo node_info(const nlohmann::json& value) {
    return {.port = value["port"].get<std::uint16_t>(),
            .node_type = value["type"].get<std::uint8_t>(),
            .protocol = value["protocol"].get<std::uint8_t>(),
            .highest_version = value["highest_version"].get<std::uint16_t>(),
            .lowest_version = value["lowest_version"].get<std::uint16_t>(),
            .name = value["name"].get<std::string>(),
            .extra = from_hex_text(value["extra_hex"].get<std::string>()).value_or("")};
}

std::optional<nlohmann::json> decode_node(std::string_view value) {
    nlohmann::json object = nlohmann::json::parse(value, nullptr, false);
    if (!object.is_object() || object.value("epmdx_fleet", 0) != value_format) {
        return std::nullopt;
    }
    const auto text = [&object](const char* field) {
        return object.contains(field) && object[field].is_string();
    };
    const auto number = [&object](const char* field, std::uint64_t limit) {
        return object.contains(field) && is_unsigned_below(object[field], limit);
    };
    const bool well_formed =
        text("name") && text("host") && text("extra_hex") && text("registered_since") &&
        number("port", 65536) && number("type", 256) && number("protocol", 256) &&
        number("highest_version", 65536) && number("lowest_version", 65536) &&
        number("creation", std::uint64_t{1} << 32U) && object.contains("static") &&
        object["static"].is_boolean() && from_hex_text(object["extra_hex"].get<std::string>());
    if (!well_formed) {
        return std::nullopt;
    }
    return object;
}

bool same_node(std::string_view stored, std::string_view wanted) {
    std::optional<nlohmann::json> old_node = decode_node(stored);
    std::optional<nlohmann::json> new_node = decode_node(wanted);
    if (!old_node || !new_node) {
        return false;
    }
    old_node->erase("registered_since");
    new_node->erase("registered_since");
    return *old_node == *new_node;
}

Endpoints parse_endpoints(std::string_view list) {
    Endpoints parsed;
    std::set<std::string> schemes;
    for (const std::string_view part : split(list, ',')) {
        const std::string item(part);
        std::string scheme;
        if (const std::optional<std::string> error = endpoint_error(item, scheme)) {
            parsed.errors.push_back(*error);
        } else {
            schemes.insert(scheme);
            parsed.urls.push_back(item.ends_with('/') ? item.substr(0, item.size() - 1) : item);
        }
    }
    if (schemes.size() > 1) {
        // Appended rather than added up: GCC 12 warns of an overlap in "..." + std::string.
        std::string message = "\"";
        message.append(list).append(
            "\" mixes http:// and https:// endpoints; use https:// for "
            "every one (or http:// for every one)");
        return Endpoints{.urls = {}, .errors = {message}, .https = false, .mixed = true};
    }
    parsed.https = schemes.contains("https");
    return parsed;
}

std::optional<std::string> tls_error(const FleetTls& tls, const Endpoints& endpoints) {
    if (!endpoints.urls.empty() && !endpoints.https &&
        (!tls.cacert.empty() || !tls.cert.empty() || !tls.key.empty())) {
        return "-fleet_cacert, -fleet_cert and -fleet_key are for https:// endpoints; these are "
               "http://";
    }
    if (tls.cert.empty() != tls.key.empty()) {
        return tls.cert.empty() ? "-fleet_key " + tls.key +
                                      " needs -fleet_cert, the certificate it is the key of"
                                : "-fleet_cert " + tls.cert + " needs -fleet_key, its private key";
    }
    const std::array<std::pair<std::string_view, const std::string*>, 3> files = {
        {{"-fleet_cacert", &tls.cacert}, {"-fleet_cert", &tls.cert}, {"-fleet_key", &tls.key}}};
    for (const auto& [option, path] : files) {
        std::string error;
        if (!path->empty() && !read_file(*path, error)) {
            return std::string(option) + ": " + error;
        }
    }
    return std::nullopt;
}

std::string short_host_name() {
    std::array<char, HOST_NAME_MAX + 1> name{};
    if (::gethostname(name.data(), name.size() - 1) != 0) {
        return "localhost";
    }
    const std::string full(name.data());
    return full.substr(0, full.find('.'));
}

}  // namespace epmdx::server::fleet
