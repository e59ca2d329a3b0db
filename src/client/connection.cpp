// SPDX-License-Identifier: Apache-2.0
#include "client/connection.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "platform/platform.hpp"

namespace epmdx::client::detail {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<Candidate> loopback_candidates(std::uint16_t port) {
    Candidate v6;
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&v6.address);
    a6->sin6_family = AF_INET6;
    a6->sin6_addr = in6addr_loopback;
    a6->sin6_port = htons(port);
    v6.length = sizeof(sockaddr_in6);
    Candidate v4;
    auto* a4 = reinterpret_cast<sockaddr_in*>(&v4.address);
    a4->sin_family = AF_INET;
    a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a4->sin_port = htons(port);
    v4.length = sizeof(sockaddr_in);
    return {v6, v4};
}

// getaddrinfo() for a stream socket; returns its status.
int look_up(const std::string& host, std::uint16_t port, int flags, std::vector<Candidate>& out) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | flags;
    addrinfo* found = nullptr;
    const int status = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
    if (status != 0) {
        return status;
    }
    for (const addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
        Candidate c;
        std::memcpy(&c.address, ai->ai_addr, ai->ai_addrlen);
        c.length = ai->ai_addrlen;
        out.push_back(c);
    }
    ::freeaddrinfo(found);
    return 0;
}

// A resolver call that may outlive its caller: shared with the thread that runs it.
struct PendingLookup {
    std::mutex mutex;
    std::condition_variable finished;
    bool done = false;
    int status = 0;
    int system_error = 0;
    std::vector<Candidate> found;
};

Result<std::vector<Candidate>> lookup_result(int status, int system_error,
                                             std::vector<Candidate> found) {
    if (status == 0 && !found.empty()) {
        return found;
    }
    Error error{ErrorCode::cannot_resolve, {}, status == EAI_SYSTEM ? system_error : 0};
    error.detail = status == 0 ? "no address" : ::gai_strerror(status);
    return error;
}

// Waits for `events` on fd; false on timeout (errno set to ETIMEDOUT) or poll failure.
bool wait_for(int fd, short events, const Deadline& deadline) {
    pollfd p{fd, events, 0};
    for (;;) {
        const int ready = ::poll(&p, 1, deadline.poll_timeout_ms());
        if (ready > 0) {
            return true;
        }
        if (ready == 0) {
            errno = ETIMEDOUT;
            return false;
        }
        if (errno != EINTR) {
            return false;
        }
    }
}

int connect_to(const Candidate& candidate, const Deadline& deadline) {
    const int fd = platform::open_socket(candidate.address.ss_family, SOCK_STREAM);
    if (fd < 0) {
        return -1;
    }
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&candidate.address), candidate.length) ==
        0) {
        return fd;
    }
    if (errno == EINPROGRESS && wait_for(fd, POLLOUT, deadline)) {
        int error = 0;
        socklen_t length = sizeof error;
        if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error == 0) {
            return fd;
        }
        errno = error;  // why the connection failed, e.g. ECONNREFUSED
    }
    const int reason = errno;
    ::close(fd);
    errno = reason;
    return -1;
}

}  // namespace

Result<std::vector<Candidate>> resolve(const std::string& host, std::uint16_t port,
                                       const Deadline& deadline) {
    std::vector<Candidate> found;
    if (look_up(host, port, AI_NUMERICHOST, found) == 0) {
        return found;
    }
    const int wait_ms = deadline.poll_timeout_ms();
    if (wait_ms < 0) {
        const int status = look_up(host, port, 0, found);
        return lookup_result(status, errno, std::move(found));
    }
    // getaddrinfo() has no timeout of its own, and a DNS server that does not answer keeps it
    // for many seconds: it runs on a thread of its own, abandoned (it cleans up after itself)
    // if the deadline passes first.
    auto pending = std::make_shared<PendingLookup>();
    try {
        std::thread([pending, host, port] {
            std::vector<Candidate> result;
            const int status = look_up(host, port, 0, result);
            const int system_error = errno;
            const std::scoped_lock lock(pending->mutex);
            pending->status = status;
            pending->system_error = system_error;
            pending->found = std::move(result);
            pending->done = true;
            pending->finished.notify_all();
        }).detach();
    } catch (const std::system_error&) {
        const int status = look_up(host, port, 0, found);
        return lookup_result(status, errno, std::move(found));
    }
    std::unique_lock lock(pending->mutex);
    if (!pending->finished.wait_for(lock, std::chrono::milliseconds(wait_ms),
                                    [&pending] { return pending->done; })) {
        Error error{ErrorCode::timed_out, {}, 0};
        error.detail = "no answer from the resolver within the timeout";
        return error;
    }
    return lookup_result(pending->status, pending->system_error, std::move(pending->found));
}

