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
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <cstdint>
#include <exception>
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
#include "server/observe/events.hpp"
#include "server/observe/metrics.hpp"
#include "server/observe/metrics_listener.hpp"
#include "server/restart/handover.hpp"
#include "server/restart/handover_state.hpp"

namespace epmdx::server {

class Server {
  public:
    Server(asio::io_context& io, const DaemonOptions& options, Logger& log,
           std::vector<Acceptor> acceptors, std::size_t max_connections,
           std::optional<Acceptor> metrics_acceptor = std::nullopt);
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;
    ~Server();

    // Before start(): nodes answered for without registering (-static), in file order.
    void add_static_entries(std::vector<wire::NodeInfo> nodes);
    // Before start(), after add_static_entries(): takes back the registrations the previous
    // process handed over (docs/differences.md A-RESTART). state is null if none came or it was
    // unusable; every descriptor in registration_fds is then held or closed.
    void restore(const HandoverState* state, const std::vector<int>& registration_fds);
    // Before start(): SIGHUP re-executes image, passing the listeners under these names (one per
    // acceptor) along with the registrations and the state.
    void enable_reexec(ExecImage image, std::vector<std::string> listener_names);
    // Before start(), instead: SIGHUP is refused with this reason in the log, and changes nothing.
    void refuse_reexec(std::string reason);
    // Starts accepting. io.run() returns once shutdown() has closed everything.
    void start();
    // Closes listeners and every connection, registrations included.
    void shutdown();

  private:
    // One packet as it arrived: decoded, and its request code.
    struct Received {
        wire::DecodeResult decoded;
        std::uint8_t code = 0;
    };
    enum class ReadState : std::uint8_t { waiting, ended, complete };

    // A reply to any request but ALIVE2.
    struct Answer {
        Answer(std::string head = {}, std::shared_ptr<const std::string> body = nullptr,
               bool then_shut_down = false)
            : head(std::move(head)), body(std::move(body)), then_shut_down(then_shut_down) {}
        std::string head;
        std::shared_ptr<const std::string> body;  // NAMES and DUMP
        bool then_shut_down = false;              // KILL
        RequestOutcome result = RequestOutcome::count;
    };
    // What a complete request leads to, decided without waiting.
    struct Outcome {
        enum class Kind : std::uint8_t { close, answer, register_node };
        Kind kind = Kind::close;
        Answer answer;  // Kind::answer
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
    void hold_registration(std::unique_ptr<Connection> conn, std::string name);
    Answer handle_port_please2(const wire::PortPlease2Request& request);
    Answer handle_names();
    Answer handle_dump();
    std::optional<Answer> handle_kill();
    std::optional<Answer> handle_stop(const wire::StopRequest& request);
    bool drop_if_peer_gone(const Registry::ActiveNode& holder);
    static bool peer_gone(int fd);
    void log_node_table();

    // ---- Handing over to the next process (handover.cpp does the I/O) ----
    void start_accepting();
    // Starts the wait of up to restored_watch_chunk restored registrations, and posts itself
    // for the rest: lookups are answered between chunks.
    void watch_restored();
    // The registry as the next process needs it, and the descriptors holding registrations.
    HandoverState state_to_hand_over(std::vector<int>& registration_fds) const;
    enum class HandoverPath { reexec, fd_store };
    // SIGHUP or SIGTERM under systemd: stop accepting, let pending requests finish (up to
    // 100 ms), close the rest, then re-execute or hand over to systemd's store and shut down.
    asio::awaitable<void> drain_and_hand_over(HandoverPath path);
    // Registrations and state into systemd's descriptor store.
    void hand_over_to_fd_store();
    // SIGHUP: checks the binary, then drains and re-executes; on failure (or if refuse_reexec
    // said why not) serves on.
    void restart_in_place();
    void reexec_in_place();
    void wait_for_reload_signal();

    // ---- Metrics and events ----
    // The request counted, with its service time from `accepted` to now.
    void count_request(RequestOutcome outcome, Clock::time_point accepted);
    // A request closed unanswered (Kind::close with `refused` set), counted; an ALIVE2 among
    // them is a refused registration.
    void count_refusal(const Outcome& outcome, const asio::ip::address& peer,
                       Clock::time_point accepted);
    // What happened to a node or a connection: counted for the metrics and, with -log_events,
    // written as an event (events.hpp). Each is called at the one place it happens.
    void note_registered(const Connection& conn, std::string_view name, std::uint16_t port,
                         std::uint32_t creation);
    // Before the node leaves the registry. why: connection_closed, stop or shutdown.
    void note_unregistered(const Registry::ActiveNode& node, std::string_view why);
    // counted_as: its metrics outcome; reason: the event's (finer: static_name is counted as a
    // duplicate name, each kind of invalid name has its own).
    void note_refused_registration(RequestOutcome counted_as, std::string_view reason,
                                   std::string_view name, std::uint16_t port,
                                   const asio::ip::address& peer, Clock::time_point accepted);
    // A pending connection shed (why: what made room necessary) or past its deadline.
    void note_closed(CloseReason reason, const Connection& conn, std::string_view why = {});
    std::string metrics_text();

    asio::io_context& io_;
    const DaemonOptions& options_;
    Logger& log_;
    std::vector<Acceptor> acceptors_;
    Registry registry_;
    Admission admission_;
    RequestPolicy policy_;
    ListingRate listing_rate_;
    Metrics metrics_;
    EventLog events_;
    std::unique_ptr<MetricsListener> metrics_listener_;
    // Where the accept loop's current piece of work began: its last wake-up, or the reply it
    // sent last. A request answered at once is timed from here, so it costs one clock read.
    Clock::time_point accept_mark_{};

    DeadlineTimer deadline_timer_;
    asio::signal_set termination_signals_;
    asio::signal_set reload_signal_;
    bool shutting_down_ = false;
    std::optional<ExecImage> exec_image_;
    std::string no_reexec_reason_;  // why SIGHUP does not re-execute, if exec_image_ is unset
    std::vector<std::string> listener_names_;
    // Restored registrations (in the registry, their sockets assigned to the event loop) whose
    // wait has not started yet; see restore().
    struct UnwatchedRegistration {
        std::unique_ptr<Connection> conn;
        std::string name;
    };
    std::vector<UnwatchedRegistration> unwatched_;
    bool restarting_ = false;   // between SIGHUP or SIGTERM and handing over: not accepting
    bool terminating_ = false;  // SIGTERM is handing over to systemd's store
    bool handed_over_ = false;  // every registration is in systemd's store: none ends here
    int accept_loops_ = 0;      // running
    // A descriptor held in reserve: when accept() runs out, freeing it shows whether a client is
    // really waiting, and takes that client.
    int spare_fd_ = -1;

    // Where requests are read: nothing suspends between reading and decoding, so one will do.
    std::array<std::uint8_t, 2 + wire::max_packet_length> scratch_{};

    RateLimit descriptor_warning_{std::chrono::seconds(10)};
    RateLimit capacity_warning_{std::chrono::seconds(10)};
    RateLimit per_address_warning_{std::chrono::seconds(10)};
    RateLimit access_warning_{std::chrono::seconds(1)};
    RateLimit listing_rate_warning_{std::chrono::seconds(10)};
    RateLimit exception_warning_{std::chrono::seconds(10)};
};

}  // namespace epmdx::server
