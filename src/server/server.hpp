// The event loop's work: accepting connections, admitting or shedding them, serving one request
// per connection, holding registrations, and enforcing deadlines.
//
// Per-event cost does not depend on how many connections or nodes there are: connections waiting
// for a request sit on one list in accept order, so the oldest is the next to time out and the
// first to be shed, and one timer serves them all; registrations wait for readability with no
// timer at all.
#pragma once

#include <array>
#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "listeners.hpp"
#include "log.hpp"
#include "options.hpp"
#include "registry.hpp"

namespace epmdx::server {

using Socket = asio::basic_stream_socket<asio::ip::tcp, asio::io_context::executor_type>;
using Clock = std::chrono::steady_clock;

class Server {
  public:
    Server(asio::io_context& io, const DaemonOptions& options, Logger& log,
           std::vector<Acceptor> acceptors, std::size_t max_connections);
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;
    ~Server();

    // Starts accepting. io.run() returns once shutdown() has closed everything.
    void start();
    // Closes listeners and every connection, registrations included.
    void shutdown();

  private:
    struct Connection;
    // An intrusive list in insertion order; a connection is on at most one list at a time.
    struct ConnectionList {
        Connection* head = nullptr;
        Connection* tail = nullptr;
        void push_back(Connection& c);
        void erase(Connection& c);
    };

    asio::awaitable<void> accept_loop(Acceptor& acceptor);
    void admit(Socket socket, const asio::ip::address& peer);
    asio::awaitable<void> on_descriptors_exhausted(Acceptor& acceptor,
                                                   const std::error_code& error);
    asio::awaitable<void> serve(std::unique_ptr<Connection> conn);
    // One packet as it arrived: decoded, its request code, and whether more bytes came with it.
    struct Received {
        wire::DecodeResult decoded;
        std::uint8_t code = 0;
        bool excess = false;
    };
    asio::awaitable<std::optional<Received>> read_request(Connection& conn);
    // -delay_write: the reference's simulation of a busy server, before each reply.
    asio::awaitable<void> delay_write();
    asio::awaitable<void> reply(Connection& conn, std::string_view head,
                                std::string_view body = {});

    asio::awaitable<void> handle_alive2(std::unique_ptr<Connection>& conn, wire::NodeInfo node);
    std::string handle_stop(const std::string& name);
    bool is_local(Connection& conn);
    bool drop_if_peer_gone(const Registry::ActiveNode& holder);

    void hold_registration(std::unique_ptr<Connection> conn);
    void end_registration(std::unique_ptr<Connection> conn, const std::error_code& error);

    // Removes a connection from the pending list (deadline, per-address count).
    void unlink_pending(Connection& conn);
    // Closes a connection that has not registered; its coroutine then unwinds.
    void drop_pending(Connection& conn, const char* why);
    void arm_deadline_timer();
    void on_deadline();
    void log_node_table();

    asio::io_context& io_;
    const DaemonOptions& options_;
    Logger& log_;
    std::vector<Acceptor> acceptors_;
    Registry registry_;
    std::size_t max_connections_;
    std::size_t connection_count_ = 0;
    Clock::duration packet_timeout_;

    // Connections that have not registered, oldest (earliest deadline) first.
    ConnectionList pending_;
    std::unordered_map<asio::ip::address, std::uint32_t> pending_per_address_;
    // Connections holding a registration, for closing them all on KILL.
    ConnectionList registered_;

    asio::steady_timer deadline_timer_;
    asio::signal_set termination_signals_;
    bool deadline_timer_armed_ = false;
    bool shutting_down_ = false;
    // A descriptor held in reserve: when accept() runs out, freeing it shows whether a client is
    // really waiting, and takes that client.
    int spare_fd_ = -1;

    // Where requests are read: nothing suspends between reading and decoding, so one will do.
    std::array<std::uint8_t, 2 + wire::max_packet_length> scratch_{};

    RateLimit descriptor_warning_{std::chrono::seconds(10)};
    RateLimit capacity_warning_{std::chrono::seconds(10)};
    RateLimit per_address_warning_{std::chrono::seconds(10)};
    RateLimit access_warning_{std::chrono::seconds(1)};
};

}  // namespace epmdx::server
