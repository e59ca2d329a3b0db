// SPDX-License-Identifier: Apache-2.0
// One blocking-style TCP connection to epmd with a deadline, on non-blocking POSIX sockets and
// poll(). Internal to the client library.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "epmdx/client.hpp"

namespace epmdx::client::detail {

class Deadline {
  public:
    // A zero timeout never expires.
    explicit Deadline(std::chrono::milliseconds timeout);
    // Milliseconds left for poll(): -1 for no deadline, 0 once it has passed.
    int poll_timeout_ms() const;

  private:
    std::optional<std::chrono::steady_clock::time_point> at_;
};

// One address to connect to.
struct Candidate {
    sockaddr_storage address{};
    socklen_t length = 0;
};

// The addresses of host:port. A numeric host is read at once; a name goes to the resolver,
// which is given until the deadline (ErrorCode::timed_out), or ErrorCode::cannot_resolve.
Result<std::vector<Candidate>> resolve(const std::string& host, std::uint16_t port,
                                       const Deadline& deadline);

// The candidate's address as text ("127.0.0.1", "::1"), without the port.
std::string numeric_address(const Candidate& candidate);

// How a read ended.
enum class ReadEnd : unsigned char { complete, eof, error, timeout };

struct ReadResult {
    std::string bytes;
    ReadEnd end = ReadEnd::complete;
    int system_error = 0;
};

class Connection {
  public:
    // Tries each candidate address in turn (::1 then 127.0.0.1 when options.host is empty).
    static Result<Connection> open(const Options& options, const Deadline& deadline);

    Connection(Connection&& other) noexcept;
    Connection& operator=(Connection&& other) noexcept;
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;
    ~Connection();

    std::optional<Error> send_all(std::string_view bytes, const Deadline& deadline);
    // One read of at most max_bytes (ReadEnd::complete if any bytes came).
    ReadResult read_once(std::size_t max_bytes, const Deadline& deadline);
    // Reads until exactly n bytes have arrived, or the stream ends first.
    ReadResult read_exact(std::size_t n, const Deadline& deadline);
    // Reads until the daemon closes; a read error also ends the reply (ReadEnd::error).
    ReadResult read_to_end(const Deadline& deadline);

    // The numeric address of the other end.
    std::string peer_address() const;

    // Gives up ownership of the socket.
    int release();

  private:
    explicit Connection(int fd) : fd_(fd) {}
    void append_once(ReadResult& result, std::size_t max_bytes, const Deadline& deadline);

    int fd_ = -1;
};

// The Error for a read that ended before the reply was complete.
Error read_error(const ReadResult& result);

}  // namespace epmdx::client::detail
