// SPDX-License-Identifier: Apache-2.0
// An outside project using the installed client library: registers a node with the daemon on
// the port given, then prints the daemon's list of names.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <epmdx/client.hpp>

int main(int argc, char** argv) {
    if (argc != 2) {
        (void)std::fputs("usage: consumer PORT\n", stderr);
        return 2;
    }
    epmdx::client::Options options;
    options.port = static_cast<std::uint16_t>(std::atoi(argv[1]));
    const epmdx::client::Client client(options);

    epmdx::wire::NodeInfo node;
    node.name = "consumer";
    node.port = 40000;
    auto registration = client.register_node(node);
    if (!registration) {
        (void)std::fprintf(stderr, "register: %s\n", registration.error().message().c_str());
        return 1;
    }
    const auto names = client.names_listing();
    if (!names) {
        (void)std::fprintf(stderr, "names: %s\n", names.error().message().c_str());
        return 1;
    }
    (void)std::fputs(names->text.c_str(), stdout);
    return 0;
}
