// SPDX-License-Identifier: Apache-2.0
// The -metrics listener: GET /metrics and GET /health over HTTP/1.1, one request per
// connection. It runs on the daemon's event loop with a protection of its own of the same kind
// as the port mapper port's (a connection cap that sheds the oldest, the packet deadline, bad
// requests closed), kept apart from the port mapper's so that nothing sent here takes a place,
// or time, from an epmd request: it never blocks, and reads at most http::max_request_head.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

#include "server/core/admission.hpp"
#include "server/core/connection.hpp"
#include "server/core/deadline_timer.hpp"
#include "server/core/listeners.hpp"
#include "server/observe/metrics.hpp"

namespace epmdx::server {

// Connections the metrics listener holds at once; the oldest is shed for a newcomer.
inline constexpr std::size_t max_metrics_connections = 32;

// An -metrics / ERL_EPMD_METRICS value: PORT (on 127.0.0.1 only), IPV4:PORT or [IPV6]:PORT.
// The error says what is wrong with the value.
std::variant<asio::ip::tcp::endpoint, std::string> parse_metrics_endpoint(std::string_view value);

class MetricsListener {
  public:
    MetricsListener(asio::io_context& io, Acceptor acceptor, Clock::duration deadline,
                    Metrics& metrics, std::function<std::string()> render);
    MetricsListener(const MetricsListener&) = delete;
    MetricsListener& operator=(const MetricsListener&) = delete;

    void start();
    void shutdown();
    std::size_t connections() const { return admission_.connections(); }

  private:
    asio::awaitable<void> accept_loop();
    void on_accepted(Socket socket);
    asio::awaitable<void> serve(std::unique_ptr<Connection> conn);
    void drop(Connection& conn);

    asio::io_context& io_;
    Acceptor acceptor_;
    Admission admission_;
    Metrics& metrics_;
    std::function<std::string()> render_;
    DeadlineTimer deadline_timer_;
    bool shutting_down_ = false;
};

}  // namespace epmdx::server
