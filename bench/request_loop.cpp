// SPDX-License-Identifier: Apache-2.0
#include "request_loop.hpp"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <system_error>

namespace epmdx::bench {
namespace {

std::uint64_t event_key(std::uint32_t index, std::uint32_t generation) {
    return (static_cast<std::uint64_t>(generation) << 32) | index;
}

// Returns a socket whose connect is under way or done, or -1 if it failed at once. index: which
// connection of the endpoint's it is (which source it binds to).
int start_connect(const Endpoint& endpoint, std::uint32_t index) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    if (endpoint.source) {
        // Defer the port choice to connect(): bind(port 0) alone would allocate a port
        // exclusively and run out of the ephemeral range long before 15,000 sockets.
        int one = 1;
        ::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        sockaddr_in local{};
        local.sin_family = AF_INET;
        local.sin_addr.s_addr = htonl(ntohl(endpoint.source->s_addr) +
                                      index % std::max<std::uint32_t>(endpoint.sources, 1));
        if (::bind(fd, reinterpret_cast<const sockaddr*>(&local), sizeof local) != 0) {
            ::close(fd);
            return -1;
        }
    }
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&endpoint.target),
                  sizeof endpoint.target) == 0 ||
        errno == EINPROGRESS) {
        return fd;
    }
    ::close(fd);
    return -1;
}

}  // namespace

RequestLoop::RequestLoop(Endpoint endpoint, std::size_t concurrency,
                         std::chrono::milliseconds timeout)
    : endpoint_(endpoint),
      timeout_(timeout),
      epoll_fd_(::epoll_create1(EPOLL_CLOEXEC)),
      slots_(concurrency),
      read_buffer_(std::size_t{64} * 1024) {
    if (epoll_fd_ < 0) {
        throw std::system_error(errno, std::generic_category(), "epoll_create1");
    }
}

RequestLoop::~RequestLoop() {
    abandon_all();
    ::close(epoll_fd_);
}

void RequestLoop::run(const std::function<bool(Request&)>& next,
                      const std::function<void(const Response&)>& done, Clock::time_point stop_at) {
    done_ = &done;
    free_slots_.clear();
    for (std::uint32_t i = 0; i < slots_.size(); ++i) {
        if (slots_[i].fd < 0) {
            free_slots_.push_back(i);
        }
    }
    std::vector<epoll_event> events(slots_.size());
    bool more = true;
    Clock::time_point next_expiry_check = Clock::now();
    for (;;) {
        // Fill every free slot; a request that fails at once frees its slot again.
        while (more && !free_slots_.empty() && Clock::now() < stop_at) {
            const std::uint32_t index = free_slots_.back();
            free_slots_.pop_back();
            Slot& slot = slots_[index];
            slot.request.bytes.clear();
            slot.request.reply_size = 0;
            if (!next(slot.request)) {
                free_slots_.push_back(index);
                more = false;
                break;
            }
            start(index);
        }
        const bool idle = free_slots_.size() == slots_.size();
        const Clock::time_point now = Clock::now();
        if ((idle && !more) || now >= stop_at) {
            break;
        }
        const int n = ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), 5);
        if (n < 0 && errno != EINTR) {
            throw std::system_error(errno, std::generic_category(), "epoll_wait");
        }
        for (int i = 0; i < n; ++i) {
            const auto index = static_cast<std::uint32_t>(events[i].data.u64 & 0xffffffffU);
            const auto generation = static_cast<std::uint32_t>(events[i].data.u64 >> 32);
            // An event for a socket finished earlier in this batch: its slot has moved on.
            if (slots_[index].fd >= 0 && slots_[index].generation == generation) {
                on_event(index, events[i].events);
            }
        }
        const Clock::time_point after = Clock::now();
        if (after >= next_expiry_check) {
            expire(after);
            next_expiry_check = after + std::chrono::milliseconds(5);
        }
    }
    abandon_all();
    done_ = nullptr;
}

bool RequestLoop::start(std::uint32_t index) {
    Slot& slot = slots_[index];
    slot.reply.clear();
    slot.started = Clock::now();
    slot.fd = start_connect(endpoint_, connections_++);
    if (slot.fd < 0) {
        finish(index, Status::closed);
        return false;
    }
    if (slot.request.reply_size == 0) {
        // Wake up only for the close (or a full buffer), not for every line of a long NAMES
        // reply that the daemon writes piecemeal: the client should not be what is measured.
        const int low_water = static_cast<int>(read_buffer_.size());
        ::setsockopt(slot.fd, SOL_SOCKET, SO_RCVLOWAT, &low_water, sizeof low_water);
    }
    // On loopback the handshake has usually completed by the time connect() reports
    // EINPROGRESS, so try the send at once and skip a wake-up when it works.
    const SendResult sent = send_request(slot);
    if (sent == SendResult::failed) {
        finish(index, Status::closed);
        return false;
    }
    slot.connecting = sent == SendResult::not_connected;
    epoll_event event{};
    event.events = slot.connecting ? EPOLLOUT : (EPOLLIN | EPOLLRDHUP);
    event.data.u64 = event_key(index, slot.generation);
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, slot.fd, &event) != 0) {
        throw std::system_error(errno, std::generic_category(), "epoll_ctl");
    }
    return true;
}

