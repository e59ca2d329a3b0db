#include "erlang_node.hpp"

#include <unistd.h>

#include <cstdio>
#include <exception>
#include <fstream>
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
    return {"ERL_FLAGS", "ERL_AFLAGS", "ERL_ZFLAGS", "ERL_EPMD_DIST_HIGH", "ERL_EPMD_DIST_LOW"};
}

ErlNode::ErlNode(std::uint16_t epmd_port, std::string name, const std::string& eval)
    : name_(std::move(name)),
      log_file_(std::filesystem::temp_directory_path() /
                ("epmdx-interop-" + std::to_string(::getpid()) + "-" + name_ + ".log")) {
    std::filesystem::remove(log_file_);
    process_ =
        Process::spawn(erl_argv(name_, eval), erl_env(epmd_port), erl_unset_env(), log_file_);
}

ErlNode::~ErlNode() {
    process_.kill();
    std::error_code ignored;
    std::filesystem::remove(log_file_, ignored);
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
            if (line.starts_with(prefix))
                return line;
        }
        if (std::chrono::steady_clock::now() >= deadline || !process_.running())
            return {};
        std::this_thread::sleep_for(50ms);
    }
}

std::map<std::string, int> registered_ports(std::string_view names_reply) {
    std::map<std::string, int> ports;
    if (names_reply.size() < 4)
        return ports;
    std::istringstream lines{std::string(names_reply.substr(4))};
    for (std::string line; std::getline(lines, line);) {
        constexpr std::string_view prefix = "name ";
        const std::size_t at = line.rfind(" at port ");
        if (!line.starts_with(prefix) || at == std::string::npos)
            continue;
        ports[line.substr(prefix.size(), at - prefix.size())] =
            std::stoi(line.substr(at + std::string_view(" at port ").size()));
    }
    return ports;
}

bool wait_for_names(std::uint16_t epmd_port, const std::vector<std::string>& present,
                    const std::vector<std::string>& absent, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        try {
            const auto ports = registered_ports(round_trip(epmd_port, names_request(), 2s));
            bool done = true;
            for (const auto& name : present)
                done = done && ports.contains(name);
            for (const auto& name : absent)
                done = done && !ports.contains(name);
            if (done)
                return true;
        } catch (const std::exception&) {
            // Not listening (yet, or any more): keep polling until the deadline.
        }
        if (std::chrono::steady_clock::now() >= deadline)
            return false;
        std::this_thread::sleep_for(50ms);
    }
}

bool has_listener(std::uint16_t port) {
    // /proc/net/tcp{,6} rows: "sl local_address(hex addr:hex port) rem_address st ...", with
    // st 0A = LISTEN. Reading them instead of connecting leaves any daemon on the port alone.
    char wanted[8];
    std::snprintf(wanted, sizeof wanted, ":%04X", port);
    for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
        std::ifstream in(table);
        std::string line;
        std::getline(in, line);  // header
        while (std::getline(in, line)) {
            std::istringstream fields(line);
            std::string slot, local, remote, state;
            fields >> slot >> local >> remote >> state;
            if (state == "0A" && local.ends_with(wanted))
                return true;
        }
    }
    return false;
}

}  // namespace epmdx::test
