// SPDX-License-Identifier: Apache-2.0
// Access control for the read-only requests: -names_access, -port_please_access and their
// environment variables. A refused request is closed without a reply; the default is open.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include "scale.hpp"

namespace epmdx::test::scale {
namespace {

bool names_answered(const Daemon& d, const std::string& source, const std::string& target) {
    const Outcome names = ask(d.port(), names_request(), source, target);
    EXPECT_TRUE(names.closed);
    EXPECT_TRUE(is_names_reply(names.bytes, d.port()) || names.refused()) << hex(names.bytes);
    return is_names_reply(names.bytes, d.port());
}
bool names_answered(const Daemon& d, const std::string& source) {
    return names_answered(d, source, source.find(':') == std::string::npos ? "127.0.0.1" : "::1");
}

// PORT_PLEASE2 for a name nobody registered: answered means "w 1".
bool lookup_answered(const Daemon& d, const std::string& source) {
    const Outcome found = ask(d.port(), port_please_request("nobody"), source);
    EXPECT_TRUE(found.closed);
    EXPECT_TRUE(found.bytes == std::string("w\x01", 2) || found.refused()) << hex(found.bytes);
    return found.bytes == std::string("w\x01", 2);
}

// An IPv4 address of this machine outside 127.0.0.0/8, if it has one.
std::optional<std::string> non_loopback_address() {
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) != 0) {
        return std::nullopt;
    }
    std::optional<std::string> found;
    for (const ifaddrs* a = list; a && !found; a = a->ifa_next) {
        if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET || !(a->ifa_flags & IFF_UP)) {
            continue;
        }
        const in_addr address = reinterpret_cast<const sockaddr_in*>(a->ifa_addr)->sin_addr;
        if ((ntohl(address.s_addr) >> 24) == 127) {
            continue;
        }
        char text[INET_ADDRSTRLEN] = {};
        ::inet_ntop(AF_INET, &address, text, sizeof text);
        found = text;
    }
    ::freeifaddrs(list);
    return found;
}

// ---- NAMES ----------------------------------------------------------------------------------

TEST(NamesAccess, CidrAllowsOnlyItsAddresses) {
    Daemon d = Daemon::start(DaemonKind::epmdx, {"-names_access", "127.0.0.2/32"});
    EXPECT_FALSE(names_answered(d, "127.0.0.1"));
    EXPECT_TRUE(names_answered(d, second_source));
    EXPECT_FALSE(names_answered(d, third_source));
    EXPECT_TRUE(lookup_answered(d, "127.0.0.1")) << "PORT_PLEASE2 stays open";
    EXPECT_NE(d.log().find("names_access"), std::string::npos) << "a refusal is logged";
}

TEST(NamesAccess, LoopbackAllowsAllOfLoopback) {
    Daemon d = Daemon::start(DaemonKind::epmdx, {"-names_access", "loopback"});
    EXPECT_TRUE(names_answered(d, "127.0.0.1"));
    EXPECT_TRUE(names_answered(d, third_source));
    EXPECT_TRUE(names_answered(d, "127.255.255.254"));
    EXPECT_TRUE(names_answered(d, "::1"));
}

TEST(NamesAccess, Ipv6Cidr) {
    Daemon d = Daemon::start(DaemonKind::epmdx, {"-names_access", "::1/128"});
    EXPECT_TRUE(names_answered(d, "::1"));
    EXPECT_FALSE(names_answered(d, "127.0.0.1"));
}

TEST(NamesAccess, ListOfItems) {
    Daemon d = Daemon::start(DaemonKind::epmdx, {"-names_access", "10.0.0.0/8,127.0.0.2/31"});
    EXPECT_TRUE(names_answered(d, second_source));
    EXPECT_TRUE(names_answered(d, third_source));
    EXPECT_FALSE(names_answered(d, "127.0.0.4"));
    EXPECT_FALSE(names_answered(d, "::1"));
}

// ---- PORT_PLEASE2 ---------------------------------------------------------------------------

TEST(PortPleaseAccess, RestrictsLookupsWhileNamesStaysOpen) {
    Daemon d = Daemon::start(DaemonKind::epmdx, {"-port_please_access", "127.0.0.2"});
    Registration node = register_node(d.port(), "mapped", 7001);
    ASSERT_EQ(node.reply.substr(0, 2), std::string("v\0", 2)) << "registering stays open";

    EXPECT_TRUE(ask(d.port(), port_please_request("mapped")).refused());
    EXPECT_EQ(port_in(ask(d.port(), port_please_request("mapped"), second_source).bytes), 7001);
    EXPECT_TRUE(names_answered(d, "127.0.0.1"));
    EXPECT_TRUE(names_answered(d, third_source));
    EXPECT_NE(d.log().find("port_please_access"), std::string::npos) << "a refusal is logged";
}

