// SPDX-License-Identifier: Apache-2.0
// Shared by every test that starts processes: daemons on test ports, commands run to completion,
// raw connections over loopback, and per-test log files. The bytes themselves are in wire.hpp.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "wire.hpp"

namespace epmdx::test {

using namespace std::chrono_literals;
using Env = std::vector<std::pair<std::string, std::string>>;

// Paths fixed at configure time.
std::string epmdx_binary();
std::string otp_epmd_binary();
std::string erl_binary();

// A TCP port that nothing listens on right now, on 127.0.0.1 or ::1.
std::uint16_t free_port();

// A child process, killed (SIGKILL) and reaped when the object dies unless waited for.
class Process {
  public:
    Process() = default;
    // argv[0] is the program path. The child gets this process's environment without any
    // ERL_EPMD_* variable and without those in unset_env; env then adds (or overrides) variables.
    static Process spawn(const std::vector<std::string>& argv, const Env& env = {},
                         const std::vector<std::string>& unset_env = {},
                         const std::filesystem::path& output_file = {});
    Process(Process&& other) noexcept;
    Process& operator=(Process&& other) noexcept;
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;
    ~Process();

    pid_t pid() const { return pid_; }
    bool running();
    // Exit code (or 128 + signal); nullopt if still running after the timeout.
    std::optional<int> wait(std::chrono::milliseconds timeout = 10s);
    void signal(int sig);
    void kill();

  private:
    pid_t pid_ = -1;
    std::optional<int> status_;
};

struct RunResult {
    int exit_code = -1;  // 128 + signal if killed; -1 if timed out
    std::string out;
    std::string err;
};
// Runs a command to completion, capturing stdout and stderr separately; the environment as for
// Process::spawn.
RunResult run(const std::vector<std::string>& argv, const Env& env = {},
              const std::vector<std::string>& unset_env = {},
              std::chrono::milliseconds timeout = 15s);

enum class DaemonKind { epmdx, otp };
// gtest prints parameters in failure messages: a name rather than the raw bytes.
// NOLINTNEXTLINE(readability-identifier-naming): the name gtest looks up
inline void PrintTo(DaemonKind kind, std::ostream* os) {
    *os << (kind == DaemonKind::epmdx ? "epmdx" : "otp");
}

// A daemon listening on a fresh test port (on 127.0.0.1 and ::1 unless args say otherwise).
class Daemon {
  public:
    // Extra args are appended after "-port N". Pass address_args = {} to listen on all addresses.
    static Daemon start(DaemonKind kind, const std::vector<std::string>& extra_args = {},
                        const Env& env = {},
                        std::vector<std::string> address_args = {"-address", "127.0.0.1"});
    // The same on a port chosen by the caller (a daemon restarted where its nodes expect it).
    static Daemon start_on(std::uint16_t port, DaemonKind kind,
                           const std::vector<std::string>& extra_args = {});
    // Started through /bin/sh with `ulimit -n descriptor_limit` first, listening on 127.0.0.1.
    // dash's ulimit lowers the soft and the hard limit, so the daemon cannot raise it back.
    static Daemon start_with_descriptor_limit(DaemonKind kind, int descriptor_limit,
                                              const std::vector<std::string>& extra_args = {});

    std::uint16_t port() const { return port_; }
    Process& process() { return process_; }
    // Everything the daemon wrote to stdout and stderr so far.
    std::string log() const;
    // Runs the given daemon binary as a client against this daemon ({"-names"} etc.), with
    // ERL_EPMD_PORT set to this daemon's port.
    RunResult cli(DaemonKind client, const std::vector<std::string>& args,
                  const Env& env = {}) const;

  private:
    // Starts `command` (which makes the daemon listen on `port`) and waits until it does.
    bool launch(DaemonKind kind, const std::vector<std::string>& command, const Env& env);

