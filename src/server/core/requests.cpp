// SPDX-License-Identifier: Apache-2.0
// One handler per request, like the cases of OTP's do_request. decide() checks what every
// request shares (the packet decoded, the peer allowed to ask), and for NAMES and DUMP the
// source's listing rate (may_list), then hands over to the handler.
#include <sys/socket.h>

#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <cerrno>
#include <variant>

#include "server/core/server.hpp"

namespace epmdx::server {
namespace {

const char* request_name(wire::Code request) {
    switch (request) {
        case wire::Code::alive2_req:
            return "ALIVE2_REQ";
        case wire::Code::port_please2_req:
            return "PORT_PLEASE2_REQ";
        case wire::Code::names_req:
            return "NAMES_REQ";
        case wire::Code::dump_req:
            return "DUMP_REQ";
        case wire::Code::kill_req:
            return "KILL_REQ";
        case wire::Code::stop_req:
            return "STOP_REQ";
        default:
            return "request";
    }
}

// The address the peer connected to: equal to the peer's own for a same-host client.
std::optional<asio::ip::address> local_address(int fd) {
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
        return std::nullopt;
    }
    return address_of(address, length);
}

// How a request refused for its peer is counted.
RequestOutcome refusal_outcome(wire::Code request, RequestPolicy::Verdict verdict) {
    switch (verdict) {
        case RequestPolicy::Verdict::refused_by_names_access:
            return RequestOutcome::names_refused_by_access_rule;
        case RequestPolicy::Verdict::refused_by_port_please_access:
            return RequestOutcome::port_please2_refused_by_access_rule;
        default:
            break;
    }
    switch (request) {
        case wire::Code::alive2_req:
            return RequestOutcome::alive2_not_local;
        case wire::Code::kill_req:
            return RequestOutcome::kill_not_local;
        case wire::Code::stop_req:
            return RequestOutcome::stop_not_local;
        default:
            return RequestOutcome::dump_not_local;
    }
}

// A refused ALIVE2's reason in events: one token per rule the name or extra broke.
std::string_view refusal_reason(wire::Alive2Refusal refusal) {
    switch (refusal) {
        case wire::Alive2Refusal::name_too_long:
            return "name_too_long";
        case wire::Alive2Refusal::name_not_utf8:
            return "name_not_utf8";
        case wire::Alive2Refusal::name_too_many_code_points:
            return "name_too_many_characters";
        case wire::Alive2Refusal::name_unsafe_character:
            return "name_unsafe_character";
        case wire::Alive2Refusal::extra_too_long:
            return "extra_too_long";
    }
    return "invalid_name";
}

// How a refused ALIVE2 is counted: a refusal of its name or extra, or else the name was taken.
RequestOutcome alive2_refused_outcome(std::optional<wire::Alive2Refusal> refusal) {
    if (!refusal) {
        return RequestOutcome::alive2_duplicate_name;
    }
    return refusal == wire::Alive2Refusal::extra_too_long ? RequestOutcome::alive2_extra_too_long
                                                          : RequestOutcome::alive2_invalid_name;
}

template <typename... Handlers>
struct Overloaded : Handlers... {
    using Handlers::operator()...;
};
template <typename... Handlers>
Overloaded(Handlers...) -> Overloaded<Handlers...>;

}  // namespace

