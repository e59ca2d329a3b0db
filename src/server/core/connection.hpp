// SPDX-License-Identifier: Apache-2.0
// One client connection that had to wait: for its request, for its reply to be written, or
// while it holds a registration.
//
// A connection's life:
//   accepted, request already there: answered in one go and closed by the accept loop; no
//       Connection (and no reactor registration) is ever made for it.
//   accepted -> pending: on the admission's pending list, under the packet deadline
//       (accept time + -packet_timeout), counted against -max_pending_per_address.
//   pending -> closed: its reply is sent, or its request was garbage or refused.
//   pending -> dropped: its deadline passed, it was shed for a newcomer, or the daemon shuts
//       down. The socket is closed; the coroutine's wait ends and it unwinds.
//   pending -> registered: its ALIVE2 was accepted. Off the pending list, no deadline; the
//       registry names it as the holder of the node.
//   registered -> unregistered -> closed: its peer closed or sent a byte, STOP named the node,
//       a new ALIVE2 for the name found the peer gone, or KILL / shutdown.
//   adopted (taken back from the previous process) -> registered: no Asio socket at first, only
//       its descriptor (adopted_fd), until the event loop gets to it (Server::watch_restored);
//       meanwhile it is registered like any other, through registration_fd and
//       close_registration.
// Server::on_accepted, serve, carry_out, handle_alive2 and hold_registration walk through these
// states in that order.
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <cstdint>
#include <string_view>

#include "server/core/admission.hpp"

namespace epmdx::server {

using Socket = asio::basic_stream_socket<asio::ip::tcp, asio::io_context::executor_type>;

struct Connection;
using Admission = BasicAdmission<Connection>;

struct Connection : AdmissionEntry<Connection> {
    Connection(Admission& admission, Socket socket, const asio::ip::address& peer,
               Clock::time_point accepted)
        : admission(admission), socket(std::move(socket)), accepted(accepted) {
        admission.open(*this, peer, accepted);
    }
    // An adopted registration's connection: fd goes to socket later (adopted_fd).
    Connection(Admission& admission, asio::io_context& io, int fd, const asio::ip::address& peer,
               Clock::time_point accepted)
        : admission(admission), socket(io), accepted(accepted), adopted_fd(fd) {
        admission.open(*this, peer, accepted);
    }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;
    ~Connection() {
        if (adopted_fd >= 0) {
            ::close(adopted_fd);  // never given to socket, which would have closed it
        }
        admission.close(*this);
    }

    Admission& admission;
    Socket socket;
    Clock::time_point accepted;  // where its request's service time is counted from
    // Set once it holds a registration: what identifies its socket to the next process.
    std::uint64_t socket_inode = 0;
    // An adopted registration's descriptor, until it is assigned to socket; -1 otherwise.
    int adopted_fd = -1;

    // The descriptor holding its registration, assigned to socket or not; -1 once closed.
    int registration_fd() { return socket.is_open() ? socket.native_handle() : adopted_fd; }
    // Closes that descriptor. A wait on the socket then completes with operation_aborted, and
    // one started later fails at once.
    void close_registration();
};

// The peer (or local) address in a sockaddr from accept or getsockname().
asio::ip::address address_of(const sockaddr_storage& address, socklen_t length);

// fstat(fd).st_ino: the same in every process holding the socket (what the next process
// matches a handed-over registration by).
std::uint64_t socket_inode(int fd);

// Sends what the socket takes right now, head then body; returns the byte count (0 on error).
std::size_t send_without_waiting(int fd, std::string_view head, std::string_view body);

}  // namespace epmdx::server
