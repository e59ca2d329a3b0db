// SPDX-License-Identifier: Apache-2.0
// The metrics listener's HTTP request parser and responses.
#include <gtest/gtest.h>

#include <string>

#include "server/observe/http.hpp"

namespace epmdx::server::http {
namespace {

using Status = Request::Status;

TEST(HttpParser, CompleteGetWithHeaders) {
    const std::string text = "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n";
    const Request request = parse_request(text);
    EXPECT_EQ(request.status, Status::complete);
    EXPECT_EQ(request.method, "GET");
    EXPECT_EQ(request.target, "/metrics");
}

TEST(HttpParser, BareLineFeedsAndHttp10) {
    const Request request = parse_request("HEAD /health HTTP/1.0\nHost: x\n\n");
    EXPECT_EQ(request.status, Status::complete);
    EXPECT_EQ(request.method, "HEAD");
}

TEST(HttpParser, IncompleteUntilTheEmptyLine) {
    const std::string text = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    for (std::size_t n = 0; n < text.size(); ++n) {
        EXPECT_EQ(parse_request(text.substr(0, n)).status, Status::incomplete) << n;
    }
    EXPECT_EQ(parse_request(text).status, Status::complete);
}

TEST(HttpParser, BadRequestLines) {
    for (const char* text :
         {"GET\r\n\r\n", "GET /metrics\r\n\r\n", "GET /metrics HTTP/2\r\n\r\n",
          "GET  /metrics HTTP/1.1\r\n\r\n", "G(T /metrics HTTP/1.1\r\n\r\n",
          "GET /met\x01rics HTTP/1.1\r\n\r\n", "\r\n\r\n", "GET /metrics HTTP/1.1 extra\r\n\r\n"}) {
        EXPECT_EQ(parse_request(text).status, Status::bad) << text;
    }
}

TEST(HttpParser, BadHeaderLines) {
    for (const char* text :
         {"GET / HTTP/1.1\r\nNoColon\r\n\r\n", "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
          "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", "GET / HTTP/1.1\r\n: x\r\n\r\n",
          "GET / HTTP/1.1\r\nHost: a\x01b\r\n\r\n"}) {
        EXPECT_EQ(parse_request(text).status, Status::bad) << text;
    }
}

TEST(HttpParser, BadIsSeenBeforeTheHeadEnds) {
    EXPECT_EQ(parse_request("BAD REQUEST\r\n").status, Status::bad);
    // Binary before the first line ends, such as a TLS client hello.
    EXPECT_EQ(parse_request(std::string("\x16\x03\x01\x02\x00", 5)).status, Status::bad);
    EXPECT_EQ(parse_request("GET /\x80").status, Status::bad);
}

TEST(HttpParser, TooLargeAtTheLimit) {
    std::string text = "GET / HTTP/1.1\r\n";
    while (text.size() < max_request_head - 1) {
        text += "X-Filler: 0123456789\r\n";
    }
    text.resize(max_request_head - 1, 'a');
    EXPECT_EQ(parse_request(text).status, Status::incomplete);
    text += 'a';
    EXPECT_EQ(parse_request(text).status, Status::too_large);
    // A head that ends just past the limit is still too large.
    EXPECT_EQ(parse_request(text + "\r\n\r\n").status, Status::too_large);
}

TEST(HttpRoute, PathsAndMethods) {
    const auto route_of = [](const char* text) { return route(parse_request(text)); };
    EXPECT_EQ(route_of("GET /metrics HTTP/1.1\r\n\r\n"), Route::metrics);
    EXPECT_EQ(route_of("GET /metrics?x=1 HTTP/1.1\r\n\r\n"), Route::metrics);
    EXPECT_EQ(route_of("HEAD /health HTTP/1.1\r\n\r\n"), Route::health);
    EXPECT_EQ(route_of("GET /metricsx HTTP/1.1\r\n\r\n"), Route::not_found);
    EXPECT_EQ(route_of("GET / HTTP/1.1\r\n\r\n"), Route::not_found);
    EXPECT_EQ(route_of("POST /metrics HTTP/1.1\r\n\r\n"), Route::method_not_allowed);
    EXPECT_EQ(route_of("DELETE /health HTTP/1.1\r\n\r\n"), Route::method_not_allowed);
}

TEST(HttpRespond, MetricsBodyAndHeaders) {
    int renders = 0;
    const auto render = [&renders] {
        ++renders;
        return std::string("a 1\n");
    };
    const Response ok = respond(parse_request("GET /metrics HTTP/1.1\r\n\r\n"), render);
    EXPECT_EQ(ok.status, 200);
    EXPECT_EQ(ok.text,
              "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
              "Content-Length: 4\r\nConnection: close\r\n\r\na 1\n");
    EXPECT_EQ(renders, 1);

    const Response head = respond(parse_request("HEAD /metrics HTTP/1.1\r\n\r\n"), render);
    EXPECT_NE(head.text.find("Content-Length: 4\r\n"), std::string::npos);
    EXPECT_TRUE(head.text.ends_with("\r\n\r\n"));

    const Response health = respond(parse_request("GET /health HTTP/1.1\r\n\r\n"), render);
    EXPECT_EQ(health.status, 200);
    EXPECT_TRUE(health.text.ends_with("\r\n\r\nOK\n"));
    EXPECT_EQ(renders, 2);  // only /metrics renders

    const Response post = respond(parse_request("POST /metrics HTTP/1.1\r\n\r\n"), render);
    EXPECT_EQ(post.status, 405);
    EXPECT_NE(post.text.find("\r\nAllow: GET, HEAD\r\n"), std::string::npos);
    EXPECT_EQ(respond(parse_request("GET /x HTTP/1.1\r\n\r\n"), render).status, 404);
    EXPECT_EQ(renders, 2);
}

TEST(HttpRespond, ErrorResponses) {
    const Response bad = error_response(400);
    EXPECT_TRUE(bad.text.starts_with("HTTP/1.1 400 Bad Request\r\n"));
    EXPECT_NE(bad.text.find("Connection: close\r\n"), std::string::npos);
    EXPECT_TRUE(
        error_response(431).text.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
}

}  // namespace
}  // namespace epmdx::server::http
