// SPDX-License-Identifier: Apache-2.0
// epmdx: the port mapper daemon and its command-line client, argument-compatible with OTP's epmd.
#include <cstdio>
#include <string>
#include <vector>

#include "cli/arguments.hpp"
#include "cli/client_commands.hpp"
#include "server/daemon/daemon.hpp"

int main(int argc, char** argv) {
    const std::vector<std::string> args(argv + 1, argv + argc);
    const epmdx::cli::Command command =
        epmdx::cli::parse_arguments(args, epmdx::cli::process_environment);

    if (const auto* client = std::get_if<epmdx::cli::ClientCommand>(&command)) {
        return epmdx::cli::run_client(*client);
    }
    if (const auto* daemon = std::get_if<epmdx::cli::DaemonCommand>(&command)) {
        return epmdx::server::run_daemon(daemon->options);
    }
    if (const auto* invalid = std::get_if<epmdx::cli::InvalidValue>(&command)) {
        (void)std::fputs(invalid->message.c_str(), stderr);
        return 1;
    }
    (void)std::fputs(epmdx::cli::usage_text().c_str(), stderr);
    return 1;
}
