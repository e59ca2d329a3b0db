// SPDX-License-Identifier: Apache-2.0
// Real Erlang nodes (Debian's erlang-base) for the interop tests.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "harness.hpp"

namespace epmdx::test {

// `erl -sname NAME@localhost -noshell -start_epmd false`, told to use the epmd on epmd_port
// through ERL_EPMD_PORT. "@localhost" keeps the nodes on 127.0.0.1 whatever the host name
// resolves to. The node, and everything it starts, is killed when the object dies, and also
// when the test process itself dies (setpriv --pdeathsig), so a crashed or timed-out test
// leaves no beam behind.
class ErlNode {
  public:
    // eval, if given, runs in the node after start-up (erl -eval); the node stays up after it.
    ErlNode(std::uint16_t epmd_port, std::string name, const std::string& eval = {});
    ErlNode(const ErlNode&) = delete;
    ErlNode& operator=(const ErlNode&) = delete;
    ~ErlNode();

    const std::string& name() const { return name_; }
    std::string node_name() const { return name_ + "@localhost"; }
    Process& process() { return process_; }
    // Everything the node printed so far.
    std::string output() const;
    // Waits until the node has printed a line starting with prefix; returns that line.
    std::string wait_for_line(std::string_view prefix, std::chrono::milliseconds timeout);

  private:
    std::string name_;
    std::filesystem::path log_file_;
    Process process_;
};

// The argv that starts an erl node with the interop tests' common flags.
std::vector<std::string> erl_argv(const std::string& name, const std::string& eval = {});
// The environment that points erl at the epmd on epmd_port.
Env erl_env(std::uint16_t epmd_port);
// Variables that would change how erl starts (a user's ERL_FLAGS could carry -epmd_port); the
// harness drops every ERL_EPMD_* variable anyway.
std::vector<std::string> erl_unset_env();

// name -> port from a NAMES reply.
std::map<std::string, int> registered_ports(std::string_view names_reply);
// Polls NAMES until every name in `present` is listed and none in `absent` is.
bool wait_for_nodes(std::uint16_t epmd_port, const std::vector<std::string>& present,
                    const std::vector<std::string>& absent = {},
                    std::chrono::milliseconds timeout = 20s);
// True if any socket on this host listens on the TCP port (any address, IPv4 or IPv6).
bool has_listener(std::uint16_t port);

}  // namespace epmdx::test
