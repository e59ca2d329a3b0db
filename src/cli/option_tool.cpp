// SPDX-License-Identifier: Apache-2.0
// epmdx_options: what the option table knows, for the build and for scripts/run.sh.
//
//   epmdx_options readme FILE        rewrite FILE's options block (README.md) from the table
//   epmdx_options port-to-bind ARGS  print the TCP port `epmdx ARGS` would bind, with the same
//                                    parser and environment; print nothing when it would bind
//                                    none (a client action, -systemd, bad arguments)
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "cli/arguments.hpp"
#include "cli/option_table.hpp"

namespace {

int rewrite_readme(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream readme;
    readme << in.rdbuf();
    if (!in) {
        std::cerr << "epmdx_options: cannot read " << path << "\n";
        return 1;
    }
    const std::optional<std::string> updated = epmdx::cli::with_readme_options_block(readme.str());
    if (!updated) {
        std::cerr << "epmdx_options: " << path << " has no options markers\n";
        return 1;
    }
    if (*updated != readme.str()) {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out << *updated;
        if (!out.flush()) {
            std::cerr << "epmdx_options: cannot write " << path << "\n";
            return 1;
        }
    }
    return 0;
}

int print_port_to_bind(const std::vector<std::string>& args) {
    const epmdx::cli::Command command =
        epmdx::cli::parse_arguments(args, epmdx::cli::process_environment);
    if (const auto* daemon = std::get_if<epmdx::cli::DaemonCommand>(&command)) {
        if (!daemon->options.systemd) {
            std::cout << daemon->options.port << "\n";
        }
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const std::vector<std::string> args(argv + 1, argv + argc);
    if (args.size() == 2 && args[0] == "readme") {
        return rewrite_readme(args[1]);
    }
    if (!args.empty() && args[0] == "port-to-bind") {
        return print_port_to_bind({args.begin() + 1, args.end()});
    }
    std::cerr << "usage: epmdx_options readme FILE | port-to-bind [EPMDX ARGUMENTS]\n";
    return 1;
}
