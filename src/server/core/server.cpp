// SPDX-License-Identifier: Apache-2.0
#include "server/core/server.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <asio/co_spawn.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>

#include "platform/platform.hpp"

namespace epmdx::server {
namespace {

using asio::use_awaitable;

std::uint32_t unix_now() {
    return static_cast<std::uint32_t>(std::time(nullptr));
}

std::string_view as_chars(std::span<const std::uint8_t> bytes) {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

std::string_view body_of(const std::shared_ptr<const std::string>& body) {
    return body ? std::string_view(*body) : std::string_view();
}

bool is_descriptor_exhaustion(int error) {
    return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM;
}

}  // namespace

asio::ip::address address_of(const sockaddr_storage& address, socklen_t length) {
    asio::ip::tcp::endpoint endpoint;
    const std::size_t size = std::min<std::size_t>(length, endpoint.capacity());
    std::memcpy(endpoint.data(), &address, size);
    endpoint.resize(size);
    return endpoint.address();
}

std::uint64_t socket_inode(int fd) {
    struct stat status {};
    return ::fstat(fd, &status) == 0 ? static_cast<std::uint64_t>(status.st_ino) : 0;
}

void Connection::close_registration() {
    std::error_code ignored;
    socket.close(ignored);
    if (adopted_fd >= 0) {
        ::close(adopted_fd);
        adopted_fd = -1;
    }
}

std::size_t send_without_waiting(int fd, std::string_view head, std::string_view body) {
    iovec parts[2] = {{const_cast<char*>(head.data()), head.size()},
                      {const_cast<char*>(body.data()), body.size()}};
    msghdr message{};
    message.msg_iov = parts;
    message.msg_iovlen = body.empty() ? 1 : 2;
    ssize_t sent = 0;
    do {
        sent = ::sendmsg(fd, &message, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    return sent > 0 ? static_cast<std::size_t>(sent) : 0;
}

Server::Server(asio::io_context& io, const DaemonOptions& options, Logger& log, Observer& observer,
               std::vector<Acceptor> acceptors, std::size_t max_connections)
    : io_(io),
      options_(options),
      log_(log),
      acceptors_(std::move(acceptors)),
      registry_(
          options.debug_level > 0 ? Registry::debug_old_capacity : Registry::default_old_capacity,
          unix_now),
      admission_({max_connections, options.max_pending_per_address,
                  std::chrono::seconds(options.packet_timeout_s), options.source_prefix}),
      policy_(options.names_access, options.port_please_access),
      listing_rate_({options.listing_rate, options.listing_burst, options.source_prefix}),
      observer_(observer),
      deadline_timer_(io, admission_, [this](Connection& late) { on_deadline(late); }),
      spare_fd_(::open("/dev/null", O_RDONLY | O_CLOEXEC)) {}

Server::~Server() {
    if (spare_fd_ >= 0) {
        ::close(spare_fd_);
    }
}

void Server::add_static_entries(std::vector<wire::NodeInfo> nodes) {
    for (wire::NodeInfo& node : nodes) {
        const std::string name = node.name;
        const std::uint16_t port = node.port;
        if (registry_.add_static(std::move(node))) {
            log_.printf(1, "static entry %s at port %d", name.c_str(), port);
        }
    }
}

void Server::start() {
    start_accepting();
}

void Server::start_accepting() {
    for (Acceptor& acceptor : acceptors_) {
        // The accept loop calls accept itself and must never block in it.
        std::error_code ignored;
        acceptor.non_blocking(true, ignored);
        spawn(accept_loop(acceptor));
    }
}

std::vector<int> Server::listener_fds() const {
    std::vector<int> fds;
    for (const Acceptor& acceptor : acceptors_) {
        fds.push_back(const_cast<Acceptor&>(acceptor).native_handle());
    }
    return fds;
}

// ---- Phases ----------------------------------------------------------------------------------

bool Server::may_enter(Phase from, Phase to) {
    switch (from) {
        case Phase::serving:
            return to == Phase::draining || to == Phase::stopped;
        case Phase::draining:
            return to == Phase::serving || to == Phase::stopped || to == Phase::handed_over;
        case Phase::stopped:
        case Phase::handed_over:
            return false;  // final
    }
    return false;
}

void Server::enter(Phase next) {
    if (!may_enter(phase_, next)) {
        throw std::logic_error("epmdx: no way from phase " +
                               std::to_string(static_cast<int>(phase_)) + " to " +
                               std::to_string(static_cast<int>(next)));
    }
    phase_ = next;
}

void Server::stop_accepting() {
    if (phase_ == Phase::draining) {
        return;  // a second restart signal joins the drain under way
    }
    enter(Phase::draining);
    std::error_code ignored;
    for (Acceptor& acceptor : acceptors_) {
        acceptor.cancel(ignored);  // each accept loop sees the phase and ends
    }
}

void Server::resume_accepting() {
    enter(Phase::serving);
    start_accepting();
}

void Server::close_pending() {
    while (Connection* oldest = admission_.oldest()) {
        drop_pending(*oldest, nullptr);
    }
}

void Server::shutdown() {
    if (phase_ == Phase::stopped || phase_ == Phase::handed_over) {
        return;
    }
    close_all(Phase::stopped);
}

void Server::shutdown_handed_over() {
    close_all(Phase::handed_over);
}

void Server::close_all(Phase final) {
    enter(final);
    if (on_shutdown_) {
        on_shutdown_();
    }
    std::error_code ignored;
    for (Acceptor& acceptor : acceptors_) {
        acceptor.close(ignored);
    }
    deadline_timer_.stop();
    observer_.stopping();
    close_pending();
    // Each registration's wait then completes with operation_aborted and unregisters it.
    registry_.for_each_active([](const Registry::ActiveNode& node) {
        if (node.holder) {
            node.holder->close_registration();
        }
    });
}

// ---- Registrations taken back from the previous process --------------------------------------

void Server::adopt(int fd, const wire::NodeInfo& node, std::uint32_t counter,
                   std::uint64_t socket_inode, const asio::ip::address& peer) {
    auto conn = std::make_unique<Connection>(admission_, io_, fd, peer, Clock::now());
    admission_.leave_pending(*conn);
    conn->socket_inode = socket_inode;
    registry_.restore(node, counter, fd, conn.get());
    if (unwatched_.empty()) {
        // Serve first, watch later: adding a socket to the reactor and starting its wait cost
        // three system calls per socket, tens of milliseconds for tens of thousands of
        // registrations. Until then a registration is served and can be stopped, probed by a
        // new ALIVE2 for its name, shut down or handed over like any other (through its
        // descriptor, connection.hpp), and a wait started on a socket that became readable or
        // was closed meanwhile completes at once.
        asio::post(io_, [this] { watch_restored(); });
    }
    unwatched_.push_back({std::move(conn), node.name});
}

void Server::watch_restored() {
    constexpr std::size_t restored_watch_chunk = 256;
    for (std::size_t i = 0; i < restored_watch_chunk && !unwatched_.empty(); ++i) {
        UnwatchedRegistration next = std::move(unwatched_.back());
        unwatched_.pop_back();
        Connection& conn = *next.conn;
        if (conn.adopted_fd >= 0) {
            // If the reactor cannot take it, the wait below fails at once: the registration
            // ends as if its peer had closed it.
            std::error_code error;
            conn.socket.assign(conn.peer.is_v4() ? asio::ip::tcp::v4() : asio::ip::tcp::v6(),
                               conn.adopted_fd, error);
            if (error) {
                ::close(conn.adopted_fd);
            }
            conn.adopted_fd = -1;
        }
        hold_registration(std::move(next.conn), std::move(next.name));
    }
    if (!unwatched_.empty()) {
        asio::post(io_, [this] { watch_restored(); });
    }
}

void Server::spawn(asio::awaitable<void> work) {
    asio::co_spawn(io_, std::move(work), [this](const std::exception_ptr& error) {
        if (error) {
            log_exception(error);
        }
    });
}

void Server::log_exception(const std::exception_ptr& error) {
    // The connection it came from is closed by its unwinding; the daemon carries on.
    if (!exception_warning_.allow()) {
        return;
    }
    try {
        std::rethrow_exception(error);
    } catch (const std::exception& e) {
        log_.printf(0, "closing a connection after an error: %s%s", e.what(),
                    exception_warning_.note());
    } catch (...) {
        log_.printf(0, "closing a connection after an unknown error%s", exception_warning_.note());
    }
}

// ---- Accepting and admission -------------------------------------------------------------

asio::awaitable<void> Server::accept_loop(Acceptor& acceptor) {
    // Accepting without a break would hold up deadlines and registrations during a burst.
    constexpr int accepts_per_turn = 64;
    int accepted_this_turn = 0;
    asio::steady_timer pause(io_);
    std::error_code error;
    ++accept_loops_;
    while (phase_ == Phase::serving) {
        accept_mark_ = Clock::now();  // resumed after a wait: the work starts now
        if (options_.delay_accept_s > 0) {
            pause.expires_after(std::chrono::seconds(options_.delay_accept_s));
            co_await pause.async_wait(asio::redirect_error(use_awaitable, error));
            if (phase_ != Phase::serving) {
                break;
            }
            accept_mark_ = Clock::now();
        }
        sockaddr_storage peer{};
        socklen_t peer_length = 0;
        const int fd = platform::accept_connection(acceptor.native_handle(), peer, peer_length);
        if (fd >= 0) {
            on_accepted(fd, peer, peer_length);
            if (++accepted_this_turn == accepts_per_turn) {
                accepted_this_turn = 0;
                co_await asio::post(io_, use_awaitable);
                accept_mark_ = Clock::now();
            }
            continue;
        }
        const int accept_error = errno;
        if (accept_error == EAGAIN || accept_error == EWOULDBLOCK) {
            // Nobody is waiting: sleep until somebody is. Whether the reactor reports the listener
            // edge-triggered (epoll, kqueue) or level-triggered (select), waiting only after
            // accept said EAGAIN never misses a newcomer.
            accepted_this_turn = 0;
            co_await acceptor.async_wait(Acceptor::wait_read,
                                         asio::redirect_error(use_awaitable, error));
            if (error == asio::error::operation_aborted) {
                break;
            }
        } else if (is_descriptor_exhaustion(accept_error)) {
            co_await on_descriptors_exhausted(acceptor, accept_error);
        }
        // Other errors (ECONNABORTED, EINTR, EPERM from a firewall, ...) concern one peer only.
    }
    --accept_loops_;
}

asio::awaitable<void> Server::on_descriptors_exhausted(Acceptor& acceptor, int accept_error) {
    // accept() reserves a descriptor before it looks at the queue, so EMFILE does not mean that
    // anyone is waiting. The spare descriptor tells: with it free, accept either takes a
    // waiting client or says there is none.
    std::error_code ignored;
    if (spare_fd_ >= 0) {
        ::close(spare_fd_);
        spare_fd_ = -1;
    }
    sockaddr_storage peer{};
    socklen_t peer_length = 0;
    const int waiting = platform::accept_connection(acceptor.native_handle(), peer, peer_length);
    const int retry_error = errno;
    const bool can_shed = waiting >= 0 && admission_.oldest() != nullptr;
    if (waiting >= 0 && descriptor_warning_.allow()) {
        log_.printf(0, "error in accept: %s; %s%s", std::strerror(accept_error),
                    can_shed ? "closing the oldest connection that has not registered"
                             : "refusing a connection",
                    descriptor_warning_.note());
    }
    if (can_shed) {
        // The oldest idle connection makes room for the newcomer.
        Connection& oldest = *admission_.oldest();
        note_closed(CloseReason::shed, oldest, "descriptor_exhaustion");
        drop_pending(oldest, nullptr);
        on_accepted(waiting, peer, peer_length);
    } else if (waiting >= 0) {
        observer_.closed(CloseReason::descriptor_exhaustion, address_of(peer, peer_length), {});
        ::close(waiting);  // only registrations hold descriptors: refuse at once, never hang
    }
    spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (waiting < 0 && retry_error != EAGAIN && retry_error != EWOULDBLOCK) {
        // Not even the spare helped (the system-wide table is full): wait for things to end.
        asio::steady_timer pause(io_, std::chrono::milliseconds(100));
        co_await pause.async_wait(asio::redirect_error(use_awaitable, ignored));
    } else if (waiting < 0) {
        // Nobody is waiting: sleep until somebody is.
        co_await acceptor.async_wait(Acceptor::wait_read,
                                     asio::redirect_error(use_awaitable, ignored));
    }
}

void Server::on_accepted(int fd, const sockaddr_storage& peer_address, socklen_t length) {
    const asio::ip::address peer = address_of(peer_address, length);
    if (phase_ == Phase::stopped || phase_ == Phase::handed_over || !admitted(peer)) {
        ::close(fd);
        return;
    }
    bool fd_handed_over = false;  // to an Asio socket, which closes it from then on
    try {
        // Clients send a request in one piece right after connecting, so it is usually here.
        std::vector<std::uint8_t> parts;
        Received received;
        switch (receive(fd, parts, received)) {
            case ReadState::ended:
                ::close(fd);
                return;
            case ReadState::waiting:
                fd_handed_over = true;
                if (auto conn = make_connection(fd, peer)) {
                    spawn(serve(std::move(conn), std::move(parts)));
                }
                return;
            case ReadState::complete:
                break;
        }
        Outcome outcome = decide(received, peer, fd);
        std::optional<std::size_t> sent;
        if (outcome.kind == Outcome::Kind::close) {
            ::close(fd);
            if (outcome.refused) {
                count_refusal(outcome, peer, accept_mark_);
            }
            return;
        }
        if (outcome.kind == Outcome::Kind::answer && options_.delay_write_s == 0) {
            const Answer& answer = *outcome.answer;
            log_.dump("reply", answer.head);
            sent = send_without_waiting(fd, answer.head, body_of(answer.body));
            if (*sent == answer.head.size() + body_of(answer.body).size()) {
                ::close(fd);
                count_request(answer.result, accept_mark_);
                after_reply(answer);
                return;
            }
        }
        // A registration, a -delay_write, or a reply larger than the send buffer: it waits.
        fd_handed_over = true;
        if (auto conn = make_connection(fd, peer)) {
            spawn(carry_out(std::move(conn), std::move(outcome), sent));
        }
    } catch (...) {
        if (!fd_handed_over) {
            ::close(fd);
        }
        log_exception(std::current_exception());
    }
}

bool Server::admitted(const asio::ip::address& peer) {
    switch (admission_.decide(peer)) {
        case Admission::Verdict::admit:
            return true;
        case Admission::Verdict::shed_oldest: {
            Connection& oldest = *admission_.oldest();
            note_closed(CloseReason::shed, oldest, "connection_limit");
            drop_pending(oldest, "connection limit reached");
            return true;
        }
        case Admission::Verdict::refuse_per_address:
            observer_.closed(CloseReason::per_address_cap, peer, {});
            if (per_address_warning_.allow()) {
                log_.printf(0,
                            "refusing a connection from %s: %u connections from %s have not "
                            "registered (-max_pending_per_address, -source_prefix)%s",
                            peer.to_string().c_str(), admission_.pending_from(peer),
                            describe_source(peer, admission_.source_prefix()).c_str(),
                            per_address_warning_.note());
            }
            return false;
        case Admission::Verdict::refuse_full:
            observer_.closed(CloseReason::connection_cap, peer, {});
            if (capacity_warning_.allow()) {
                log_.printf(0,
                            "connection limit reached (%zu, all registered nodes); refusing a "
                            "connection%s",
                            admission_.max_connections(), capacity_warning_.note());
            }
            return false;
    }
    return false;
}

std::unique_ptr<Connection> Server::make_connection(int fd, const asio::ip::address& peer) {
    Socket socket(io_);
    std::error_code error;
    socket.assign(peer.is_v4() ? asio::ip::tcp::v4() : asio::ip::tcp::v6(), fd, error);
    if (error) {
        ::close(fd);
        return nullptr;
    }
    auto conn = std::make_unique<Connection>(admission_, std::move(socket), peer, Clock::now());
    accept_mark_ = conn->accepted;  // the next request answered at once starts from here
    deadline_timer_.arm();
    return conn;
}

void Server::drop_pending(Connection& conn, const char* why) {
    if (why && shed_warning_.allow()) {
        log_.printf(0,
                    "%s: closing the oldest connection that has not registered (from %s) "
                    "%s",
                    why, conn.peer.to_string().c_str(), shed_warning_.note());
    }
    admission_.leave_pending(conn);
    std::error_code ignored;
    conn.socket.close(ignored);
}

// ---- Deadlines ------------------------------------------------------------------------------

void Server::on_deadline(Connection& late) {
    log_.printf(1, "closing because timed out on receive");
    note_closed(CloseReason::deadline, late);
    drop_pending(late, nullptr);
}

// ---- One request per connection -------------------------------------------------------------

Server::ReadState Server::receive(int fd, std::vector<std::uint8_t>& parts, Received& received) {
    // One recv into the shared scratch buffer usually brings a whole request. One that arrives
    // in parts is collected in parts; the deadline timer ends one that never completes.
    for (;;) {
        const ssize_t n = ::recv(fd, scratch_.data(), scratch_.size(), MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return ReadState::waiting;
        }
        if (n <= 0) {
            if (!parts.empty()) {
                log_.printf(0, "got partial packet only on file descriptor %d (%zu)", fd,
                            parts.size());
            }
            return ReadState::ended;
        }
        std::span<const std::uint8_t> data(scratch_.data(), static_cast<std::size_t>(n));
        if (!parts.empty()) {
            parts.insert(parts.end(), data.begin(), data.end());
            data = parts;
        }
        if (data.size() >= 2) {
            const wire::FrameLength frame = wire::decode_frame_length(data[0], data[1]);
            if (frame.error) {
                log_.printf(0, "invalid packet size (%d)", (data[0] << 8) | data[1]);
                return ReadState::ended;
            }
            if (data.size() >= 2 + frame.length) {
                const auto body = data.subspan(2, frame.length);
                log_.dump("got request", as_chars(body));
                // Decoded now, before anything suspends: the scratch buffer is shared.
                received.decoded = wire::decode_request(body, data.size() > 2 + frame.length);
                received.code = body[0];
                return ReadState::complete;
            }
        }
        if (parts.empty()) {
            parts.assign(data.begin(), data.end());
        }
    }
}

asio::awaitable<void> Server::serve(std::unique_ptr<Connection> conn,
                                    std::vector<std::uint8_t> parts) {
    // Pending: read until the request is complete. Reading comes first: what the accept loop
    // found missing has often arrived by the time this coroutine runs.
    const int fd = conn->socket.native_handle();
    Received received;
    for (;;) {
        const ReadState state = receive(fd, parts, received);
        if (state == ReadState::ended) {
            co_return;
        }
        if (state == ReadState::complete) {
            break;
        }
        std::error_code error;
        co_await conn->socket.async_wait(Socket::wait_read,
                                         asio::redirect_error(use_awaitable, error));
        if (error) {
            co_return;  // closed meanwhile: deadline, shed or shutdown
        }
    }
    Outcome outcome = decide(received, conn->peer, fd);
    co_await carry_out(std::move(conn), std::move(outcome), std::nullopt);
}

asio::awaitable<void> Server::carry_out(std::unique_ptr<Connection> conn, Outcome outcome,
                                        std::optional<std::size_t> already_sent) {
    switch (outcome.kind) {
        case Outcome::Kind::close:
            if (outcome.refused) {
                count_refusal(outcome, conn->peer, conn->accepted);
            }
            break;
        case Outcome::Kind::answer:
            co_await reply(*conn, *outcome.answer, already_sent);
            count_request(outcome.answer->result, conn->accepted);
            after_reply(*outcome.answer);
            break;
        case Outcome::Kind::register_node:
            co_await handle_alive2(std::move(conn), std::move(outcome.node), outcome.refusal);
            break;
    }
}

asio::awaitable<void> Server::delay_write() {
    if (options_.delay_write_s > 0) {
        std::error_code ignored;
        asio::steady_timer delay(io_, std::chrono::seconds(options_.delay_write_s));
        co_await delay.async_wait(asio::redirect_error(use_awaitable, ignored));
    }
}

asio::awaitable<void> Server::reply(Connection& conn, const Answer& answer,
                                    std::optional<std::size_t> already_sent) {
    const std::string_view head = answer.head;
    const std::string_view body = body_of(answer.body);
    std::size_t sent = 0;
    if (already_sent) {
        sent = *already_sent;
    } else {
        co_await delay_write();
        log_.dump("reply", head);
        // Almost every reply fits the socket's send buffer: one send and done.
        sent = send_without_waiting(conn.socket.native_handle(), head, body);
    }
    if (sent == head.size() + body.size()) {
        co_return;
    }
    // The rest of a larger one goes out as the peer reads, under the connection's deadline.
    const std::size_t head_sent = std::min(sent, head.size());
    const std::array<asio::const_buffer, 2> rest{asio::buffer(head.substr(head_sent)),
                                                 asio::buffer(body.substr(sent - head_sent))};
    std::error_code error;
    co_await asio::async_write(conn.socket, rest, asio::redirect_error(use_awaitable, error));
}

void Server::after_reply(const Answer& answer) {
    if (answer.then_shut_down) {
        log_.printf(1, "epmd killed");
        shutdown();
    }
}

// ---- Telling the observer ----------------------------------------------------------------

void Server::count_request(RequestOutcome outcome, Clock::time_point accepted) {
    const auto now = Clock::now();
    observer_.request(outcome, now - accepted);
    accept_mark_ = now;  // the accept loop's next piece of work starts here
}

void Server::count_refusal(const Outcome& outcome, const asio::ip::address& peer,
                           Clock::time_point accepted) {
    const auto now = Clock::now();
    switch (*outcome.refused) {
        case RequestOutcome::alive2_not_local:
            observer_.registration_refused(
                *outcome.refused, now - accepted, "not_local",
                {.name = outcome.node.name, .port = outcome.node.port, .peer = peer});
            break;
        case RequestOutcome::names_rate_limited:
        case RequestOutcome::dump_rate_limited:
            observer_.listing_refused(*outcome.refused, now - accepted, peer);
            break;
        default:
            observer_.request(*outcome.refused, now - accepted);
            break;
    }
    accept_mark_ = now;
}

void Server::note_unregistered(const Registry::ActiveNode& node, std::string_view why) {
    observer_.unregistered(
        {.name = node.info.name,
         .port = node.info.port,
         .creation = Registry::creation_for(node.counter, node.info.highest_version),
         .peer = node.holder->peer},
        why);
}

void Server::note_closed(CloseReason reason, const Connection& conn, std::string_view why) {
    observer_.closed(reason, conn.peer, why);
}

void Server::log_node_table() {
    if (!log_.enabled(3)) {
        return;
    }
    registry_.for_each_active([this](const Registry::ActiveNode& node) {
        log_.printf(3, "active name <%s> at port %d, fd = %d", node.info.name.c_str(),
                    node.info.port, node.fd);
    });
    registry_.for_each_old([this](const Registry::OldNode& node) {
        log_.printf(3, "old/unused name <%s>, port = %d, fd = %d", node.name.c_str(), node.port,
                    node.fd);
    });
}

}  // namespace epmdx::server
