// SPDX-License-Identifier: Apache-2.0
// A small blocking client for epmd (OTP's or epmdx): lookups, names, dump, kill, stop, and a
// node registration held as an object. One request per connection, as the protocol wants.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "epmdx/protocol.hpp"

namespace epmdx::client {

struct Options {
    std::uint16_t port = wire::default_port;
    // Host name or address. Empty: try ::1, then 127.0.0.1, as OTP's epmd command line does.
    std::string host;
    // Bound on a whole request (connect, write, reading the reply); zero means wait forever.
    std::chrono::milliseconds timeout{10'000};
};

enum class ErrorCode : std::uint8_t {
    cannot_connect,        // no address accepted the connection
    write_failed,          // sending the request failed
    no_response,           // NAMES/DUMP: the first read did not bring the 4-byte header
    read_failed,           // a read error (e.g. connection reset) before the reply was complete
    early_eof,             // the daemon closed before the reply was complete; see `received`
    timed_out,             // Options::timeout passed
    bad_reply,             // the reply does not have the protocol's shape
    name_too_long,         // stop(): longer than the 1000 bytes OTP's CLI allows
    registration_refused,  // ALIVE2 answered with an error result (e.g. the name is taken)
    cannot_resolve,        // the host name gave no address; `detail` says why
};

struct Error {
    Error() = default;
    Error(ErrorCode code, std::string received = {}, int system_error = 0, std::string detail = {})
        : code(code),
          received(std::move(received)),
          system_error(system_error),
          detail(std::move(detail)) {}

    ErrorCode code = ErrorCode::bad_reply;
    // The reply bytes read before the failure (early_eof, no_response, bad_reply).
    std::string received;
    int system_error = 0;  // errno, when a system call failed
    std::string detail;    // the resolver's reason, for cannot_resolve

    std::string message() const;
    // Only the cause: the system's or the resolver's words when there are some ("Connection
    // refused"), otherwise message().
    std::string cause() const;
};

// A value or an Error (std::expected arrives only with C++23).
template <typename T>
class Result {
  public:
    Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}
    Result(Error error) : state_(std::in_place_index<1>, std::move(error)) {}

    bool ok() const { return state_.index() == 0; }
    explicit operator bool() const { return ok(); }
    T& value() & { return std::get<0>(state_); }
    const T& value() const& { return std::get<0>(state_); }
    T&& value() && { return std::get<0>(std::move(state_)); }
    const Error& error() const { return std::get<1>(state_); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

  private:
    std::variant<T, Error> state_;
};

// A NAMES or DUMP reply as sent: the daemon's configured port, then its text unchanged
// (DUMP lines end in NUL bytes).
struct Listing {
    std::uint32_t epmd_port = 0;
    std::string text;
};

enum class KillOutcome : std::uint8_t {
    killed,   // "OK": the daemon is exiting
    refused,  // any other 2 bytes ("NO": nodes are registered and the daemon is not relaxed)
};

// A node registered with epmd. The registration lives as long as its connection: destroying
// the object (or close()) closes the socket, and the daemon then unregisters the node.
class Registration {
  public:
    Registration(Registration&& other) noexcept;
    Registration& operator=(Registration&& other) noexcept;
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;
    ~Registration();

    const wire::NodeInfo& node() const { return node_; }
    // The daemon's creation number: 32-bit for HighestVersion >= 6, otherwise 1..3.
    std::uint32_t creation() const { return creation_; }
    // The connection's socket, e.g. to poll for the daemon going away; -1 once closed.
    int native_handle() const { return fd_; }
    bool active() const { return fd_ >= 0; }
    // Unregisters now.
    void close();

  private:
    friend class Client;
    Registration(int fd, wire::NodeInfo node, std::uint32_t creation)
        : fd_(fd), node_(std::move(node)), creation_(creation) {}

    int fd_ = -1;
    wire::NodeInfo node_;
    std::uint32_t creation_ = 0;
};

// How long the two halves of a request took, and where it went.
struct RequestTiming {
    std::chrono::microseconds connect{0};  // until connected, or until connecting failed
    std::chrono::microseconds reply{0};    // from connected until the reply was complete or failed
    std::string address;                   // the numeric address connected to; empty if none
};

class Client {
  public:
    Client() = default;
    explicit Client(Options options) : options_(std::move(options)) {}

    const Options& options() const { return options_; }

    // The node registered under `name`; nullopt if there is none.
    Result<std::optional<wire::NodeInfo>> port_please(std::string_view name) const;
    // The same, filling `timing` (which may be null) whether or not it succeeds.
    Result<std::optional<wire::NodeInfo>> port_please(std::string_view name,
                                                      RequestTiming* timing) const;
    // The registered nodes, most recently registered first, parsed as erl_epmd does.
    Result<wire::NamesReply> names() const;
    // NAMES and DUMP as the daemon wrote them. As OTP's CLI does, the 4-byte header must come
    // with the first read, otherwise ErrorCode::no_response.
    Result<Listing> names_listing() const;
    Result<Listing> dump() const;
    // Asks the daemon to exit.
    Result<KillOutcome> kill() const;
    // Unregisters `name` (the daemon must run with relaxed command checks). The value is the
    // 7-byte reply: "STOPPED", or "NOEXIST" for an unknown name.
    Result<std::string> stop(std::string_view name) const;
    // Registers a node; ErrorCode::registration_refused if the daemon answers with an error
    // (a duplicate name, a name it does not accept).
    Result<Registration> register_node(wire::NodeInfo node) const;

  private:
    Result<Listing> listing(const wire::Request& request) const;

    Options options_;
};

// The addresses `host` resolves to (IPv6 and IPv4), as numeric text in the resolver's order.
// Waits at most `timeout` (zero: as long as the resolver takes); ErrorCode::cannot_resolve or
// timed_out otherwise.
Result<std::vector<std::string>> resolve_host(const std::string& host,
                                              std::chrono::milliseconds timeout);

// Whether something accepts TCP connections on host:port: connects, then closes at once without
// sending anything. The value is the numeric address that accepted.
Result<std::string> probe_connect(const std::string& host, std::uint16_t port,
                                  std::chrono::milliseconds timeout);

// The longest name OTP's CLI sends in a STOP request.
inline constexpr std::size_t max_stop_name_bytes = 1000;

}  // namespace epmdx::client
