// SPDX-License-Identifier: Apache-2.0
// libcurl is loaded only when -fleet is used: a daemon without it never maps the library, and a
// host where it cannot be loaded gets a message naming the package, from the daemon (which then
// does not start) and from the command line.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "harness.hpp"

namespace epmdx::test {
namespace {

// Whether the process has a libcurl mapped, from its /proc/PID/maps.
bool maps_libcurl(pid_t pid) {
    std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
    std::ostringstream text;
    text << maps.rdbuf();
    return text.str().find("libcurl") != std::string::npos;
}

// An environment in which dlopen("libcurl.so.4") fails: the first one found is an empty file.
Env without_libcurl() {
    const std::filesystem::path directory = log_path("no-libcurl");
    std::filesystem::create_directories(directory);
    std::ofstream(directory / "libcurl.so.4").close();
    return {{"LD_LIBRARY_PATH", directory.string()}};
}

TEST(FleetLibrary, OnlyADaemonWithFleetMapsLibcurl) {
    if (!std::filesystem::exists("/proc/self/maps")) {
        GTEST_SKIP() << "no /proc/PID/maps here";
    }
    Daemon plain = Daemon::start(DaemonKind::epmdx);
    EXPECT_FALSE(maps_libcurl(plain.process().pid()));
    // Nothing answers there: the daemon warns and serves locally, with libcurl loaded.
    Daemon fleet = Daemon::start(DaemonKind::epmdx, {"-fleet", "http://127.0.0.1:1"});
    EXPECT_TRUE(maps_libcurl(fleet.process().pid())) << fleet.log();
}

TEST(FleetLibrary, WithoutLibcurlFleetIsRefusedWithTheReason) {
    const Env env = without_libcurl();
    const std::string message = "-fleet needs libcurl (Debian: libcurl4): ";
    const std::uint16_t port = free_port();
    const RunResult daemon = run({epmdx_binary(), "-port", std::to_string(port), "-address",
                                  "127.0.0.1", "-fleet", "http://127.0.0.1:1"},
                                 env);
    EXPECT_EQ(daemon.exit_code, 1);
    EXPECT_NE(daemon.err.find(message), std::string::npos) << daemon.err;
    EXPECT_NE(daemon.err.find("libcurl.so.4"), std::string::npos) << daemon.err;  // dlerror's
    EXPECT_FALSE(wait_for_port(port, 0ms));

    const RunResult cli = run({epmdx_binary(), "-fleet", "http://127.0.0.1:1", "-names"}, env);
    EXPECT_EQ(cli.exit_code, 1);
    EXPECT_EQ(cli.err.rfind("epmdx: " + message, 0), 0U) << cli.err;

    // Without -fleet the same environment changes nothing.
    Daemon plain = Daemon::start(DaemonKind::epmdx, {}, env);
    EXPECT_EQ(plain.cli(DaemonKind::epmdx, {"-names"}, env).exit_code, 0);
}

}  // namespace
}  // namespace epmdx::test