    std::uint16_t port_ = 0;
    std::filesystem::path log_file_;
    Process process_;
};

// Waits until something accepts TCP connections on 127.0.0.1:port.
bool wait_for_port(std::uint16_t port, std::chrono::milliseconds timeout = 10s);
// The same, giving up as soon as the server process has exited.
bool wait_for_port(std::uint16_t port, Process& server, std::chrono::milliseconds timeout);
// ":PPPP", how /proc/net/tcp and tcp6 write a port after an address (hex, upper case).
std::string proc_net_port(std::uint16_t port);
// Until an IPv6 socket listens on the port (read from /proc/net/tcp6; no connection made).
bool wait_for_ipv6_listener(std::uint16_t port, Process& server, std::chrono::milliseconds timeout);
// Whether this host (or network namespace) has a usable ::1.
bool ipv6_loopback_available();
// Why epmdx cannot hold this many connections at once in this build, or "" if it can: the
// select() reactor of a portable build on Linux watches descriptors below FD_SETSIZE only.
std::string epmdx_cannot_hold(std::size_t connections);
// Why epmdx has no restart that keeps registrations in this build (a portable one), or "".
std::string epmdx_cannot_restart();

// A socket listening on an ephemeral port of 127.0.0.1 that never accepts: connections
// complete in the backlog and nothing is ever answered (a hung server, or a port with nothing
// behind it that still takes connections).
class SilentListener {
  public:
    SilentListener();
    SilentListener(const SilentListener&) = delete;
    SilentListener& operator=(const SilentListener&) = delete;
    ~SilentListener();
    std::uint16_t port() const { return port_; }

  private:
    int fd_;
    std::uint16_t port_ = 0;
};

// A raw client connection.
class Conn {
  public:
    // Connects to address:port; bind_address, if set, is the local source address.
    static Conn open(std::uint16_t port, const std::string& address = "127.0.0.1",
                     const std::string& bind_address = {});
    Conn(Conn&& other) noexcept;
    Conn& operator=(Conn&& other) noexcept;
    Conn(const Conn&) = delete;
    Conn& operator=(const Conn&) = delete;
    ~Conn();

    int fd() const { return fd_; }
    void send(std::string_view bytes);
    // Reads until the peer closes (EOF or reset) or the timeout passes.
    std::string read_until_close(std::chrono::milliseconds timeout = 5s);
    // Reads exactly n bytes unless the peer closes or the timeout passes first.
    std::string read_exact(std::size_t n, std::chrono::milliseconds timeout = 5s);
    // True if the peer closes within the timeout (any unread data is discarded).
    bool closed_within(std::chrono::milliseconds timeout);
    // Stops reading and writing; the peer sees EOF.
    void close();

  private:
    explicit Conn(int fd) : fd_(fd) {}
    int fd_ = -1;
};

// What a connection got: the bytes, and whether the server closed it within the timeout.
struct Outcome {
    std::string bytes;
    bool closed = false;
    // Closed without a single byte: a refusal.
    bool refused() const { return closed && bytes.empty(); }
};
// Reads until the server closes or the timeout passes; polls at least once, so a zero timeout
// still sees a close that has already happened.
Outcome read_outcome(int fd, std::chrono::milliseconds timeout = 3s);
// Sends without throwing (the server may already have closed); false if not all was sent.
bool send_quietly(int fd, std::string_view bytes);
// True if nothing arrived and the server has not closed within the grace period.
bool still_open(int fd, std::chrono::milliseconds grace = 50ms);

// Connects, sends, reads until the server closes.
std::string round_trip(std::uint16_t port, std::string_view bytes,
                       std::chrono::milliseconds timeout = 5s);

// A registration held open: sends ALIVE2 and reads its reply (6 or 4 bytes).
struct Registration {
    Conn conn;
    std::string reply;
};
Registration register_node(std::uint16_t epmd_port, std::string_view name, std::uint16_t node_port,
                           std::uint16_t highest = 6);

// Polls NAMES on 127.0.0.1:port until `done` holds for the listed entries (the daemon notices a
// close asynchronously); false if it still does not at the timeout. While the daemon gives no
// NAMES reply (not listening, or refusing), polling goes on.
bool wait_for_names(std::uint16_t port,
                    const std::function<bool(const std::vector<NameEntry>&)>& done,
                    std::chrono::milliseconds timeout = 5s);

// A file for a child's output, in this test's log directory under the build tree. The directory
// is removed when the test passes and kept (its path printed) when it fails.
std::filesystem::path log_path(std::string_view stem);

}  // namespace epmdx::test
