// SPDX-License-Identifier: Apache-2.0
// The platform layer with POSIX alone (platform.hpp): FreeBSD, macOS, and Linux built with
// EPMDX_PORTABLE=ON, which is how CI runs these paths. What takes one Linux call takes several
// here; a restart that keeps registrations is not available (it needs memfd seals and
// /proc/self/exe), and the metrics lack what only /proc tells.
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <unistd.h>

#include <algorithm>
#include <asio/detail/config.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>

#include "platform/platform.hpp"

namespace epmdx::platform {
namespace {

// Why: the state would need memfd seals, re-executing /proc/self/exe (docs/portability.md).
constexpr std::string_view no_restart =
    "a portable build (EPMDX_PORTABLE) has no restart that keeps registrations (Linux only)";

// When this process started, near enough: static initialization runs before main().
const double start_time_seconds =
    std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();

// Makes a new descriptor close-on-exec and non-blocking; closes it and returns -1 on failure.
int prepare(int fd) {
    if (fd < 0) {
        return -1;
    }
    const int flags = ::fcntl(fd, F_GETFL);
    if (::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0 || flags < 0 ||
        ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
        const int error = errno;
        ::close(fd);
        errno = error;
        return -1;
    }
    return fd;
}

// One past the highest descriptor this process may have open.
int descriptor_end() {
    const long most = ::sysconf(_SC_OPEN_MAX);
    return most > 0 && most < INT32_MAX ? static_cast<int>(most) : INT32_MAX;
}

}  // namespace

int accept_connection(int listener, sockaddr_storage& peer, socklen_t& length) {
    length = sizeof peer;
    return prepare(::accept(listener, reinterpret_cast<sockaddr*>(&peer), &length));
}

int open_socket(int family, int type) {
    return prepare(::socket(family, type, 0));
}

int open_socket_pair(int type, int (&ends)[2]) {
    if (::socketpair(AF_UNIX, type, 0, ends) != 0) {
        return -1;
    }
    if (prepare(ends[0]) < 0) {
        const int error = errno;
        ::close(ends[1]);
        errno = error;
        return -1;
    }
    if (prepare(ends[1]) < 0) {
        const int error = errno;
        ::close(ends[0]);
        errno = error;
        return -1;
    }
    return 0;
}

void set_close_on_exec(int first, int last) {
    const int end = last < 0 ? descriptor_end() : std::min(last + 1, descriptor_end());
    for (int fd = first; fd < end; ++fd) {
        ::fcntl(fd, F_SETFD, FD_CLOEXEC);  // EBADF for those not open
    }
}

void close_from(int first) {
    for (int fd = first, end = descriptor_end(); fd < end; ++fd) {
        ::close(fd);
    }
}

ssize_t receive_with_descriptors(int fd, msghdr& message) {
    const ssize_t n = ::recvmsg(fd, &message, MSG_DONTWAIT);
    if (n < 0) {
        return n;
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(&message); c != nullptr; c = CMSG_NXTHDR(&message, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (std::size_t i = 0; i < count; ++i) {
                int received = -1;
                std::memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof received);
                ::fcntl(received, F_SETFD, FD_CLOEXEC);
            }
        }
    }
    return n;
}

std::optional<int> socket_family(int fd) {
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
        return std::nullopt;
    }
    return address.ss_family;
}

std::optional<std::uint64_t> reactor_descriptor_limit() {
#if defined(ASIO_HAS_EPOLL) || defined(ASIO_HAS_KQUEUE) || defined(ASIO_HAS_DEV_POLL)
    return std::nullopt;
#else
    return FD_SETSIZE;
#endif
}

std::optional<bool> tcp_established(int fd) {
    const std::optional<int> family = socket_family(fd);
    if (socket_option<int>(fd, SOL_SOCKET, SO_TYPE) != SOCK_STREAM || !family ||
        (*family != AF_INET && *family != AF_INET6)) {
        return std::nullopt;
    }
    // Connected, as POSIX can tell: a peer that has closed its end is seen only on reading.
    sockaddr_storage peer{};
    socklen_t length = sizeof peer;
    return ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &length) == 0;
}

int seal_bytes(std::string_view /*bytes*/, std::string& error) {
    error = no_restart;
    return -1;
}

std::optional<std::vector<std::uint8_t>> read_sealed_bytes(int /*fd*/, std::uint64_t /*max_bytes*/,
                                                           std::string& error) {
    error = no_restart;
    return std::nullopt;
}

std::optional<CommandLine> own_command_line(std::string& error) {
    error = no_restart;
    return std::nullopt;
}

ProcessStats process_stats() {
    ProcessStats stats;
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
        stats.max_fds = limit.rlim_cur;
    }
    rusage usage{};
    if (::getrusage(RUSAGE_SELF, &usage) == 0) {
        const auto seconds = [](const timeval& t) {
            return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
        };
        stats.cpu_seconds = seconds(usage.ru_utime) + seconds(usage.ru_stime);
    }
    stats.start_time_seconds = start_time_seconds;
    return stats;
}

}  // namespace epmdx::platform
