// SPDX-License-Identifier: Apache-2.0
#include "server/observe/http.hpp"

namespace epmdx::server::http {
namespace {

// RFC 9110's token characters: methods and header names.
bool is_token_char(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        return true;
    }
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view text) {
    if (text.empty()) {
        return false;
    }
    for (const char c : text) {
        if (!is_token_char(c)) {
            return false;
        }
    }
    return true;
}

// Visible ASCII only: no spaces, controls or bytes above 0x7e.
bool is_target(std::string_view text) {
    if (text.empty()) {
        return false;
    }
    for (const char c : text) {
        if (c <= 0x20 || c >= 0x7f) {
            return false;
        }
    }
    return true;
}

// A header field value: tabs and visible characters (bytes above 0x7f allowed, as obs-text).
bool is_field_value(std::string_view text) {
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if ((byte < 0x20 && c != '\t') || byte == 0x7f) {
            return false;
        }
    }
    return true;
}

// What has come of a request line so far: visible ASCII and spaces only.
bool could_start_request_line(std::string_view partial) {
    for (const char c : partial) {
        if ((c < 0x20 && c != '\r') || c >= 0x7f) {
            return false;
        }
    }
    return true;
}

bool is_request_line(std::string_view line, Request& request) {
    const auto first_space = line.find(' ');
    if (first_space == std::string_view::npos) {
        return false;
    }
    const auto second_space = line.find(' ', first_space + 1);
    if (second_space == std::string_view::npos) {
        return false;
    }
    const std::string_view method = line.substr(0, first_space);
    const std::string_view target = line.substr(first_space + 1, second_space - first_space - 1);
    const std::string_view version = line.substr(second_space + 1);
    if (!is_token(method) || !is_target(target) ||
        (version != "HTTP/1.1" && version != "HTTP/1.0")) {
        return false;
    }
    request.method = method;
    request.target = target;
    return true;
}

bool is_header_line(std::string_view line) {
    const auto colon = line.find(':');
    // No whitespace between the name and the colon, and no folded continuation lines.
    return colon != std::string_view::npos && is_token(line.substr(0, colon)) &&
           is_field_value(line.substr(colon + 1));
}

std::string_view reason_phrase(int status) {
    switch (status) {
        case 200:
            return "OK";
        case 400:
            return "Bad Request";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 431:
            return "Request Header Fields Too Large";
        default:
            return "Error";
    }
}

}  // namespace

Request parse_request(std::string_view received) {
    Request request;
    std::size_t line_start = 0;
    bool first_line = true;
    for (;;) {
        const auto line_end = received.find('\n', line_start);
        if (first_line && line_end == std::string_view::npos &&
            !could_start_request_line(received)) {
            return Request{Request::Status::bad, {}, {}};  // e.g. a TLS handshake: say so now
        }
        if (line_end == std::string_view::npos || line_end >= max_request_head) {
            request.status = received.size() >= max_request_head ? Request::Status::too_large
                                                                 : Request::Status::incomplete;
            return request;
        }
        std::string_view line = received.substr(line_start, line_end - line_start);
        if (!line.empty() && line.back() == '\r') {
            line.remove_suffix(1);
        }
        line_start = line_end + 1;
        if (first_line) {
            if (!is_request_line(line, request)) {
                return Request{Request::Status::bad, {}, {}};
            }
            first_line = false;
        } else if (line.empty()) {
            request.status = Request::Status::complete;
            return request;
        } else if (!is_header_line(line)) {
            return Request{Request::Status::bad, {}, {}};
        }
    }
}

Route route(const Request& request) {
    std::string_view path = request.target;
    path = path.substr(0, path.find('?'));
    if (path != "/metrics" && path != "/health") {
        return Route::not_found;
    }
    if (request.method != "GET" && request.method != "HEAD") {
        return Route::method_not_allowed;
    }
    return path == "/metrics" ? Route::metrics : Route::health;
}

Response make_response(int status, std::string_view content_type, std::string_view body,
                       bool head_only, std::string_view extra_headers) {
    Response response;
    response.status = status;
    std::string& text = response.text;
    text.reserve(160 + (head_only ? 0 : body.size()));
    text += "HTTP/1.1 ";
    text += std::to_string(status);
    text += ' ';
    text += reason_phrase(status);
    text += "\r\nContent-Type: ";
    text += content_type;
    text += "\r\nContent-Length: ";
    text += std::to_string(body.size());
    text += "\r\nConnection: close\r\n";
    text += extra_headers;
    text += "\r\n";
    if (!head_only) {
        text += body;
    }
    return response;
}

Response error_response(int status) {
    std::string body(reason_phrase(status));
    body += '\n';
    return make_response(status, "text/plain; charset=utf-8", body, false);
}

}  // namespace epmdx::server::http