// ---- Environment ----------------------------------------------------------------------------

TEST(AccessEnvironment, NamesAccessFromEnvironment) {
    Daemon d = Daemon::start(DaemonKind::epmdx, {}, {{"ERL_EPMD_NAMES_ACCESS", "127.0.0.2/32"}});
    EXPECT_FALSE(names_answered(d, "127.0.0.1"));
    EXPECT_TRUE(names_answered(d, second_source));
    EXPECT_TRUE(lookup_answered(d, "127.0.0.1"));
}

TEST(AccessEnvironment, PortPleaseAccessFromEnvironment) {
    Daemon d =
        Daemon::start(DaemonKind::epmdx, {}, {{"ERL_EPMD_PORT_PLEASE_ACCESS", "127.0.0.2/32"}});
    EXPECT_FALSE(lookup_answered(d, "127.0.0.1"));
    EXPECT_TRUE(lookup_answered(d, second_source));
    EXPECT_TRUE(names_answered(d, "127.0.0.1"));
}

TEST(AccessEnvironment, FlagWinsOverEnvironment) {
    Daemon d = Daemon::start(
        DaemonKind::epmdx, {"-names_access", "127.0.0.1/32", "-port_please_access", "127.0.0.3"},
        {{"ERL_EPMD_NAMES_ACCESS", "127.0.0.2/32"}, {"ERL_EPMD_PORT_PLEASE_ACCESS", "127.0.0.2"}});
    EXPECT_TRUE(names_answered(d, "127.0.0.1"));
    EXPECT_FALSE(names_answered(d, second_source));
    EXPECT_TRUE(lookup_answered(d, third_source));
    EXPECT_FALSE(lookup_answered(d, second_source));
}

// ---- Defaults and errors --------------------------------------------------------------------

TEST(AccessDefault, OpenToEveryoneLikeOtp) {
    for (const DaemonKind kind : {DaemonKind::otp, DaemonKind::epmdx}) {
        SCOPED_TRACE(kind == DaemonKind::otp ? "otp" : "epmdx");
        Daemon d = Daemon::start(kind);
        for (const std::string& source : {std::string("127.0.0.1"), second_source}) {
            EXPECT_TRUE(names_answered(d, source)) << source;
            EXPECT_TRUE(lookup_answered(d, source)) << source;
        }
    }
}

TEST(AccessList, BadListMakesTheDaemonExit) {
    const std::vector<std::pair<std::vector<std::string>, Env>> cases = {
        {{"-names_access", "10.0.0.0/33"}, {}},
        {{"-names_access", "bogus"}, {}},
        {{"-port_please_access", "::1/129"}, {}},
        {{"-port_please_access", "127.0.0.1,bogus"}, {}},
        {{}, {{"ERL_EPMD_NAMES_ACCESS", "bogus"}}},
    };
    for (const auto& [args, env] : cases) {
        std::vector<std::string> argv = {epmdx_binary(), "-port", std::to_string(free_port()),
                                         "-address", "127.0.0.1"};
        argv.insert(argv.end(), args.begin(), args.end());
        const RunResult result = run(argv, env, {}, 5s);
        const std::string bad = args.empty() ? "bogus" : args[1].substr(args[1].rfind(',') + 1);
        EXPECT_EQ(result.exit_code, 1) << bad;
        EXPECT_NE(result.err.find(bad), std::string::npos)
            << "stderr names the bad item: " << result.err;
    }
}

// ---- A non-loopback address of this machine ----------------------------------------------

TEST(NonLoopbackClient, LoopbackRuleRefusesItButItMayRegister) {
    const std::optional<std::string> address = non_loopback_address();
    if (!address) {
        GTEST_SKIP() << "this machine has no non-loopback IPv4 address";
    }
    Daemon d =
        Daemon::start(DaemonKind::epmdx, {"-names_access", "loopback"}, {}, {"-address", *address});
    EXPECT_FALSE(names_answered(d, *address, *address));
    EXPECT_TRUE(names_answered(d, "127.0.0.1"));

    // A same-host node that reaches the daemon through that address is local (peer == local
    // address), so ALIVE2 is allowed.
    Conn node = Conn::open(d.port(), *address, *address);
    node.send(alive2_request("outside", 7001));
    EXPECT_EQ(node.read_exact(6).substr(0, 2), std::string("v\0", 2));
    EXPECT_EQ(sorted_names(ask(d.port(), names_request()).bytes),
              std::vector<std::string>{"outside"});
    EXPECT_EQ(port_in(ask(d.port(), port_please_request("outside"), *address, *address).bytes),
              7001);
}

}  // namespace
}  // namespace epmdx::test::scale
