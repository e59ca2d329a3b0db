// SPDX-License-Identifier: Apache-2.0
#include "erlang_node.hpp"

#include <algorithm>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <thread>
#include <utility>

namespace epmdx::test {

std::vector<std::string> erl_argv(const std::string& name, const std::string& eval) {
    std::vector<std::string> argv = {SETPRIV_BINARY, "--pdeathsig", "KILL", "--", erl_binary(),
                                     "-sname", name + "@localhost", "-setcookie", "epmdx_interop",
                                     "-noshell", "-start_epmd", "false",
                                     // Idle schedulers must not spin on the shared 2-core CI box.
                                     "+sbwt", "none", "+sbwtdcpu", "none", "+sbwtdio", "none"};
    if (!eval.empty()) {
        argv.insert(argv.end(), {"-eval", eval});
    }
    return argv;
}

Env erl_env(std::uint16_t epmd_port) {
    return {{"ERL_EPMD_PORT", std::to_string(epmd_port)}};
}

std::vector<std::string> erl_unset_env() {
    return {"ERL_FLAGS", "ERL_AFLAGS", "ERL_ZFLAGS"};
}

ErlNode::ErlNode(std::uint16_t epmd_port, std::string name, const std::string& eval)
    : name_(std::move(name)), log_file_(log_path(cat("erl-", name_))) {
    process_ =
        Process::spawn(erl_argv(name_, eval), erl_env(epmd_port), erl_unset_env(), log_file_);
}

ErlNode::~ErlNode() {
    process_.kill();
}

std::string ErlNode::output() const {
    std::ifstream in(log_file_, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string ErlNode::wait_for_line(std::string_view prefix, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        std::istringstream lines(output());
        for (std::string line; std::getline(lines, line);) {
            if (line.starts_with(prefix)) {
                return line;
            }
        }
        if (std::chrono::steady_clock::now() >= deadline || !process_.running()) {
            return {};
        }
        std::this_thread::sleep_for(50ms);
    }
}

std::map<std::string, int> registered_ports(std::string_view names_reply) {
    std::map<std::string, int> ports;
    for (const NameEntry& entry : parse_names(names_reply)) {
        ports[entry.name] = entry.port;
    }
    return ports;
}

bool wait_for_nodes(std::uint16_t epmd_port, const std::vector<std::string>& present,
                    const std::vector<std::string>& absent, std::chrono::milliseconds timeout) {
    return wait_for_names(
        epmd_port,
        [&](const std::vector<NameEntry>& nodes) {
            const auto listed = [&nodes](const std::string& name) {
                return std::any_of(nodes.begin(), nodes.end(),
                                   [&name](const NameEntry& node) { return node.name == name; });
            };
            return std::all_of(present.begin(), present.end(), listed) &&
                   std::none_of(absent.begin(), absent.end(), listed);
        },
        timeout);
}

bool has_listener(std::uint16_t port) {
    // /proc/net/tcp{,6} rows: "sl local_address(hex addr:hex port) rem_address st ...", with
    // st 0A = LISTEN. Reading them instead of connecting leaves any daemon on the port alone.
    std::ostringstream wanted_text;
    wanted_text << ':' << std::uppercase << std::hex << std::setw(4) << std::setfill('0') << port;
    const std::string wanted = wanted_text.str();
    for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
        std::ifstream in(table);
        std::string line;
        std::getline(in, line);  // header
        while (std::getline(in, line)) {
            std::istringstream fields(line);
            std::string slot, local, remote, state;
            fields >> slot >> local >> remote >> state;
            if (state == "0A" && local.ends_with(wanted)) {
                return true;
            }
        }
    }
    return false;
}

}  // namespace epmdx::test
