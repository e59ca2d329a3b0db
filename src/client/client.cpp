// SPDX-License-Identifier: Apache-2.0
#include "epmdx/client.hpp"

#include <unistd.h>

#include <cstring>
#include <span>
#include <vector>

#include "client/connection.hpp"

namespace epmdx::client {
namespace {

using detail::Connection;
using detail::Deadline;
using detail::ReadEnd;
using Clock = std::chrono::steady_clock;

std::chrono::microseconds since(Clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
}

std::span<const std::uint8_t> as_bytes(std::string_view text) {
    return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

// Connects and sends one request; the connection is ready for the reply.
Result<Connection> send_request(const Options& options, const wire::Request& request,
                                const Deadline& deadline) {
    Result<Connection> connection = Connection::open(options, deadline);
    if (!connection) {
        return connection;
    }
    if (std::optional<Error> error =
            connection->send_all(wire::encode_request(request), deadline)) {
        return *error;
    }
    return connection;
}

}  // namespace

std::string Error::message() const {
    std::string text;
    switch (code) {
        case ErrorCode::cannot_connect:
            text = "cannot connect to epmd";
            break;
        case ErrorCode::write_failed:
            text = "cannot write to epmd";
            break;
        case ErrorCode::no_response:
            text = "no response from epmd";
            break;
        case ErrorCode::read_failed:
            text = "failed to read the reply from epmd";
            break;
        case ErrorCode::early_eof:
            text = "epmd closed the connection after " + std::to_string(received.size()) +
                   " reply bytes";
            break;
        case ErrorCode::timed_out:
            text = "timed out waiting for epmd";
            break;
        case ErrorCode::bad_reply:
            text = "malformed reply from epmd";
            break;
        case ErrorCode::name_too_long:
            text = "name too long";
            break;
        case ErrorCode::registration_refused:
            text = "epmd refused the registration (name in use or not accepted)";
            break;
        case ErrorCode::cannot_resolve:
            text = "cannot resolve the host";
            break;
    }
    if (!detail.empty()) {
        text += ": ";
        text += detail;
    }
    if (system_error != 0) {
        text += ": ";
        text += std::strerror(system_error);
    }
    return text;
}

std::string Error::cause() const {
    if (system_error != 0) {
        return std::strerror(system_error);
    }
    return detail.empty() ? message() : detail;
}

// ---- Registration ------------------------------------------------------------------------------

Registration::Registration(Registration&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      node_(std::move(other.node_)),
      creation_(other.creation_) {}

Registration& Registration::operator=(Registration&& other) noexcept {
    if (this != &other) {
        close();
        fd_ = std::exchange(other.fd_, -1);
        node_ = std::move(other.node_);
        creation_ = other.creation_;
    }
    return *this;
}

Registration::~Registration() {
    close();
}

void Registration::close() {
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
}

// ---- Requests ----------------------------------------------------------------------------------

Result<std::optional<wire::NodeInfo>> Client::port_please(std::string_view name) const {
    return port_please(name, nullptr);
}

Result<std::optional<wire::NodeInfo>> Client::port_please(std::string_view name,
                                                          RequestTiming* timing) const {
    RequestTiming unused;
    RequestTiming& times = timing != nullptr ? *timing : unused;
    times = RequestTiming{};
    const Deadline deadline(options_.timeout);
    const Clock::time_point start = Clock::now();
    Result<Connection> connection = Connection::open(options_, deadline);
    times.connect = since(start);
    if (!connection) {
        return connection.error();
    }
    times.address = connection->peer_address();
    const Clock::time_point connected = Clock::now();
    const auto reply_time = [&times, connected] { times.reply = since(connected); };
    if (std::optional<Error> error = connection->send_all(
            wire::encode_request(wire::PortPlease2Request{std::string(name)}), deadline)) {
        reply_time();
        return *error;
    }
    const detail::ReadResult reply = connection->read_to_end(deadline);
    reply_time();
    if (reply.end == ReadEnd::timeout) {
        return detail::read_error(reply);
    }
    if (reply.bytes.empty()) {
        // A name the daemon will not look up (empty, NUL, bad UTF-8) is closed without a reply.
        return detail::read_error(reply);
    }
    const std::optional<wire::Port2Reply> decoded = wire::decode_port2_reply(as_bytes(reply.bytes));
    if (!decoded) {
        return Error{ErrorCode::bad_reply, reply.bytes, 0};
    }
    return decoded->node;
}

Result<wire::NamesReply> Client::names() const {
    const Deadline deadline(options_.timeout);
    Result<Connection> connection = send_request(options_, wire::NamesRequest{}, deadline);
    if (!connection) {
        return connection.error();
    }
    const detail::ReadResult reply = connection->read_to_end(deadline);
    if (reply.end == ReadEnd::timeout) {
        return detail::read_error(reply);
    }
    std::optional<wire::NamesReply> decoded = wire::decode_names_reply(reply.bytes);
    if (!decoded) {
        return Error{ErrorCode::no_response, reply.bytes, reply.system_error};
    }
    return std::move(*decoded);
}

Result<Listing> Client::names_listing() const {
    return listing(wire::NamesRequest{});
}

Result<Listing> Client::dump() const {
    return listing(wire::DumpRequest{});
}

Result<Listing> Client::listing(const wire::Request& request) const {
    const Deadline deadline(options_.timeout);
    Result<Connection> connection = send_request(options_, request, deadline);
    if (!connection) {
        return connection.error();
    }
    // One read for the header, as OTP's CLI does: if it does not bring 4 bytes, there is no answer.
    const detail::ReadResult header = connection->read_once(4, deadline);
    if (header.bytes.size() < 4) {
        return Error{header.end == ReadEnd::timeout ? ErrorCode::timed_out : ErrorCode::no_response,
                     header.bytes, header.system_error};
    }
    Listing listing;
    for (const char c : header.bytes) {
        listing.epmd_port = (listing.epmd_port << 8) | static_cast<std::uint8_t>(c);
    }
    // Everything until the daemon closes (or the connection fails) is the listing.
    detail::ReadResult body = connection->read_to_end(deadline);
    if (body.end == ReadEnd::timeout) {
        return detail::read_error(body);
    }
    listing.text = std::move(body.bytes);
    return listing;
}

Result<KillOutcome> Client::kill() const {
    const Deadline deadline(options_.timeout);
    Result<Connection> connection = send_request(options_, wire::KillRequest{}, deadline);
    if (!connection) {
        return connection.error();
    }
    const detail::ReadResult reply = connection->read_exact(2, deadline);
    if (reply.end != ReadEnd::complete) {
        return detail::read_error(reply);
    }
    return reply.bytes == wire::kill_ok ? KillOutcome::killed : KillOutcome::refused;
}

Result<std::string> Client::stop(std::string_view name) const {
    if (name.size() > max_stop_name_bytes) {
        return Error{ErrorCode::name_too_long, {}, 0};
    }
    const Deadline deadline(options_.timeout);
    Result<Connection> connection =
        send_request(options_, wire::StopRequest{std::string(name)}, deadline);
    if (!connection) {
        return connection.error();
    }
    detail::ReadResult reply = connection->read_exact(wire::stop_done.size(), deadline);
    if (reply.end != ReadEnd::complete) {
        return detail::read_error(reply);
    }
    return std::move(reply.bytes);
}

Result<Registration> Client::register_node(wire::NodeInfo node) const {
    const Deadline deadline(options_.timeout);
    Result<Connection> connection = send_request(options_, wire::Alive2Request{node}, deadline);
    if (!connection) {
        return connection.error();
    }
    // The first byte says which reply form follows: 'v' (6 bytes) or 'y' (4 bytes).
    detail::ReadResult reply = connection->read_exact(1, deadline);
    if (reply.end != ReadEnd::complete) {
        return detail::read_error(reply);
    }
    const auto code = static_cast<wire::Code>(reply.bytes[0]);
    if (code != wire::Code::alive2_x_resp && code != wire::Code::alive2_resp) {
        return Error{ErrorCode::bad_reply, reply.bytes, 0};
    }
    const detail::ReadResult rest =
        connection->read_exact(code == wire::Code::alive2_x_resp ? 5 : 3, deadline);
    reply.bytes += rest.bytes;
    if (rest.end != ReadEnd::complete) {
        return detail::read_error(detail::ReadResult{reply.bytes, rest.end, rest.system_error});
    }
    const std::optional<wire::Alive2Reply> decoded =
        wire::decode_alive2_reply(as_bytes(reply.bytes));
    if (!decoded) {
        return Error{ErrorCode::bad_reply, reply.bytes, 0};
    }
    if (decoded->result != 0) {
        return Error{ErrorCode::registration_refused, reply.bytes, 0};
    }
    return Registration(connection->release(), std::move(node), decoded->creation);
}

Result<std::vector<std::string>> resolve_host(const std::string& host,
                                              std::chrono::milliseconds timeout) {
    Result<std::vector<detail::Candidate>> found = detail::resolve(host, 0, Deadline(timeout));
    if (!found) {
        return found.error();
    }
    std::vector<std::string> addresses;
    for (const detail::Candidate& candidate : found.value()) {
        addresses.push_back(detail::numeric_address(candidate));
    }
    return addresses;
}

Result<std::string> probe_connect(const std::string& host, std::uint16_t port,
                                  std::chrono::milliseconds timeout) {
    Result<Connection> connection =
        Connection::open(Options{port, host, timeout}, Deadline(timeout));
    if (!connection) {
        return connection.error();
    }
    return connection->peer_address();
}

}  // namespace epmdx::client
