// SPDX-License-Identifier: Apache-2.0
// A lean single-threaded epoll client: many concurrent one-shot TCP requests, the way every
// epmd client talks (connect, send one request, read until the server closes).
#pragma once

#include <netinet/in.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace epmdx::bench {

using Clock = std::chrono::steady_clock;

struct Endpoint {
    sockaddr_in target{};
    // Local address to bind before connect (to pose as another source), if any.
    std::optional<in_addr> source;
    // With source: connection k binds to source + k % sources (consecutive addresses), to spread
    // many connections over several sources.
    std::uint32_t sources = 1;
};

struct Request {
    std::string bytes;
    // 0: the reply ends when the server closes. n: the reply is n bytes and the connection is
    // handed over open (an ALIVE2 registration lives as long as its connection).
    std::size_t reply_size = 0;
    std::size_t tag = 0;
};

enum class Status : std::uint8_t {
    ok,         // full reply received
    closed,     // connection refused, reset or closed before the full reply
    timed_out,  // no full reply within the per-request timeout
};

struct Response {
    Status status = Status::closed;
    std::string_view reply;
    std::chrono::nanoseconds latency{};
    std::size_t tag = 0;
    // For reply_size requests that succeeded: the open connection, now owned by the callee.
    int fd = -1;
};

class RequestLoop {
  public:
    RequestLoop(Endpoint endpoint, std::size_t concurrency, std::chrono::milliseconds timeout);
    ~RequestLoop();
    RequestLoop(const RequestLoop&) = delete;
    RequestLoop& operator=(const RequestLoop&) = delete;

    // next fills in the next request and returns true, or returns false when there are no more.
    // Returns when next has said no and nothing is in flight, or at stop_at (requests still in
    // flight then are abandoned without a callback).
    void run(const std::function<bool(Request&)>& next,
             const std::function<void(const Response&)>& done, Clock::time_point stop_at);

  private:
    struct Slot {
        int fd = -1;
        std::uint32_t generation = 0;
        bool connecting = false;
        Clock::time_point started;
        Request request;
        std::string reply;
    };

    enum class SendResult : std::uint8_t { sent, not_connected, failed };

    bool start(std::uint32_t index);
    SendResult send_request(Slot& slot);
    void on_event(std::uint32_t index, std::uint32_t events);
    void finish(std::uint32_t index, Status status);
    void expire(Clock::time_point now);
    void abandon_all();

    Endpoint endpoint_;
    std::chrono::milliseconds timeout_;
    int epoll_fd_ = -1;
    std::vector<Slot> slots_;
    std::vector<std::uint32_t> free_slots_;
    const std::function<void(const Response&)>* done_ = nullptr;
    std::vector<char> read_buffer_;
    std::uint32_t connections_ = 0;  // opened, for Endpoint::sources
};

// Opens count connections without sending anything and without waiting for them to be
// accepted (a flood). Returns the sockets whose connect did not fail at once.
std::vector<int> open_idle_connections(const Endpoint& endpoint, std::size_t count);

// How many of these sockets are connected and not closed by the peer.
std::size_t count_open(const std::vector<int>& fds);

void close_all(std::vector<int>& fds);

// Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit.
std::size_t raise_fd_limit();

}  // namespace epmdx::bench