Server::Outcome Server::decide(Received& received, const asio::ip::address& peer, int fd) {
    wire::DecodeResult& decoded = received.decoded;
    if (!decoded.request) {
        if (decoded.error == wire::DecodeError::bytes_after_alive2) {
            log_.printf(1, "got data after ALIVE2_REQ, closing");
        } else {
            log_.printf(decoded.error == wire::DecodeError::unknown_request ? 0 : 1,
                        "got garbage (%s, request code %d)",
                        std::string(to_string(decoded.error)).c_str(), received.code);
        }
        observer_.closed(CloseReason::malformed_request, peer, {});
        return {};
    }
    const auto request = static_cast<wire::Code>(received.code);
    const RequestPolicy::Verdict verdict = may_ask(request, peer, fd);
    if (verdict != RequestPolicy::Verdict::allowed) {
        Outcome outcome;
        outcome.refused = refusal_outcome(request, verdict);
        if (auto* alive = std::get_if<wire::Alive2Request>(&*decoded.request)) {
            outcome.node = std::move(alive->node);  // for the refused registration's event
        }
        return outcome;
    }
    const auto refused = [](RequestOutcome why) {
        Outcome outcome;
        outcome.refused = why;
        return outcome;
    };
    const auto answer = [](Answer answer) {
        Outcome outcome;
        outcome.kind = Outcome::Kind::answer;
        outcome.answer = std::move(answer);
        return outcome;
    };
    return std::visit(
        Overloaded{
            [&](wire::Alive2Request& alive) {
                Outcome outcome;
                outcome.kind = Outcome::Kind::register_node;
                outcome.node = std::move(alive.node);
                outcome.refusal = decoded.alive2_refusal;
                return outcome;
            },
            [&](const wire::PortPlease2Request& lookup) {
                return answer(handle_port_please2(lookup));
            },
            [&](const wire::NamesRequest&) {
                return may_list(request, peer) ? answer(handle_names())
                                               : refused(RequestOutcome::names_rate_limited);
            },
            [&](const wire::DumpRequest&) {
                return may_list(request, peer) ? answer(handle_dump())
                                               : refused(RequestOutcome::dump_rate_limited);
            },
            [&](const wire::KillRequest&) { return answer(handle_kill()); },
            [&](const wire::StopRequest& stop) {
                std::optional<Answer> done = handle_stop(stop);
                return done ? answer(std::move(*done)) : refused(RequestOutcome::stop_disallowed);
            },
        },
        *decoded.request);
}

RequestPolicy::Verdict Server::may_ask(wire::Code request, const asio::ip::address& peer, int fd) {
    const RequestPolicy::Verdict verdict =
        policy_.check(request, peer, [fd] { return local_address(fd); });
    switch (verdict) {
        case RequestPolicy::Verdict::allowed:
            break;
        case RequestPolicy::Verdict::not_local:
            log_.printf(0, "%s from non local address", request_name(request));
            break;
        case RequestPolicy::Verdict::refused_by_names_access:
        case RequestPolicy::Verdict::refused_by_port_please_access:
            if (access_warning_.allow()) {
                log_.printf(
                    0, "%s from %s refused by -%s", request_name(request), peer.to_string().c_str(),
                    request == wire::Code::names_req ? "names_access" : "port_please_access");
            }
            break;
    }
    return verdict;
}

bool Server::may_list(wire::Code request, const asio::ip::address& peer) {
    if (listing_rate_.allow(peer, Clock::now())) {
        return true;
    }
    if (listing_rate_warning_.allow()) {
        log_.printf(0, "%s from %s closed unanswered: %s is over -listing_rate %zu/s%s",
                    request_name(request), peer.to_string().c_str(),
                    describe_source(peer, options_.source_prefix).c_str(), options_.listing_rate,
                    listing_rate_warning_.note());
    }
    return false;
}

// ---- ALIVE2: register, hold the registration while the connection lasts, unregister ------

std::optional<std::uint32_t> Server::add_registration(wire::NodeInfo node, Connection& conn,
                                                      std::string_view& refused_because) {
    const int fd = conn.socket.native_handle();
    std::optional<std::uint32_t> creation = registry_.add(node, fd, &conn);
    if (creation) {
        return creation;
    }
    const Registry::ActiveNode* holder = registry_.find(node.name);
    if (holder && holder->is_static) {
        // No connection to probe: the name is held for as long as the daemon runs.
        log_.printf(0, "refusing to register %s: the name is a static entry (-static)",
                    node.name.c_str());
        refused_because = "static_name";
        return std::nullopt;
    }
    const std::string name = node.name;
    if (holder && drop_if_peer_gone(*holder)) {
        creation = registry_.add(std::move(node), fd, &conn);
    }
    if (!creation) {
        log_.printf(0, "node name already occupied %s", name.c_str());
        refused_because = "duplicate_name";
    }
    return creation;
}