std::string numeric_address(const Candidate& candidate) {
    char text[NI_MAXHOST] = {};
    if (::getnameinfo(reinterpret_cast<const sockaddr*>(&candidate.address), candidate.length, text,
                      sizeof text, nullptr, 0, NI_NUMERICHOST) != 0) {
        return "?";
    }
    return text;
}

Deadline::Deadline(std::chrono::milliseconds timeout) {
    if (timeout.count() > 0) {
        at_ = Clock::now() + timeout;
    }
}

int Deadline::poll_timeout_ms() const {
    if (!at_) {
        return -1;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*at_ - Clock::now());
    return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

Result<Connection> Connection::open(const Options& options, const Deadline& deadline) {
    std::vector<Candidate> candidates;
    if (options.host.empty()) {
        candidates = loopback_candidates(options.port);
    } else {
        Result<std::vector<Candidate>> resolved = resolve(options.host, options.port, deadline);
        if (!resolved) {
            return resolved.error();
        }
        candidates = std::move(resolved.value());
    }
    int last_errno = 0;
    for (const Candidate& candidate : candidates) {
        const int fd = connect_to(candidate, deadline);
        if (fd >= 0) {
            return Connection(fd);
        }
        last_errno = errno;
    }
    return Error{ErrorCode::cannot_connect, {}, last_errno};
}

Connection::Connection(Connection&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

Connection& Connection::operator=(Connection&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0) {
            ::close(fd_);
        }
        fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
}

Connection::~Connection() {
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

std::string Connection::peer_address() const {
    Candidate peer;
    peer.length = sizeof peer.address;
    if (::getpeername(fd_, reinterpret_cast<sockaddr*>(&peer.address), &peer.length) != 0) {
        return {};
    }
    return numeric_address(peer);
}

int Connection::release() {
    return std::exchange(fd_, -1);
}

std::optional<Error> Connection::send_all(std::string_view bytes, const Deadline& deadline) {
    while (!bytes.empty()) {
        const ssize_t sent = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (sent > 0) {
            bytes.remove_prefix(static_cast<std::size_t>(sent));
            continue;
        }
        if (sent < 0 && errno == EINTR) {
            continue;
        }
        if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!wait_for(fd_, POLLOUT, deadline)) {
                return Error{
                    errno == ETIMEDOUT ? ErrorCode::timed_out : ErrorCode::write_failed, {}, errno};
            }
            continue;
        }
        return Error{ErrorCode::write_failed, {}, errno};
    }
    return std::nullopt;
}

void Connection::append_once(ReadResult& result, std::size_t max_bytes, const Deadline& deadline) {
    char buffer[4096];
    for (;;) {
        const ssize_t got = ::recv(fd_, buffer, std::min(max_bytes, sizeof buffer), 0);
        if (got > 0) {
            result.bytes.append(buffer, static_cast<std::size_t>(got));
            result.end = ReadEnd::complete;
            return;
        }
        if (got == 0) {
            result.end = ReadEnd::eof;
            return;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (wait_for(fd_, POLLIN, deadline)) {
                continue;
            }
            result.end = errno == ETIMEDOUT ? ReadEnd::timeout : ReadEnd::error;
        } else {
            result.end = ReadEnd::error;
        }
        result.system_error = errno;
        return;
    }
}

ReadResult Connection::read_once(std::size_t max_bytes, const Deadline& deadline) {
    ReadResult result;
    append_once(result, max_bytes, deadline);
    return result;
}

ReadResult Connection::read_exact(std::size_t n, const Deadline& deadline) {
    ReadResult result;
    while (result.bytes.size() < n) {
        append_once(result, n - result.bytes.size(), deadline);
        if (result.end != ReadEnd::complete) {
            return result;
        }
    }
    return result;
}

ReadResult Connection::read_to_end(const Deadline& deadline) {
    ReadResult result;
    for (;;) {
        append_once(result, 1 << 16, deadline);
        if (result.end != ReadEnd::complete) {
            return result;
        }
    }
}

Error read_error(const ReadResult& result) {
    switch (result.end) {
        case ReadEnd::timeout:
            return Error{ErrorCode::timed_out, result.bytes, result.system_error};
        case ReadEnd::error:
            return Error{ErrorCode::read_failed, result.bytes, result.system_error};
        case ReadEnd::eof:
        case ReadEnd::complete:
            break;
    }
    return Error{ErrorCode::early_eof, result.bytes, 0};
}

}  // namespace epmdx::client::detail