RequestLoop::SendResult RequestLoop::send_request(Slot& slot) {
    const auto& bytes = slot.request.bytes;
    const ssize_t sent = ::send(slot.fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (sent == static_cast<ssize_t>(bytes.size())) {
        return SendResult::sent;
    }
    // The requests are tiny: a partial send only happens on a socket that is not connected.
    return sent < 0 && errno == EAGAIN ? SendResult::not_connected : SendResult::failed;
}

void RequestLoop::on_event(std::uint32_t index, std::uint32_t events) {
    Slot& slot = slots_[index];
    if (slot.connecting) {
        // A failed connect makes the send fail too, so no SO_ERROR query is needed.
        if ((events & (EPOLLERR | EPOLLHUP)) != 0 || send_request(slot) != SendResult::sent) {
            finish(index, Status::closed);
            return;
        }
        slot.connecting = false;
        epoll_event event{};
        event.events = EPOLLIN | EPOLLRDHUP;
        event.data.u64 = event_key(index, slot.generation);
        ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, slot.fd, &event);
        return;
    }
    // The peer's FIN was already in when epoll reported: a short read has drained everything,
    // which saves the read() that would only return 0.
    const bool peer_closed = (events & EPOLLRDHUP) != 0;
    for (;;) {
        const ssize_t n = ::read(slot.fd, read_buffer_.data(), read_buffer_.size());
        if (n > 0) {
            slot.reply.append(read_buffer_.data(), static_cast<std::size_t>(n));
            const std::size_t want = slot.request.reply_size;
            if (want != 0 && slot.reply.size() >= want) {
                finish(index, Status::ok);
                return;
            }
            if (peer_closed && static_cast<std::size_t>(n) < read_buffer_.size()) {
                finish(index, want == 0 ? Status::ok : Status::closed);
                return;
            }
            continue;
        }
        if (n == 0) {
            finish(index, slot.request.reply_size == 0 ? Status::ok : Status::closed);
            return;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno != EAGAIN) {
            finish(index, Status::closed);
        }
        return;
    }
}

void RequestLoop::finish(std::uint32_t index, Status status) {
    Slot& slot = slots_[index];
    Response response;
    response.status = status;
    response.reply = slot.reply;
    response.latency = Clock::now() - slot.started;
    response.tag = slot.request.tag;
    if (slot.fd >= 0) {
        if (status == Status::ok && slot.request.reply_size != 0) {
            ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, slot.fd, nullptr);
            response.fd = slot.fd;
        } else {
            ::close(slot.fd);
        }
    }
    slot.fd = -1;
    ++slot.generation;
    free_slots_.push_back(index);
    (*done_)(response);
}

void RequestLoop::expire(Clock::time_point now) {
    for (std::uint32_t i = 0; i < slots_.size(); ++i) {
        if (slots_[i].fd >= 0 && now - slots_[i].started > timeout_) {
            finish(i, Status::timed_out);
        }
    }
}

void RequestLoop::abandon_all() {
    for (Slot& slot : slots_) {
        if (slot.fd >= 0) {
            ::close(slot.fd);
            slot.fd = -1;
            ++slot.generation;
        }
    }
}

std::vector<int> open_idle_connections(const Endpoint& endpoint, std::size_t count) {
    std::vector<int> fds;
    fds.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
        const int fd = start_connect(endpoint, static_cast<std::uint32_t>(i));
        if (fd >= 0) {
            fds.push_back(fd);
        }
    }
    return fds;
}

std::size_t count_open(const std::vector<int>& fds) {
    std::vector<pollfd> polls(fds.size());
    for (std::size_t i = 0; i < fds.size(); ++i) {
        polls[i] = pollfd{fds[i], POLLIN | POLLOUT | POLLRDHUP, 0};
    }
    ::poll(polls.data(), polls.size(), 0);
    return static_cast<std::size_t>(std::count_if(polls.begin(), polls.end(), [](const pollfd& p) {
        // Connected (writable) and neither closed nor reset by the peer.
        return (p.revents & POLLOUT) != 0 &&
               (p.revents & (POLLIN | POLLRDHUP | POLLHUP | POLLERR)) == 0;
    }));
}

void close_all(std::vector<int>& fds) {
    for (const int fd : fds) {
        ::close(fd);
    }
    fds.clear();
}

std::size_t raise_fd_limit() {
    rlimit limit{};
    ::getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
    ::getrlimit(RLIMIT_NOFILE, &limit);
    return static_cast<std::size_t>(limit.rlim_cur);
}

}  // namespace epmdx::bench