asio::awaitable<void> Server::handle_alive2(std::unique_ptr<Connection> conn, wire::NodeInfo node,
                                            std::optional<wire::Alive2Refusal> refusal) {
    if (refusal == wire::Alive2Refusal::extra_too_long) {
        log_.printf(0, "refusing to register %s: extra data too long", node.name.c_str());
    } else if (refusal) {
        log_.printf(0, "refusing to register a node: invalid name (%s)",
                    std::string(to_string(*refusal)).c_str());
    }
    if (options_.delay_write_s > 0) {
        co_await delay_write();
    }
    if (!conn->socket.is_open()) {
        co_return;  // timed out or shed meanwhile
    }

    // From here to the wait below nothing suspends, so no other request can observe a
    // registration whose reply has not been sent.
    const std::uint16_t highest_version = node.highest_version;
    const std::uint16_t port = node.port;
    const std::string name = node.name;
    const int fd = conn->socket.native_handle();
    std::optional<std::uint32_t> creation;
    std::string_view refused_because = refusal ? refusal_reason(*refusal) : "";
    if (!refusal) {
        creation = add_registration(std::move(node), *conn, refused_because);
    }
    const std::string answer =
        wire::encode_alive2_reply(highest_version, creation.has_value(), creation.value_or(0));
    log_.dump("reply", answer);
    // A few bytes into a fresh connection's empty send buffer: this send completes at once.
    const bool sent = send_without_waiting(fd, answer, {}) == answer.size();
    if (!creation) {
        const auto now = Clock::now();
        observer_.registration_refused(alive2_refused_outcome(refusal), now - conn->accepted,
                                       refused_because,
                                       {.name = name, .port = port, .peer = conn->peer});
        accept_mark_ = now;
        co_return;  // refused: the reply is sent, the connection closes
    }
    count_request(RequestOutcome::alive2_accepted, conn->accepted);
    if (!sent) {
        registry_.remove(name);
        co_return;
    }
    observer_.registered({.name = name,
                          .port = port,
                          .creation = *creation,
                          .peer = conn->peer,
                          .info = &registry_.find(name)->info});
    log_.printf(1, "registered %s at port %d, creation %u", name.c_str(), port, *creation);
    admission_.leave_pending(*conn);
    log_node_table();
    // Ready to be handed over at any time (A-RESTART) without a system call per registration.
    conn->socket_inode = socket_inode(fd);

    // Registered. The rest of its life is a callback rather than a co_await here: a suspended
    // coroutine keeps its frames, and measured with 19,800 registrations that took 2,165 B of
    // resident memory per registration against 748 B with the callback.
    hold_registration(std::move(conn), name);
}

void Server::hold_registration(std::unique_ptr<Connection> conn, std::string name) {
    // Any readiness (EOF, error, a stray byte) ends it, and so does a close by STOP, KILL,
    // shutdown or a new ALIVE2 that found the peer gone. Readiness that came before the wait
    // is not missed: starting a wait re-arms the descriptor with the reactor.
    Connection& held = *conn;
    held.socket.async_wait(
        Socket::wait_read, [this, conn = std::move(conn),
                            name = std::move(name)](const std::error_code& error) mutable {
            try {
                // A wait can complete with nothing to read: Asio recycles its per-descriptor state,
                // and an event fetched for a socket closed in the same round can land on the new
                // socket that took it over. Seen as "registered, then unregistered at once" under
                // load. Only a peer that is really gone ends a registration.
                if (!error && conn->socket.is_open() && !peer_gone(conn->socket.native_handle())) {
                    hold_registration(std::move(conn), std::move(name));
                    return;
                }
                const Registry::ActiveNode* node = registry_.find(name);
                if (node && node->holder == conn.get()) {
                    log_.printf(1, "unregistering '%s', port %d", name.c_str(), node->info.port);
                    // Handed over, the node stays registered with the next process.
                    if (phase_ != Phase::handed_over) {
                        note_unregistered(
                            *node, phase_ == Phase::stopped ? "shutdown" : "connection_closed");
                    }
                    registry_.remove(name);
                    log_node_table();
                }
            } catch (...) {
                log_exception(std::current_exception());
            }
        });
}

