// SPDX-License-Identifier: Apache-2.0
// The platform layer: every system interface epmdx uses that POSIX does not have (accept4,
// SOCK_CLOEXEC/SOCK_NONBLOCK, close_range, memfd and its seals, TCP_INFO, SO_DOMAIN,
// MSG_CMSG_CLOEXEC, /proc) is called here and nowhere else. linux.cpp implements it with those
// calls; posix.cpp with POSIX alone, for FreeBSD, macOS and the EPMDX_PORTABLE build, which
// CMake (src/platform/CMakeLists.txt) picks instead. The rest of the tree (server, client) uses
// these functions and no platform #ifdefs. Where POSIX has no equivalent, the fallback says so:
// the restart that keeps registrations needs Linux (docs/differences.md A-RESTART).
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace epmdx::platform {

// ---- Descriptors --------------------------------------------------------------------------

// One socket option's value (getsockopt, POSIX); nullopt if the call fails.
template <typename Value>
std::optional<Value> socket_option(int fd, int level, int option) {
    Value value{};
    socklen_t length = sizeof value;
    if (::getsockopt(fd, level, option, &value, &length) != 0) {
        return std::nullopt;
    }
    return value;
}

// Takes a connection from a listening socket, non-blocking and close-on-exec. Returns it, or -1
// with errno set (EAGAIN/EWOULDBLOCK: nobody is waiting).
int accept_connection(int listener, sockaddr_storage& peer, socklen_t& length);
// socket(family, type, 0), non-blocking and close-on-exec; -1 with errno set.
int open_socket(int family, int type);
// socketpair(AF_UNIX, type, 0), both ends non-blocking and close-on-exec; -1 with errno set.
int open_socket_pair(int type, int (&ends)[2]);
// Sets FD_CLOEXEC on every open descriptor from first to last (inclusive; last < 0: no end).
void set_close_on_exec(int first, int last);
// Closes every descriptor from first on.
void close_from(int first);
// recvmsg without waiting; descriptors received (SCM_RIGHTS) are close-on-exec.
ssize_t receive_with_descriptors(int fd, msghdr& message);
// The address family of a socket (AF_UNIX, AF_INET, ...), nullopt if fd is not a socket.
std::optional<int> socket_family(int fd);
// How many descriptors (0 to N-1) the event loop's reactor can watch: nullopt for any number
// (epoll, kqueue), FD_SETSIZE for select() (Asio's choice on Linux without epoll).
std::optional<std::uint64_t> reactor_descriptor_limit();
// Whether a TCP socket's connection is established (not listening, unconnected or closed by the
// peer); nullopt if fd is not a TCP socket.
std::optional<bool> tcp_established(int fd);

// ---- Restarts that keep registrations -----------------------------------------------------

// A descriptor holding these bytes that no process can change: the state a restarted process
// reads back. -1 and error set on failure.
int seal_bytes(std::string_view bytes, std::string& error);
// What seal_bytes stored, at most max_bytes of it; nullopt and error set if fd is not such a
// descriptor or cannot be read.
std::optional<std::vector<std::uint8_t>> read_sealed_bytes(int fd, std::uint64_t max_bytes,
                                                           std::string& error);

// How this process was started, to start its binary again in its place.
struct CommandLine {
    std::string executable;  // absolute, symbolic links resolved
    std::vector<std::string> argv;
};
// nullopt and error set if it cannot be known (always, where re-executing is not supported).
std::optional<CommandLine> own_command_line(std::string& error);

// ---- The process, for the metrics ---------------------------------------------------------

// A field that cannot be read here is nullopt (and left out of the metrics).
struct ProcessStats {
    std::optional<std::uint64_t> open_fds;
    std::optional<std::uint64_t> max_fds;
    std::optional<std::uint64_t> resident_memory_bytes;
    std::optional<std::uint64_t> virtual_memory_bytes;
    std::optional<double> cpu_seconds;
    std::optional<double> start_time_seconds;  // since the Unix epoch
};
ProcessStats process_stats();

}  // namespace epmdx::platform
