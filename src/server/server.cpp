#include "server.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>

#include "access.hpp"

namespace epmdx::server {
namespace {

using asio::use_awaitable;

std::uint32_t unix_now() {
    return static_cast<std::uint32_t>(std::time(nullptr));
}

std::string_view as_chars(std::span<const std::uint8_t> bytes) {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// Sends what the socket takes right now, head then body; returns the byte count (0 on error).
std::size_t send_without_waiting(Socket& socket, std::string_view head, std::string_view body) {
    iovec parts[2] = {{const_cast<char*>(head.data()), head.size()},
                      {const_cast<char*>(body.data()), body.size()}};
    msghdr message{};
    message.msg_iov = parts;
    message.msg_iovlen = body.empty() ? 1 : 2;
    ssize_t sent = 0;
    do {
        sent = ::sendmsg(socket.native_handle(), &message, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    return sent > 0 ? static_cast<std::size_t>(sent) : 0;
}

// Asio's system errors have a category of their own that does not compare equal to std::errc
// values, so compare the errno values themselves.
bool is_descriptor_exhaustion(const std::error_code& error) {
    if (error.category() != asio::error::get_system_category()) {
        return false;
    }
    const int value = error.value();
    return value == EMFILE || value == ENFILE || value == ENOBUFS || value == ENOMEM;
}

}  // namespace

// One client connection: waiting for its request, being answered, or holding a registration.
struct Server::Connection {
    enum class List : std::uint8_t { none, pending, registered };

    Connection(Server& server, Socket socket, const asio::ip::address& peer,
               Clock::time_point deadline)
        : server(server), socket(std::move(socket)), peer(peer), deadline(deadline) {
        ++server.connection_count_;
        server.pending_.push_back(*this);
        list = List::pending;
        if (server.options_.max_pending_per_address != 0) {
            ++server.pending_per_address_[peer];
        }
        server.arm_deadline_timer();
    }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;
    ~Connection() {
        if (list == List::pending) {
            server.unlink_pending(*this);
        }
        if (list == List::registered) {
            server.registered_.erase(*this);
        }
        --server.connection_count_;
    }

    Server& server;
    Socket socket;
    asio::ip::address peer;
    Clock::time_point deadline;
    Connection* prev = nullptr;
    Connection* next = nullptr;
    List list = List::none;
    std::string name;  // the registered name, while holding a registration
};

void Server::ConnectionList::push_back(Connection& c) {
    c.prev = tail;
    c.next = nullptr;
    (tail ? tail->next : head) = &c;
    tail = &c;
}

void Server::ConnectionList::erase(Connection& c) {
    (c.prev ? c.prev->next : head) = c.next;
    (c.next ? c.next->prev : tail) = c.prev;
    c.prev = c.next = nullptr;
}

Server::Server(asio::io_context& io, const DaemonOptions& options, Logger& log,
               std::vector<Acceptor> acceptors, std::size_t max_connections)
    : io_(io),
      options_(options),
      log_(log),
      acceptors_(std::move(acceptors)),
      registry_(
          options.debug_level > 0 ? Registry::debug_old_capacity : Registry::default_old_capacity,
          unix_now),
      max_connections_(max_connections),
      packet_timeout_(std::chrono::seconds(options.packet_timeout_s)),
      deadline_timer_(io),
      termination_signals_(io, SIGTERM, SIGINT),
      spare_fd_(::open("/dev/null", O_RDONLY | O_CLOEXEC)) {}

Server::~Server() {
    if (spare_fd_ >= 0) {
        ::close(spare_fd_);
    }
}

void Server::start() {
    for (Acceptor& acceptor : acceptors_) {
        asio::co_spawn(io_, accept_loop(acceptor), asio::detached);
    }
    termination_signals_.async_wait([this](const std::error_code& error, int signal) {
        if (error) {
            return;
        }
        log_.printf(0, "got signal %d, shutting down", signal);
        shutdown();
    });
}

void Server::shutdown() {
    if (shutting_down_) {
        return;
    }
    shutting_down_ = true;
    std::error_code ignored;
    for (Acceptor& acceptor : acceptors_) {
        acceptor.close(ignored);
    }
    deadline_timer_.cancel();
    termination_signals_.cancel(ignored);
    while (pending_.head) {
        drop_pending(*pending_.head, nullptr);
    }
    // Each registration's wait then completes with operation_aborted and frees it.
    for (Connection* c = registered_.head; c; c = c->next) {
        c->socket.close(ignored);
    }
}

// ---- Accepting and admission -------------------------------------------------------------

asio::awaitable<void> Server::accept_loop(Acceptor& acceptor) {
    asio::steady_timer pause(io_);
    std::error_code error;
    while (!shutting_down_) {
        if (options_.delay_accept_s > 0) {
            pause.expires_after(std::chrono::seconds(options_.delay_accept_s));
            co_await pause.async_wait(asio::redirect_error(use_awaitable, error));
            if (shutting_down_) {
                break;
            }
        }
        asio::ip::tcp::endpoint peer;
        Socket socket =
            co_await acceptor.async_accept(io_, peer, asio::redirect_error(use_awaitable, error));
        if (!error) {
            admit(std::move(socket), peer.address());
        } else if (error == asio::error::operation_aborted || shutting_down_) {
            break;
        } else if (is_descriptor_exhaustion(error)) {
            co_await on_descriptors_exhausted(acceptor, error);
        }
        // Other errors (ECONNABORTED, EINTR, EPERM from a firewall, ...) concern one peer only.
    }
}

asio::awaitable<void> Server::on_descriptors_exhausted(Acceptor& acceptor,
                                                       const std::error_code& error) {
    // accept() reserves a descriptor before it looks at the queue, so EMFILE does not mean that
    // anyone is waiting. The spare descriptor tells: with it free, accept either takes a
    // waiting client or says there is none.
    std::error_code ignored;
    if (spare_fd_ >= 0) {
        ::close(spare_fd_);
        spare_fd_ = -1;
    }
    sockaddr_storage peer{};
    socklen_t peer_length = sizeof peer;
    const int waiting = ::accept4(acceptor.native_handle(), reinterpret_cast<sockaddr*>(&peer),
                                  &peer_length, SOCK_CLOEXEC);
    const int accept_error = errno;
    const bool can_shed = waiting >= 0 && pending_.head != nullptr;
    if (waiting >= 0 && descriptor_warning_.allow()) {
        log_.printf(0, "error in accept: %s; %s%s", error.message().c_str(),
                    can_shed ? "closing the oldest connection that has not registered"
                             : "refusing a connection",
                    descriptor_warning_.note());
    }
    if (can_shed) {
        // The oldest idle connection makes room for the newcomer.
        drop_pending(*pending_.head, nullptr);
        asio::ip::tcp::endpoint endpoint;
        const std::size_t length = std::min<std::size_t>(peer_length, endpoint.capacity());
        std::memcpy(endpoint.data(), &peer, length);
        endpoint.resize(length);
        Socket socket(io_);
        socket.assign(endpoint.protocol(), waiting, ignored);
        if (!ignored) {
            admit(std::move(socket), endpoint.address());
        }
    } else if (waiting >= 0) {
        ::close(waiting);  // only registrations hold descriptors: refuse at once, never hang
    }
    spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (waiting < 0 && accept_error != EAGAIN && accept_error != EWOULDBLOCK) {
        // Not even the spare helped (the system-wide table is full): wait for things to end.
        asio::steady_timer pause(io_, std::chrono::milliseconds(100));
        co_await pause.async_wait(asio::redirect_error(use_awaitable, ignored));
    } else if (waiting < 0) {
        // Nobody is waiting: sleep until somebody is.
        co_await acceptor.async_wait(Acceptor::wait_read,
                                     asio::redirect_error(use_awaitable, ignored));
    }
}

void Server::admit(Socket socket, const asio::ip::address& peer) {
    if (shutting_down_) {
        return;
    }
    if (options_.max_pending_per_address != 0) {
        const auto found = pending_per_address_.find(peer);
        if (found != pending_per_address_.end() &&
            found->second >= options_.max_pending_per_address) {
            if (per_address_warning_.allow()) {
                log_.printf(0,
                            "refusing a connection from %s: %u connections from it have not "
                            "registered (-max_pending_per_address)%s",
                            peer.to_string().c_str(), found->second, per_address_warning_.note());
            }
            return;
        }
    }
    if (connection_count_ >= max_connections_) {
        if (pending_.head == nullptr) {
            if (capacity_warning_.allow()) {
                log_.printf(0,
                            "connection limit reached (%zu, all registered nodes); refusing a "
                            "connection%s",
                            max_connections_, capacity_warning_.note());
            }
            return;
        }
        drop_pending(*pending_.head, "connection limit reached");
    }
    auto conn = std::make_unique<Connection>(*this, std::move(socket), peer,
                                             Clock::now() + packet_timeout_);
    asio::co_spawn(io_, serve(std::move(conn)), asio::detached);
}

void Server::unlink_pending(Connection& conn) {
    pending_.erase(conn);
    conn.list = Connection::List::none;
    if (options_.max_pending_per_address == 0) {
        return;
    }
    const auto found = pending_per_address_.find(conn.peer);
    if (found != pending_per_address_.end() && --found->second == 0) {
        pending_per_address_.erase(found);
    }
}

void Server::drop_pending(Connection& conn, const char* why) {
    if (why && capacity_warning_.allow()) {
        log_.printf(0,
                    "%s: closing the oldest connection that has not registered (from %s) "
                    "%s",
                    why, conn.peer.to_string().c_str(), capacity_warning_.note());
    }
    unlink_pending(conn);
    std::error_code ignored;
    conn.socket.close(ignored);
}

// ---- Deadlines ------------------------------------------------------------------------------

void Server::arm_deadline_timer() {
    if (deadline_timer_armed_ || pending_.head == nullptr || shutting_down_) {
        return;
    }
    deadline_timer_armed_ = true;
    deadline_timer_.expires_at(pending_.head->deadline);
    deadline_timer_.async_wait([this](const std::error_code& error) {
        deadline_timer_armed_ = false;
        if (!error) {
            on_deadline();
        }
    });
}

void Server::on_deadline() {
    // Deadlines are accept time + one fixed timeout, so the list is in deadline order.
    const auto now = Clock::now();
    while (pending_.head && pending_.head->deadline <= now) {
        log_.printf(1, "closing because timed out on receive");
        drop_pending(*pending_.head, nullptr);
    }
    arm_deadline_timer();
}

// ---- One request per connection -------------------------------------------------------------

asio::awaitable<std::optional<Server::Received>> Server::read_request(Connection& conn) {
    // Clients send a request in one piece, so one recv into the shared scratch buffer usually
    // brings all of it and nothing waits. A request that arrives in parts is collected in a
    // buffer of its own; the deadline timer ends one that never completes.
    std::vector<std::uint8_t> parts;
    const int fd = conn.socket.native_handle();
    for (;;) {
        const ssize_t n = ::recv(fd, scratch_.data(), scratch_.size(), MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            std::error_code error;
            co_await conn.socket.async_wait(Socket::wait_read,
                                            asio::redirect_error(use_awaitable, error));
            if (error) {
                co_return std::nullopt;  // closed meanwhile: deadline or shed
            }
            continue;
        }
        if (n <= 0) {
            if (!parts.empty()) {
                log_.printf(0, "got partial packet only on file descriptor %d (%zu)", fd,
                            parts.size());
            }
            co_return std::nullopt;
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
                co_return std::nullopt;
            }
            if (data.size() >= 2 + frame.length) {
                const auto body = data.subspan(2, frame.length);
                log_.dump("got request", as_chars(body));
                // Decoded here, before anything suspends: the scratch buffer is shared.
                co_return Received{wire::decode_request(body), body[0],
                                   data.size() > 2 + frame.length};
            }
        }
        if (parts.empty()) {
            parts.assign(data.begin(), data.end());
        }
    }
}

asio::awaitable<void> Server::delay_write() {
    if (options_.delay_write_s > 0) {
        std::error_code ignored;
        asio::steady_timer delay(io_, std::chrono::seconds(options_.delay_write_s));
        co_await delay.async_wait(asio::redirect_error(use_awaitable, ignored));
    }
}

asio::awaitable<void> Server::reply(Connection& conn, std::string_view head,
                                    std::string_view body) {
    std::error_code error;
    co_await delay_write();
    log_.dump("reply", head);
    // Almost every reply fits the socket's send buffer: one send and done. The rest of a
    // larger one goes out as the peer reads, under the connection's deadline.
    const std::size_t sent = send_without_waiting(conn.socket, head, body);
    if (sent == head.size() + body.size()) {
        co_return;
    }
    const std::size_t head_sent = std::min(sent, head.size());
    const std::array<asio::const_buffer, 2> rest{asio::buffer(head.substr(head_sent)),
                                                 asio::buffer(body.substr(sent - head_sent))};
    co_await asio::async_write(conn.socket, rest, asio::redirect_error(use_awaitable, error));
}

asio::awaitable<void> Server::serve(std::unique_ptr<Connection> conn) {
    std::optional<Received> received = co_await read_request(*conn);
    if (!received) {
        co_return;
    }
    wire::DecodeResult& decoded = received->decoded;
    if (!decoded.request) {
        log_.printf(decoded.error == wire::DecodeError::unknown_request ? 0 : 1,
                    "got garbage (%s, request code %d)",
                    std::string(to_string(decoded.error)).c_str(), received->code);
        co_return;
    }
    wire::Request& request = *decoded.request;

    if (auto* alive = std::get_if<wire::Alive2Request>(&request)) {
        if (received->excess) {
            // More bytes on a connection that would hold a registration: by the rules any
            // byte after ALIVE2 ends it, so nothing is registered (the reference's close).
            log_.printf(1, "got data after ALIVE2_REQ, closing");
            co_return;
        }
        co_await handle_alive2(conn, std::move(alive->node));
    } else if (const auto* lookup = std::get_if<wire::PortPlease2Request>(&request)) {
        if (!options_.port_please_access.allows(conn->peer)) {
            if (access_warning_.allow()) {
                log_.printf(0, "PORT_PLEASE2_REQ from %s refused by -port_please_access",
                            conn->peer.to_string().c_str());
            }
            co_return;
        }
        const Registry::ActiveNode* node = registry_.find(lookup->name);
        const std::string answer =
            node ? wire::encode_port2_found(node->info) : wire::encode_port2_not_found();
        co_await reply(*conn, answer);
    } else if (std::holds_alternative<wire::NamesRequest>(request)) {
        if (!options_.names_access.allows(conn->peer)) {
            if (access_warning_.allow()) {
                log_.printf(0, "NAMES_REQ from %s refused by -names_access",
                            conn->peer.to_string().c_str());
            }
            co_return;
        }
        std::string header;
        wire::append_port_header(header, options_.port);
        // Shared, so that a registration during a slow write does not touch these bytes.
        const std::shared_ptr<const std::string> names = registry_.names_text();
        co_await reply(*conn, header, *names);
    } else if (std::holds_alternative<wire::DumpRequest>(request)) {
        if (!is_local(*conn)) {
            log_.printf(0, "DUMP_REQ from non local address");
            co_return;
        }
        std::string header;
        wire::append_port_header(header, options_.port);
        const std::string text = registry_.dump_text();
        co_await reply(*conn, header, text);
    } else if (std::holds_alternative<wire::KillRequest>(request)) {
        if (!is_local(*conn)) {
            log_.printf(0, "KILL_REQ from non local address");
            co_return;
        }
        if (!options_.relaxed_command_check && registry_.active_count() > 0) {
            log_.printf(0, "Disallowed KILL_REQ, live nodes");
            co_await reply(*conn, wire::kill_refused);
            co_return;
        }
        co_await reply(*conn, wire::kill_ok);
        log_.printf(1, "epmd killed");
        shutdown();
    } else if (const auto* stop = std::get_if<wire::StopRequest>(&request)) {
        if (!is_local(*conn)) {
            log_.printf(0, "STOP_REQ from non local address");
            co_return;
        }
        if (!options_.relaxed_command_check) {
            log_.printf(0, "Disallowed STOP_REQ, no relaxed_command_check");
            co_return;
        }
        const std::string answer = handle_stop(stop->name);
        co_await reply(*conn, answer);
    }
}

bool Server::is_local(Connection& conn) {
    if (is_loopback(conn.peer)) {
        return true;
    }
    // A same-host client that came in through a non-loopback interface.
    std::error_code error;
    const auto local = conn.socket.local_endpoint(error);
    return !error && local.address() == conn.peer;
}

// ---- Registrations --------------------------------------------------------------------------

asio::awaitable<void> Server::handle_alive2(std::unique_ptr<Connection>& conn,
                                            wire::NodeInfo node) {
    if (!is_local(*conn)) {
        log_.printf(0, "ALIVE2_REQ from non local address");
        co_return;
    }
    const std::uint16_t highest_version = node.highest_version;
    const std::string name = node.name;
    bool acceptable = true;
    if (const wire::NameCheck check = wire::check_name(name); check != wire::NameCheck::ok) {
        log_.printf(0, "refusing to register a node: invalid name (%s)",
                    check == wire::NameCheck::unsafe_character ? "control character or space"
                    : check == wire::NameCheck::too_long       ? "too long"
                    : check == wire::NameCheck::not_utf8       ? "not UTF-8"
                                                               : "too many characters");
        acceptable = false;
    } else if (node.extra.size() > wire::max_extra_bytes) {
        log_.printf(0, "refusing to register %s: extra data too long", name.c_str());
        acceptable = false;
    }
    if (options_.delay_write_s > 0) {
        co_await delay_write();
        if (!conn->socket.is_open()) {
            co_return;  // timed out or shed meanwhile
        }
    }

    // From here to hold_registration() nothing suspends, so no other request can observe a
    // registration whose reply has not been sent.
    std::optional<std::uint32_t> creation;
    if (acceptable) {
        const int fd = conn->socket.native_handle();
        creation = registry_.add(node, fd, conn.get());
        if (!creation) {
            const Registry::ActiveNode* holder = registry_.find(name);
            if (holder && drop_if_peer_gone(*holder)) {
                creation = registry_.add(std::move(node), fd, conn.get());
            }
        }
        if (!creation) {
            log_.printf(0, "node name already occupied %s", name.c_str());
        }
    }
    const std::string answer =
        wire::encode_alive2_reply(highest_version, creation.has_value(), creation.value_or(0));
    log_.dump("reply", answer);
    // A few bytes into a fresh connection's empty send buffer: this send completes at once.
    const bool sent = send_without_waiting(conn->socket, answer, {}) == answer.size();
    if (!creation) {
        co_return;  // refused: the reply is sent, the connection closes
    }
    if (!sent) {
        registry_.remove(name);
        co_return;
    }
    log_.printf(1, "registered %s at port %d, creation %u", name.c_str(),
                registry_.find(name)->info.port, *creation);
    conn->name = name;
    hold_registration(std::move(conn));
    log_node_table();
}

bool Server::drop_if_peer_gone(const Registry::ActiveNode& holder) {
    // The holder's peer may have closed (or sent a byte) in the same event-loop round: its
    // readiness has not been handled yet, but it is already gone as far as the rules go.
    auto* owner = static_cast<Connection*>(holder.owner);
    char probe = 0;
    const ssize_t n = ::recv(owner->socket.native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return false;
    }
    log_.printf(1, "unregistering %s: its connection has already ended", owner->name.c_str());
    registry_.remove(owner->name);
    std::error_code ignored;
    owner->socket.close(ignored);  // its wait completes with operation_aborted and frees it
    return true;
}

void Server::hold_registration(std::unique_ptr<Connection> conn) {
    unlink_pending(*conn);
    registered_.push_back(*conn);
    conn->list = Connection::List::registered;
    // Owned by this wait from now on: any readiness (EOF, error, a stray byte) ends it.
    Connection* held = conn.release();
    held->socket.async_wait(Socket::wait_read, [this, held](const std::error_code& error) {
        end_registration(std::unique_ptr<Connection>(held), error);
    });
}

void Server::end_registration(std::unique_ptr<Connection> conn, const std::error_code&) {
    const Registry::ActiveNode* node = registry_.find(conn->name);
    if (node && node->owner == conn.get()) {
        log_.printf(1, "unregistering '%s', port %d", conn->name.c_str(), node->info.port);
        registry_.remove(conn->name);
        log_node_table();
    }
}

std::string Server::handle_stop(const std::string& name) {
    const Registry::ActiveNode* node = registry_.find(name);
    if (!node) {
        return std::string(wire::stop_unknown);
    }
    auto* holder = static_cast<Connection*>(node->owner);
    registry_.remove(name);
    std::error_code ignored;
    holder->socket.close(ignored);
    log_.printf(1, "stopped %s", name.c_str());
    log_node_table();
    return std::string(wire::stop_done);
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
