// SPDX-License-Identifier: Apache-2.0
// The event loop's work: accepting connections, admitting or shedding them, serving one request
// per connection, holding registrations, and enforcing deadlines.
//
// The hot path stays off the reactor: the accept loop takes each connection
// (platform::accept_connection) and tries one recv(); a request already there is answered and
// the descriptor closed at once, with no reactor registration. Only a connection that must wait
// (for the rest of its request, for -delay_write, for a reply larger than the send buffer, or
// holding a registration) becomes an Asio socket with a coroutine of its own (a registration,
// once made, is held by a wait callback: see hold_registration); connection.hpp lists its states.
#pragma once

#include <sys/socket.h>

#include <array>
#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "registry/registry.hpp"
#include "server/config/access.hpp"
#include "server/config/options.hpp"
#include "server/core/admission.hpp"
#include "server/core/connection.hpp"
#include "server/core/deadline_timer.hpp"
#include "server/core/listeners.hpp"
#include "server/core/listing_rate.hpp"
#include "server/core/log.hpp"
#include "server/core/observer.hpp"

namespace epmdx::server {

class Server {
  public:
    // The daemon's life. A restart (restart/restarter.hpp) drains and then either hands every
    // registration to the next process or, if that failed, serves on.
    enum class Phase : std::uint8_t {
        serving,      // accepting and answering
        draining,     // a restart has begun: not accepting, pending requests finishing
        stopped,      // shut down: listeners and connections closed, registrations ended
        handed_over,  // shut down after the next process took every registration: none ended
    };
    // Whether the daemon may go from one phase to the other; the one place that says so.
    static bool may_enter(Phase from, Phase to);

    // The observer hears of every request, close and registration (observer.hpp).
    Server(asio::io_context& io, const DaemonOptions& options, Logger& log, Observer& observer,
           std::vector<Acceptor> acceptors, std::size_t max_connections);
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;
    ~Server();

    // Before start(): nodes answered for without registering (-static), in file order.
    void add_static_entries(std::vector<wire::NodeInfo> nodes);
    // Starts accepting. io.run() returns once shutdown() has closed everything.
    void start();
    // Closes listeners and every connection, registrations included: serving or draining ->
    // stopped. Nothing happens if already stopped.
    void shutdown();
    // Called once, at the start of shutdown, by whichever shutdown comes first.
    void on_shutdown(std::function<void()> callback) { on_shutdown_ = std::move(callback); }

    Phase phase() const { return phase_; }
    const Registry& registry() const { return registry_; }
    CoreCounts counts() const { return {registry_.registered_count(), admission_.connections()}; }
    // The listening sockets, in the order they were given.
    std::vector<int> listener_fds() const;

    // ---- What a restart does through (restart/restarter.hpp) ----
    // Before start(): takes a handed-over registration's socket back into the registry. The
    // socket joins the event loop, and its wait starts, once the loop runs (watch_restored).
    void adopt(int fd, const wire::NodeInfo& node, std::uint32_t counter,
               std::uint64_t socket_inode, const asio::ip::address& peer);
    // serving -> draining: the listeners are left alone (new connections wait in their backlog,
    // for the next process or for resume_accepting); pending requests go on.
    void stop_accepting();
    // Draining, and nothing left to wait for: no accept loop running, no pending connection.
    bool drained() const { return accept_loops_ == 0 && admission_.oldest() == nullptr; }
    // Closes the pending connections a drain left.
    void close_pending();
    // draining -> serving: a restart that failed.
    void resume_accepting();
    // draining -> handed_over: the next process holds every registration, so closing them here
    // ends none; then shuts down.
    void shutdown_handed_over();
    // Before start(): an old/unused entry (DUMP's) taken back; false if its name is taken.
    bool adopt_old(Registry::OldNode entry) { return registry_.restore_old(std::move(entry)); }
    // The node table, at -debug 3.
    void log_node_table();

  private:
    // One packet as it arrived: decoded, and its request code.
    struct Received {
        wire::DecodeResult decoded;
        std::uint8_t code = 0;
    };
    enum class ReadState : std::uint8_t { waiting, ended, complete };

    // A reply to any request but ALIVE2, and how it counts.
    struct Answer {
        RequestOutcome result;
        std::string head;
        std::shared_ptr<const std::string> body = nullptr;  // NAMES and DUMP
        bool then_shut_down = false;                        // KILL
    };
    // What a complete request leads to, decided without waiting.
    struct Outcome {
        enum class Kind : std::uint8_t { close, answer, register_node };
        Kind kind = Kind::close;
        std::optional<Answer> answer;  // Kind::answer
        // Kind::register_node, and Kind::close for an ALIVE2 refused for its peer's address.
        wire::NodeInfo node;
        std::optional<wire::Alive2Refusal> refusal;  // Kind::register_node: answered with an error
        // Kind::close: what the request's outcome counts as; none for garbage.
        std::optional<RequestOutcome> refused;
    };

