// SPDX-License-Identifier: Apache-2.0
#include "server/observe/metrics_listener.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include "server/config/values.hpp"
#include "server/observe/http.hpp"

namespace epmdx::server {
namespace {

using asio::use_awaitable;

// "VALUE" then why it is refused. Built by appending: GCC 12 at -O3 warns (-Wrestrict, falsely)
// about a literal prepended to a temporary string.
std::string refusal(std::string_view value, std::string_view why) {
    std::string text = "\"";
    text.append(value).append("\"").append(why);
    return text;
}

}  // namespace

std::variant<asio::ip::tcp::endpoint, std::string> parse_metrics_endpoint(std::string_view value) {
    const auto colon = value.rfind(':');
    const std::string_view port_text =
        colon == std::string_view::npos ? value : value.substr(colon + 1);
    const auto port = parse_port(port_text);
    if (!port) {
        return refusal(value,
                       " is not [ADDRESS:]PORT with a port from 1 to 65535 (IPv6 as [::1]:PORT)");
    }
    if (colon == std::string_view::npos) {
        return asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), *port);
    }
    std::string_view host = value.substr(0, colon);
    const bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
    if (bracketed) {
        host = host.substr(1, host.size() - 2);
    }
    std::error_code error;
    const auto address = asio::ip::make_address(std::string(host), error);
    if (error || address.is_v6() != bracketed) {
        return refusal(value, ": the address is not an IPv4 address or a bracketed IPv6 address");
    }
    return asio::ip::tcp::endpoint(address, *port);
}

MetricsListener::MetricsListener(asio::io_context& io, Acceptor acceptor, Clock::duration deadline,
                                 Metrics& metrics, std::function<std::string()> render)
    : io_(io),
      acceptor_(std::move(acceptor)),
      admission_({max_metrics_connections, 0, deadline}),
      metrics_(metrics),
      render_(std::move(render)),
      deadline_timer_(io, admission_, [this](Connection& late) {
          metrics_.http(HttpEvent::deadline);
          drop(late);
      }) {}

void MetricsListener::start() {
    asio::co_spawn(io_, accept_loop(), asio::detached);
}

void MetricsListener::shutdown() {
    shutting_down_ = true;
    std::error_code ignored;
    acceptor_.close(ignored);
    deadline_timer_.stop();
    while (Connection* oldest = admission_.oldest()) {
        drop(*oldest);
    }
}

asio::awaitable<void> MetricsListener::accept_loop() {
    asio::steady_timer pause(io_);
    while (!shutting_down_) {
        std::error_code error;
        Socket socket(io_);
        co_await acceptor_.async_accept(socket, asio::redirect_error(use_awaitable, error));
        if (error == asio::error::operation_aborted || shutting_down_) {
            break;
        }
        if (error) {
            // Out of descriptors, most likely: the port mapper's connections come first.
            pause.expires_after(std::chrono::milliseconds(100));
            co_await pause.async_wait(asio::redirect_error(use_awaitable, error));
            continue;
        }
        on_accepted(std::move(socket));
    }
}

void MetricsListener::on_accepted(Socket socket) {
    std::error_code error;
    const asio::ip::address peer = socket.remote_endpoint(error).address();
    if (error) {
        return;
    }
    switch (admission_.decide(peer)) {
        case Admission::Verdict::admit:
            break;
        case Admission::Verdict::shed_oldest:
            metrics_.http(HttpEvent::refused);
            drop(*admission_.oldest());
            break;
        case Admission::Verdict::refuse_per_address:
        case Admission::Verdict::refuse_full:
            metrics_.http(HttpEvent::refused);
            return;
    }
    socket.non_blocking(true, error);
    auto conn = std::make_unique<Connection>(admission_, std::move(socket), peer, Clock::now());
    deadline_timer_.arm();
    asio::co_spawn(io_, serve(std::move(conn)), asio::detached);
}

asio::awaitable<void> MetricsListener::serve(std::unique_ptr<Connection> conn) {
    // Read until the head is complete, bad or too large; the deadline closes a slow one, which
    // ends the read with an error.
    std::string received;
    std::array<char, 2048> chunk{};
    http::Request request;
    for (;;) {
        std::error_code error;
        const std::size_t room = http::max_request_head - received.size();
        const std::size_t n = co_await conn->socket.async_read_some(
            asio::buffer(chunk.data(), std::min(chunk.size(), room)),
            asio::redirect_error(use_awaitable, error));
        if (error) {
            if (!received.empty() && error != asio::error::operation_aborted &&
                error != asio::error::bad_descriptor) {
                metrics_.http(HttpEvent::bad_request);  // ended in the middle of a request
            }
            co_return;
        }
        received.append(chunk.data(), n);
        request = http::parse_request(received);
        if (request.status != http::Request::Status::incomplete) {
            break;
        }
    }
    http::Response response;
    switch (request.status) {
        case http::Request::Status::complete:
            response = http::respond(request, render_);
            break;
        case http::Request::Status::too_large:
            response = http::error_response(431);
            break;
        default:
            response = http::error_response(400);
            break;
    }
    switch (response.status) {
        case 200:
            metrics_.http(HttpEvent::ok);
            break;
        case 404:
            metrics_.http(HttpEvent::not_found);
            break;
        case 405:
            metrics_.http(HttpEvent::method_not_allowed);
            break;
        case 431:
            metrics_.http(HttpEvent::too_large);
            break;
        default:
            metrics_.http(HttpEvent::bad_request);
            break;
    }
    // Still under the deadline: a peer that does not read its response is closed at it.
    std::error_code error;
    co_await asio::async_write(conn->socket, asio::buffer(response.text),
                               asio::redirect_error(use_awaitable, error));
    if (!error) {
        conn->socket.shutdown(Socket::shutdown_both, error);
    }
}

void MetricsListener::drop(Connection& conn) {
    admission_.leave_pending(conn);
    std::error_code ignored;
    conn.socket.close(ignored);
}

}  // namespace epmdx::server