bool Server::peer_gone(int fd) {
    // Closed, reset, or a stray byte (which the rules treat as the end of the registration).
    char probe = 0;
    const ssize_t n = ::recv(fd, &probe, 1, MSG_PEEK | MSG_DONTWAIT);
    return !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR));
}

bool Server::drop_if_peer_gone(const Registry::ActiveNode& holder) {
    // The holder's peer may have closed (or sent a byte) in the same event-loop round: its
    // readiness has not been handled yet, but it is already gone as far as the rules go.
    Connection& conn = *holder.holder;
    if (!peer_gone(conn.registration_fd())) {
        return false;
    }
    const std::string name = holder.info.name;
    log_.printf(1, "unregistering %s: its connection has already ended", name.c_str());
    note_unregistered(holder, "connection_closed");
    registry_.remove(name);
    conn.close_registration();
    return true;
}

// ---- The other requests: answered from the node table, nothing to wait for ---------------

Server::Answer Server::handle_port_please2(const wire::PortPlease2Request& request) {
    const Registry::ActiveNode* node = registry_.find(request.name);
    if (!node) {
        return {RequestOutcome::port_please2_not_found, wire::encode_port2_not_found()};
    }
    return {RequestOutcome::port_please2_found, wire::encode_port2_found(node->info)};
}

Server::Answer Server::handle_names() {
    Answer answer{RequestOutcome::names_answered, {}};
    wire::append_port_header(answer.head, options_.port);
    // Shared, so that a registration during a slow write does not touch these bytes.
    answer.body = registry_.names_text();
    return answer;
}

Server::Answer Server::handle_dump() {
    Answer answer{RequestOutcome::dump_answered, {}};
    wire::append_port_header(answer.head, options_.port);
    answer.body = std::make_shared<const std::string>(registry_.dump_text());
    return answer;
}

Server::Answer Server::handle_kill() {
    // Static entries are configuration, not live nodes: they never hold KILL back.
    if (!options_.relaxed_command_check && registry_.registered_count() > 0) {
        log_.printf(0, "Disallowed KILL_REQ, live nodes");
        return {RequestOutcome::kill_refused_live_nodes, std::string(wire::kill_refused)};
    }
    return {RequestOutcome::kill_done, std::string(wire::kill_ok), nullptr, true};
}

std::optional<Server::Answer> Server::handle_stop(const wire::StopRequest& request) {
    if (!options_.relaxed_command_check) {
        log_.printf(0, "Disallowed STOP_REQ, no relaxed_command_check");
        return std::nullopt;
    }
    const Registry::ActiveNode* node = registry_.find(request.name);
    if (!node) {
        return Answer{RequestOutcome::stop_unknown_node, std::string(wire::stop_unknown)};
    }
    if (node->is_static) {
        // No registration to end: a static entry lasts until the daemon restarts.
        log_.printf(0, "STOP_REQ for %s refused: the name is a static entry (-static)",
                    request.name.c_str());
        return Answer{RequestOutcome::stop_unknown_node, std::string(wire::stop_unknown)};
    }
    Connection& holder = *node->holder;
    note_unregistered(*node, "stop");
    registry_.remove(request.name);
    holder.close_registration();
    log_.printf(1, "stopped %s", request.name.c_str());
    log_node_table();
    return Answer{RequestOutcome::stop_done, std::string(wire::stop_done)};
}

}  // namespace epmdx::server