    // ---- Accepting and admission (server.cpp) ----
    asio::awaitable<void> accept_loop(Acceptor& acceptor);
    asio::awaitable<void> on_descriptors_exhausted(Acceptor& acceptor, int accept_error);
    // Admits a freshly accepted descriptor and serves it at once if its request is there.
    void on_accepted(int fd, const sockaddr_storage& peer_address, socklen_t length);
    bool admitted(const asio::ip::address& peer);
    // Makes the descriptor a Connection that waits in a coroutine of its own.
    std::unique_ptr<Connection> make_connection(int fd, const asio::ip::address& peer);
    void spawn(asio::awaitable<void> work);
    void log_exception(const std::exception_ptr& error);
    // Closes a pending connection; its coroutine then unwinds. why: logged if set.
    void drop_pending(Connection& conn, const char* why);
    // A pending connection past its deadline (deadline_timer_): counted, logged and closed.
    void on_deadline(Connection& late);

    // ---- One request per connection (server.cpp) ----
    // One recv without waiting, added to what came before in parts.
    ReadState receive(int fd, std::vector<std::uint8_t>& parts, Received& received);
    asio::awaitable<void> serve(std::unique_ptr<Connection> conn, std::vector<std::uint8_t> parts);
    asio::awaitable<void> carry_out(std::unique_ptr<Connection> conn, Outcome outcome,
                                    std::optional<std::size_t> already_sent);
    // -delay_write: the reference's simulation of a busy server, before each reply.
    asio::awaitable<void> delay_write();
    asio::awaitable<void> reply(Connection& conn, const Answer& answer,
                                std::optional<std::size_t> already_sent);
    void after_reply(const Answer& answer);

    // ---- Requests (requests.cpp) ----
    Outcome decide(Received& received, const asio::ip::address& peer, int fd);
    RequestPolicy::Verdict may_ask(wire::Code request, const asio::ip::address& peer, int fd);
    // NAMES or DUMP within the peer's -listing_rate; logs a refusal.
    bool may_list(wire::Code request, const asio::ip::address& peer);
    asio::awaitable<void> handle_alive2(std::unique_ptr<Connection> conn, wire::NodeInfo node,
                                        std::optional<wire::Alive2Refusal> refusal);
    // Registers node, held by conn: its creation, or nullopt (logged, refused_because set) if
    // the name is taken. A holder whose peer has already gone makes room.
    std::optional<std::uint32_t> add_registration(wire::NodeInfo node, Connection& conn,
                                                  std::string_view& refused_because);
    void hold_registration(std::unique_ptr<Connection> conn, std::string name);
    Answer handle_port_please2(const wire::PortPlease2Request& request);
    Answer handle_names();
    Answer handle_dump();
    Answer handle_kill();
    std::optional<Answer> handle_stop(const wire::StopRequest& request);
    bool drop_if_peer_gone(const Registry::ActiveNode& holder);
    static bool peer_gone(int fd);

    // ---- Phases and registrations taken back ----
    void enter(Phase next);
    void start_accepting();
    // Closes everything; final is stopped or handed_over.
    void close_all(Phase final);
    // Gives up to restored_watch_chunk adopted registrations to the reactor and starts their
    // waits, and posts itself for the rest: lookups are answered between chunks.
    void watch_restored();

    // ---- Telling the observer ----
    // The request counted, with its service time from `accepted` to now.
    void count_request(RequestOutcome outcome, Clock::time_point accepted);
    // A request closed unanswered (Kind::close with `refused` set).
    void count_refusal(const Outcome& outcome, const asio::ip::address& peer,
                       Clock::time_point accepted);
    // Before the node leaves the registry. why: connection_closed, stop or shutdown.
    void note_unregistered(const Registry::ActiveNode& node, std::string_view why);
    // A pending connection shed (why: what made room necessary) or past its deadline.
    void note_closed(CloseReason reason, const Connection& conn, std::string_view why = {});

    asio::io_context& io_;
    const DaemonOptions& options_;
    Logger& log_;
    std::vector<Acceptor> acceptors_;
    Registry registry_;
    Admission admission_;
    RequestPolicy policy_;
    ListingRate listing_rate_;
    Observer& observer_;
    // Where the accept loop's current piece of work began: its last wake-up, or the reply it
    // sent last. A request answered at once is timed from here, so it costs one clock read.
    Clock::time_point accept_mark_{};

    DeadlineTimer deadline_timer_;
    Phase phase_ = Phase::serving;
    std::function<void()> on_shutdown_;
    // Adopted registrations (in the registry, their sockets not yet with the event loop) whose
    // wait has not started yet; see adopt().
    struct UnwatchedRegistration {
        std::unique_ptr<Connection> conn;
        std::string name;
    };
    std::vector<UnwatchedRegistration> unwatched_;
    int accept_loops_ = 0;  // running; a drain waits for them to see the phase and stop
    // A descriptor held in reserve: when accept() runs out, freeing it shows whether a client is
    // really waiting, and takes that client.
    int spare_fd_ = -1;

    // Where requests are read: nothing suspends between reading and decoding, so one will do.
    std::array<std::uint8_t, 2 + wire::max_packet_length> scratch_{};

    RateLimit descriptor_warning_{std::chrono::seconds(10)};
    RateLimit capacity_warning_{std::chrono::seconds(10)};  // refused: all registered
    RateLimit shed_warning_{std::chrono::seconds(10)};      // the oldest shed for a newcomer
    RateLimit per_address_warning_{std::chrono::seconds(10)};
    RateLimit access_warning_{std::chrono::seconds(1)};
    RateLimit listing_rate_warning_{std::chrono::seconds(10)};
    RateLimit exception_warning_{std::chrono::seconds(10)};
};

}  // namespace epmdx::server
