// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the metrics listener's HTTP request parser. Arbitrary bytes are parsed
// as they would be on arrival (every prefix, as the listener re-parses after each read), and
// what is accepted must satisfy invariants that tie it back to the input and to the responses.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>

#include "server/observe/http.hpp"

namespace http = epmdx::server::http;

namespace {

void require(bool condition, const char* what) {
    if (!condition) {
        std::cerr << "invariant violated: " << what << std::endl;
        std::abort();
    }
}

bool inside(std::string_view part, std::string_view whole) {
    return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(  // NOLINT(readability-identifier-naming)
    const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    http::Request::Status previous = http::Request::Status::incomplete;
    // Every prefix of a short input; of a long one, enough of them to cross each boundary.
    const std::size_t step = input.size() <= 1024 ? 1 : 61;
    for (std::size_t n = 0; n <= input.size();
         n = n + step > input.size() && n < input.size() ? input.size() : n + step) {
        const std::string_view prefix = input.substr(0, n);
        const http::Request request = http::parse_request(prefix);
        // Once decided, more bytes change nothing: the listener stops reading there.
        if (previous != http::Request::Status::incomplete) {
            require(request.status == previous, "a decided request changed with more bytes");
            continue;
        }
        previous = request.status;
        require(request.status != http::Request::Status::too_large || n >= http::max_request_head,
                "too large below the limit");
        require(request.status != http::Request::Status::incomplete || n < http::max_request_head,
                "still incomplete at the limit");
        if (request.status != http::Request::Status::complete) {
            continue;
        }
        require(!request.method.empty() && !request.target.empty(), "empty method or target");
        require(inside(request.method, prefix) && inside(request.target, prefix),
                "method or target outside the input");
        const http::Response response = http::respond(request, [] { return std::string("x 1\n"); });
        require(response.status == 200 || response.status == 404 || response.status == 405,
                "unexpected status");
        require(response.text.starts_with("HTTP/1.1 ") &&
                    response.text.find("\r\nConnection: close\r\n") != std::string::npos,
                "malformed response");
    }
    return 0;
}
