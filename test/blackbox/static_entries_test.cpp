// SPDX-License-Identifier: Apache-2.0
// -static FILE (docs/differences.md A-STATIC): nodes that run without registering, answered from
// a file by the built daemon over loopback.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "blackbox.hpp"

namespace epmdx::test {
namespace {

using namespace std::string_literals;

const std::string registered_ok = "v\0"s;
// ALIVE2_X_RESP refusing: result 1, creation 99.
const std::string refused = "v\x01"s + u32(99);

// A file under the temporary directory, removed with the object.
class TempFile {
  public:
    explicit TempFile(const std::string& text) {
        static std::atomic<int> counter = 0;
        path_ =
            std::filesystem::temp_directory_path() / ("epmdx-static-" + std::to_string(::getpid()) +
                                                      "-" + std::to_string(++counter) + ".conf");
        std::ofstream(path_, std::ios::binary) << text;
    }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    ~TempFile() {
        std::error_code ignored;
        std::filesystem::remove(path_, ignored);
    }
    std::string path() const { return path_.string(); }

  private:
    std::filesystem::path path_;
};

const char* const two_entries =
    "# nodes started with -erl_epmd_port\n"
    "static_one 5101\n"
    "\n"
    "static_two\t5102  # the second\n";

// What PORT_PLEASE2 returns for a static entry: a normal node, TCP/IPv4, versions 6 to 5.
std::string port2_for_static(std::string_view name, std::uint16_t port) {
    return "w\0"s + u16(port) + "M\0"s + u16(6) + u16(5) + u16(name.size()) + std::string(name) +
           u16(0);
}

// Runs the daemon expecting it to refuse to start.
RunResult start_refused(const std::vector<std::string>& args, const Env& env = {}) {
    std::vector<std::string> argv = {epmdx_binary(), "-port", std::to_string(free_port()),
                                     "-address", "127.0.0.1"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, env, {"ERL_EPMD_PORT", "ERL_EPMD_ADDRESS", "ERL_EPMD_STATIC"}, 10s);
}

TEST(StaticEntries, PortPleaseFindsAStaticEntry) {
    const TempFile file(two_entries);
    Daemon d = Daemon::start(DaemonKind::epmdx, {"-static", file.path()});
    EXPECT_EQ(hex(round_trip(d.port(), port_please_request("static_two"))),
              hex(port2_for_static("static_two", 5102)));
    EXPECT_EQ(hex(round_trip(d.port(), port_please_request("static_one"))),
              hex(port2_for_static("static_one", 5101)));
    EXPECT_EQ(hex(round_trip(d.port(), port_please_request("static_three"))), hex("w\x01"s));
}

TEST(StaticEntries, TheVariableNamesTheFileToo) {
    const TempFile file(two_entries);
    Daemon d = Daemon::start(DaemonKind::epmdx, {}, {{"ERL_EPMD_STATIC", file.path()}});
    EXPECT_EQ(hex(round_trip(d.port(), port_please_request("static_one"))),
              hex(port2_for_static("static_one", 5101)));
}

TEST(StaticEntries, NamesListsThemAfterRegisteredNodesInFileOrder) {
    const TempFile file(two_entries);
    Daemon d = Daemon::start(DaemonKind::epmdx, {"-static", file.path()});
    const Registration first = register_node(d.port(), "first", 6001);
    const Registration second = register_node(d.port(), "second", 6002);
    ASSERT_EQ(first.reply.substr(0, 2), registered_ok);
    ASSERT_EQ(second.reply.substr(0, 2), registered_ok);

    EXPECT_EQ(round_trip(d.port(), names_request()), names_header(d.port()) +
                                                         "name second at port 6002\n"
                                                         "name first at port 6001\n"
                                                         "name static_one at port 5101\n"
                                                         "name static_two at port 5102\n");
    // DUMP shows them as active nodes that hold no descriptor.
    const std::string dump = round_trip(d.port(), dump_request());
    EXPECT_NE(dump.find("active name     <static_one> at port 5101, fd = -1\n\0"s),
              std::string::npos)
        << dump;
    EXPECT_NE(dump.find("active name     <static_two> at port 5102, fd = -1\n\0"s),
              std::string::npos)
        << dump;
}

TEST(StaticEntries, RegisteringAStaticNameIsRefusedWhileOthersRegister) {
    const TempFile file(two_entries);
    Daemon d = Daemon::start(DaemonKind::epmdx, {"-static", file.path()});

    Registration impostor = register_node(d.port(), "static_one", 7001);
    EXPECT_EQ(hex(impostor.reply), hex(refused));
    EXPECT_TRUE(impostor.conn.closed_within(2s));
    // Old-style nodes are refused the same way, in their reply format.
    Registration old_style = register_node(d.port(), "static_two", 7002, 5);
    EXPECT_EQ(hex(old_style.reply), hex("y\x01"s + u16(99)));

    const Registration other = register_node(d.port(), "other", 7003);
    EXPECT_EQ(other.reply.substr(0, 2), registered_ok);
    EXPECT_EQ(hex(round_trip(d.port(), port_please_request("static_one"))),
              hex(port2_for_static("static_one", 5101)));
    EXPECT_EQ(names_in(round_trip(d.port(), names_request())),
              (std::vector<std::string>{"other", "static_one", "static_two"}));
    EXPECT_NE(d.log().find("refusing to register static_one: the name is a static entry"),
              std::string::npos)
        << d.log();
}

TEST(StaticEntries, StopOfAStaticNameAnswersNoexistAndKeepsIt) {
    const TempFile file(two_entries);
    Daemon d = Daemon::start(DaemonKind::epmdx, {"-static", file.path(), "-relaxed_command_check"});
    EXPECT_EQ(round_trip(d.port(), stop_request("static_one")), "NOEXIST");
    EXPECT_EQ(hex(round_trip(d.port(), port_please_request("static_one"))),
              hex(port2_for_static("static_one", 5101)));
    EXPECT_NE(d.log().find("STOP_REQ for static_one refused: the name is a static entry"),
              std::string::npos)
        << d.log();
}

TEST(StaticEntries, KillIsNotHeldBackByStaticEntries) {
    const TempFile file(two_entries);
    Daemon d = Daemon::start(DaemonKind::epmdx, {"-static", file.path()});
    {
        const Registration live = register_node(d.port(), "live", 6001);
        ASSERT_EQ(live.reply.substr(0, 2), registered_ok);
        EXPECT_EQ(round_trip(d.port(), kill_request()), "NO");
    }
    // The registration ends when its connection closes: wait until NAMES no longer lists it.
    const auto deadline = Clock::now() + 5s;
    while (names_in(round_trip(d.port(), names_request())).size() != 2 && Clock::now() < deadline) {
        std::this_thread::sleep_for(20ms);
    }
    EXPECT_EQ(round_trip(d.port(), kill_request()), "OK");
    EXPECT_EQ(d.process().wait(5s), 0);
}

TEST(StaticEntries, ABadFileStopsTheDaemonNamingFileAndLine) {
    const TempFile file("# ok so far\nalpha 4370\nbeta 70000\n");
    const RunResult r = start_refused({"-static", file.path()});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find("bad -static file: " + file.path() +
                         ":3: port \"70000\" is not a number from 1 to 65535"),
              std::string::npos)
        << r.err;

    const TempFile duplicate("alpha 4370\nalpha 4371\n");
    const RunResult from_variable = start_refused({}, {{"ERL_EPMD_STATIC", duplicate.path()}});
    EXPECT_EQ(from_variable.exit_code, 1) << from_variable.err;
    EXPECT_NE(
        from_variable.err.find(duplicate.path() + ":2: node name \"alpha\" is already on line 1"),
        std::string::npos)
        << from_variable.err;
}

TEST(StaticEntries, AnUnreadableFileStopsTheDaemon) {
    const std::string missing = (std::filesystem::temp_directory_path() /
                                 ("epmdx-static-missing-" + std::to_string(::getpid())))
                                    .string();
    const RunResult r = start_refused({"-static", missing});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(
        r.err.find("bad -static file: cannot read " + missing + ": No such file or directory"),
        std::string::npos)
        << r.err;
}

TEST(StaticEntries, ABadFileStopsTheDaemonBeforeItDetaches) {
    const TempFile file("alpha\n");
    const RunResult r = start_refused({"-daemon", "-static", file.path()});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find(file.path() + ":1: expected NAME PORT, found 1 field"), std::string::npos)
        << r.err;
}

}  // namespace
}  // namespace epmdx::test
