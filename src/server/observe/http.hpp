// SPDX-License-Identifier: Apache-2.0
// The metrics listener's HTTP: reading a request's head and writing a response. Pure, no I/O.
//
// Written here rather than taken from an HTTP library because the metrics listener needs only
// GET and HEAD of two fixed paths, one request per connection, no body, and Connection: close.
// A library such as civetweb brings its own threads, so the daemon's counters would need locks
// or atomics, and its own limits and timeouts beside the daemon's; this parser runs on the
// daemon's single event loop, under the same admission caps and deadline as the port mapper
// port, and is small enough to read in full (and is fuzzed: fuzz/http_fuzzer.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace epmdx::server::http {

// Most bytes of request line and headers read; a request that has not ended by then is refused.
inline constexpr std::size_t max_request_head = 8192;

struct Request {
    enum class Status : std::uint8_t {
        incomplete,  // the head has not ended yet: read more
        complete,    // method and target are set
        bad,         // not an HTTP/1.0 or HTTP/1.1 request head
        too_large,   // max_request_head bytes and still no end of the head
    };
    Status status = Status::incomplete;
    std::string_view method;  // views into the parsed bytes
    std::string_view target;
};

// Parses what has arrived so far: a request line, header lines, and the empty line ending them.
// Lines end with CRLF or a bare LF. Anything after the empty line is ignored (no bodies).
Request parse_request(std::string_view received);

struct Response {
    int status = 0;
    std::string text;  // status line, headers and body, ready to send
};

// The response to a complete request. metrics_body is called only for GET /metrics.
template <typename RenderMetrics>
Response respond(const Request& request, RenderMetrics&& metrics_body);

// The response for a status without a route (400, 431): a short text body.
Response error_response(int status);

// ---- Implementation of respond (a template: the renderer is the server's) ----

// The route: 200 for a known path and method, else 404 or 405.
enum class Route : std::uint8_t { metrics, health, not_found, method_not_allowed };
Route route(const Request& request);
// Status line and headers for a body of the given type and length; without the body for HEAD.
Response make_response(int status, std::string_view content_type, std::string_view body,
                       bool head_only, std::string_view extra_headers = {});

inline constexpr std::string_view exposition_type = "text/plain; version=0.0.4; charset=utf-8";

template <typename RenderMetrics>
Response respond(const Request& request, RenderMetrics&& metrics_body) {
    const bool head_only = request.method == "HEAD";
    switch (route(request)) {
        case Route::metrics:
            return make_response(200, exposition_type, metrics_body(), head_only);
        case Route::health:
            return make_response(200, "text/plain; charset=utf-8", "OK\n", head_only);
        case Route::not_found:
            return make_response(404, "text/plain; charset=utf-8", "Not Found\n", head_only);
        case Route::method_not_allowed:
            return make_response(405, "text/plain; charset=utf-8", "Method Not Allowed\n",
                                 head_only, "Allow: GET, HEAD\r\n");
    }
    return error_response(400);
}

}  // namespace epmdx::server::http
