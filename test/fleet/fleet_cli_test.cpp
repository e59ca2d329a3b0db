// SPDX-License-Identifier: Apache-2.0
// The command line on the fleet view, against a real etcd and real epmdx daemons publishing to
// it: -lookup NAME@HOST, -hosts read back by a real erl (file:consult, net_adm:world_list to a
// real node) and -watch through joins, leaves, a SIGKILLed daemon and an etcd restart.
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <csignal>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "etcd_server.hpp"
#include "harness.hpp"
#include "server/fleet/record.hpp"

namespace epmdx::test {
namespace {

// epmdx -fleet URL -fleet_prefix PREFIX, then `args`.
RunResult fleet_cli(const EtcdServer& etcd, const std::string& prefix,
                    const std::vector<std::string>& args) {
    std::vector<std::string> argv = {epmdx_binary(), "-fleet", etcd.url(), "-fleet_prefix", prefix};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
}

std::string file_text(const std::filesystem::path& path) {
    std::ifstream file(path, std::ios::binary);
    std::stringstream text;
    text << file.rdbuf();
    return text.str();
}

std::size_t count_lines(const std::string& text, const std::string& line) {
    std::size_t count = 0;
    std::istringstream lines(text);
    for (std::string each; std::getline(lines, each);) {
        count += each == line ? 1 : 0;
    }
    return count;
}

// `epmdx -fleet ... -watch` running, its stdout and stderr in one file.
class Watcher {
  public:
    Watcher(const EtcdServer& etcd, const std::string& prefix, bool json = false)
        : output_(log_path(json ? "watch-json" : "watch")) {
        std::vector<std::string> argv = {epmdx_binary(), "-fleet", etcd.url(), "-fleet_prefix",
                                         prefix};
        if (json) {
            argv.emplace_back("-json");
        }
        argv.emplace_back("-watch");
        process_ = Process::spawn(argv, {}, {}, output_);
        EXPECT_TRUE(eventually(
            [this] { return output().find("epmdx: watching ") != std::string::npos; }, 5s))
            << output();
    }

    std::string output() const { return file_text(output_); }
    // Waits until `line` is printed (once or more).
    bool saw(const std::string& line, std::chrono::milliseconds timeout = 5s) const {
        return eventually([&] { return count_lines(output(), line) > 0; }, timeout);
    }
    std::size_t times(const std::string& line) const { return count_lines(output(), line); }
    void signal(int sig) { process_.signal(sig); }
    // SIGTERM, and the exit code.
    std::optional<int> stop() {
        process_.signal(SIGTERM);
        return process_.wait(3s);
    }

  private:
    std::filesystem::path output_;
    Process process_;
};

TEST(FleetCli, LookupPrintsTheNodeOfThatHost) {
    EtcdServer etcd;
    etcd.start();
    Daemon daemon = Daemon::start(DaemonKind::epmdx, fleet_args(etcd, "/l1/", "hostA"));
    Registration alpha = register_node(daemon.port(), "alpha", 5001);
    ASSERT_TRUE(etcd.holds_exactly("/l1/", {"/l1/nodes/hostA/alpha"})) << daemon.log();

    const RunResult found = fleet_cli(etcd, "/l1/", {"-lookup", "alpha@hostA"});
    EXPECT_EQ(found.exit_code, 0) << found.err;
    EXPECT_EQ(found.out,
              "hostA: alpha: port 5001, type 77 (normal), protocol 0, highest version 6, lowest "
              "version 5, extra \"\"\n");
    EXPECT_EQ(found.err, "");
    const RunResult as_json = fleet_cli(etcd, "/l1/", {"-json", "-lookup", "alpha@hostA"});
    EXPECT_EQ(as_json.exit_code, 0) << as_json.err;
    const nlohmann::json node = nlohmann::json::parse(as_json.out);
    EXPECT_EQ(node["name"], "alpha");
    EXPECT_EQ(node["host"], "hostA");
    EXPECT_EQ(node["port"], 5001);
    EXPECT_EQ(node["static"], false);
    EXPECT_EQ(as_json.out.back(), '\n');
}

TEST(FleetCli, LookupOfAMissingNodeOrABadNameIsExit1) {
    EtcdServer etcd;
    etcd.start();
    Daemon daemon = Daemon::start(DaemonKind::epmdx, fleet_args(etcd, "/l2/", "hostA"));
    Registration alpha = register_node(daemon.port(), "alpha", 5001);
    ASSERT_TRUE(etcd.holds_exactly("/l2/", {"/l2/nodes/hostA/alpha"})) << daemon.log();
    etcd.put("/l2/nodes/hostA/junk", "not ours");

    for (const std::string target : {"beta@hostA", "alpha@hostB"}) {
        const RunResult missing = fleet_cli(etcd, "/l2/", {"-lookup", target});
        EXPECT_EQ(missing.exit_code, 1) << target;
        EXPECT_EQ(missing.out, "");
        const std::size_t at = target.find('@');
        EXPECT_EQ(missing.err, "epmdx: " + target.substr(at + 1) + ": no node named " +
                                   target.substr(0, at) + " in the fleet view\n");
    }
    const RunResult junk = fleet_cli(etcd, "/l2/", {"-json", "-lookup", "junk@hostA"});
    EXPECT_EQ(junk.exit_code, 1);
    EXPECT_EQ(junk.out, "");
    EXPECT_EQ(junk.err,
              "epmdx: -fleet: skipping /l2/nodes/hostA/junk: its value is not an epmdx node "
              "entry\n");
    for (const std::string target : {"alpha", "@hostA", "alpha@"}) {
        const RunResult bad = fleet_cli(etcd, "/l2/", {"-lookup", target});
        EXPECT_EQ(bad.exit_code, 1) << target;
        EXPECT_EQ(bad.out, "");
        EXPECT_EQ(bad.err, "epmdx: -lookup with -fleet needs NAME@HOST, as in web@db1; got \"" +
                               target + "\"\n");
    }
}

// The characters of an atom list as erl's ~w prints it: [[104,111],[...]].
std::string code_lists(const std::vector<std::vector<unsigned>>& atoms) {
    std::ostringstream text;
    text << '[';
    for (std::size_t a = 0; a < atoms.size(); ++a) {
        text << (a > 0 ? ",[" : "[");
        for (std::size_t i = 0; i < atoms[a].size(); ++i) {
            text << (i > 0 ? "," : "") << atoms[a][i];
        }
        text << ']';
    }
    text << ']';
    return text.str();
}

std::vector<unsigned> bytes_of(std::string_view text) {
    std::vector<unsigned> codes;
    for (const char c : text) {
        codes.push_back(static_cast<unsigned char>(c));
    }
    return codes;
}

TEST(FleetCli, HostsIsAHostsErlangFileThatErlReadsBack) {
    EtcdServer etcd;
    etcd.start();
    const std::string too_long(256, 'x');
    const std::string longest(255, 'y');
    // Published as a daemon would, with every host a key's bytes can hold.
    const std::vector<std::string> hosts = {"plain",       "it's",      "back\\slash",
                                            "caf\xc3\xa9", "tab\there", "\xff\xfe",
                                            too_long,      longest,     "db1.example.com"};
    for (const std::string& host : hosts) {
        server::fleet::FleetNode node;
        node.info.name = "n";
        node.info.port = 5000;
        node.host = host;
        etcd.put(server::fleet::node_key("/h1/", host, "n"), server::fleet::encode_node(node));
    }
    etcd.put("/h1/nodes/elsewhere", "not a node key");

    const RunResult listed = fleet_cli(etcd, "/h1/", {"-hosts"});
    EXPECT_EQ(listed.exit_code, 0) << listed.err;
    // In byte order of the host names; the one too long left out with a warning.
    EXPECT_EQ(listed.out,
              "'back\\\\slash'.\n'caf\\x{E9}'.\n'db1.example.com'.\n'it\\'s'.\n"
              "'plain'.\n'tab\\x{9}here'.\n'" +
                  longest + "'.\n'\\x{FF}\\x{FE}'.\n");
    EXPECT_EQ(listed.err,
              "epmdx: -fleet: skipping /h1/nodes/elsewhere: not a node key of the fleet view\n"
              "epmdx: -fleet: leaving out host " +
                  too_long + ": longer than 255 characters, Erlang's limit for an atom\n");

    const std::filesystem::path file = log_path("hosts.erlang");
    std::ofstream(file, std::ios::binary) << listed.out;
    const RunResult read = run({erl_binary(), "-noshell", "-eval",
                                "{ok, Hosts} = file:consult(\"" + file.string() +
                                    "\"), io:format(\"~w~n\", [[atom_to_list(H) || H <- Hosts]]), "
                                    "halt()."});
    ASSERT_EQ(read.exit_code, 0) << read.err << read.out;
    EXPECT_EQ(read.out, code_lists({bytes_of("back\\slash"),
                                    {'c', 'a', 'f', 0xE9},
                                    bytes_of("db1.example.com"),
                                    bytes_of("it's"),
                                    bytes_of("plain"),
                                    bytes_of("tab\there"),
                                    bytes_of(longest),
                                    {0xFF, 0xFE}}) +
                            "\n");
}

// This host's name as erl -sname names it, and as the daemon's fleet host defaults to.
std::string short_host() {
    std::array<char, 256> name{};
    EXPECT_EQ(::gethostname(name.data(), name.size() - 1), 0);
    const std::string full(name.data());
    return full.substr(0, full.find('.'));
}

TEST(FleetCli, HostsLetsNetAdmWorldListReachARealNode) {
    EtcdServer etcd;
    etcd.start();
    // The default fleet host: the name erl -sname gives the node's host part.
    Daemon daemon =
        Daemon::start(DaemonKind::epmdx, {"-fleet", etcd.url(), "-fleet_prefix", "/h2/"});
    const Env env = {{"ERL_EPMD_PORT", std::to_string(daemon.port())}};
    Process node = Process::spawn({erl_binary(), "-sname", "fleetnode", "-setcookie", "fleetcli",
                                   "-noshell", "-eval", "timer:sleep(infinity)."},
                                  env, {}, log_path("erl-node"));
    const std::string host = short_host();
    ASSERT_TRUE(etcd.holds_exactly("/h2/", {"/h2/nodes/" + host + "/fleetnode"}, 15s))
        << daemon.log();

    const RunResult listed = fleet_cli(etcd, "/h2/", {"-hosts"});
    ASSERT_EQ(listed.exit_code, 0) << listed.err;
    EXPECT_EQ(listed.out, "'" + host + "'.\n");
    const std::filesystem::path file = log_path("world.hosts.erlang");
    std::ofstream(file, std::ios::binary) << listed.out;
    const RunResult world =
        run({erl_binary(), "-sname", "prober", "-setcookie", "fleetcli", "-noshell", "-eval",
             "{ok, Hosts} = file:consult(\"" + file.string() +
                 "\"), Nodes = lists:sort(net_adm:world_list(Hosts)), "
                 "io:format(\"~s~n\", [lists:join(\" \", [atom_to_list(N) || N <- Nodes])]), "
                 "halt()."},
            env, {}, 30s);
    ASSERT_EQ(world.exit_code, 0) << world.err << world.out;
    EXPECT_EQ(world.out, "fleetnode@" + host + " prober@" + host + "\n");
}

TEST(FleetCli, WatchPrintsJoinsAndLeavesAndStopsOnSigterm) {
    EtcdServer etcd;
    etcd.start();
    Daemon daemon = Daemon::start(DaemonKind::epmdx, fleet_args(etcd, "/w1/", "hostW"));
    Registration before = register_node(daemon.port(), "before", 5000);
    ASSERT_TRUE(etcd.holds_exactly("/w1/", {"/w1/nodes/hostW/before"})) << daemon.log();
    Watcher text(etcd, "/w1/");
    Watcher json(etcd, "/w1/", true);

    Registration alpha = register_node(daemon.port(), "alpha", 5001);
    Registration beta = register_node(daemon.port(), "beta", 5002);
    EXPECT_TRUE(text.saw("joined: hostW: name alpha at port 5001")) << text.output();
    EXPECT_TRUE(text.saw("joined: hostW: name beta at port 5002"));
    alpha.conn.close();
    EXPECT_TRUE(text.saw("left: hostW: name alpha")) << text.output();
    // A re-put of a key that is there is no join; a key not ours is skipped by name.
    const std::string value = etcd.get("/w1/").at("/w1/nodes/hostW/beta");
    etcd.put("/w1/nodes/hostW/beta", value);
    etcd.put("/w1/nodes/stray", "x");
    etcd.put("/w1/nodes/hostW/junk", "x");
    EXPECT_TRUE(text.saw(
        "epmdx: -fleet: skipping /w1/nodes/hostW/junk: its value is not an epmdx node entry"));
    EXPECT_TRUE(
        text.saw("epmdx: -fleet: skipping /w1/nodes/stray: not a node key of the fleet view"));

    EXPECT_EQ(text.stop(), 0);
    EXPECT_EQ(json.stop(), 0);
    const std::string printed = text.output();
    std::istringstream lines(printed);
    std::vector<std::string> events;
    for (std::string line; std::getline(lines, line);) {
        if (!line.starts_with("epmdx: ")) {
            events.push_back(line);
        }
    }
    // Nothing of what was there before the watch; the rest once each.
    EXPECT_EQ(events, (std::vector<std::string>{"joined: hostW: name alpha at port 5001",
                                                "joined: hostW: name beta at port 5002",
                                                "left: hostW: name alpha"}))
        << printed;
    EXPECT_NE(printed.find("epmdx: watching /w1/nodes/ at revision "), std::string::npos);

    std::vector<std::string> json_events;
    std::istringstream json_lines(json.output());
    for (std::string line; std::getline(json_lines, line);) {
        if (line.starts_with("{")) {
            const nlohmann::json event = nlohmann::json::parse(line);
            json_events.push_back(event["event"].get<std::string>() + " " +
                                  event["host"].get<std::string>() + " " +
                                  event["name"].get<std::string>());
            if (event["event"] == "joined") {
                EXPECT_EQ(event["port"], event["name"] == "alpha" ? 5001 : 5002);
                EXPECT_EQ(event["epmdx_fleet"], 1);
            }
            EXPECT_GT(event["revision"], 0);
        }
    }
    EXPECT_EQ(json_events, (std::vector<std::string>{"joined hostW alpha", "joined hostW beta",
                                                     "left hostW alpha"}))
        << json.output();
}

TEST(FleetCli, WatchSeesAKilledDaemonsNodesLeaveWithinTheLease) {
    EtcdServer etcd;
    etcd.start();
    Watcher watcher(etcd, "/w2/");
    Daemon daemon = Daemon::start(DaemonKind::epmdx, fleet_args(etcd, "/w2/", "hostK"));
    Registration one = register_node(daemon.port(), "one", 5011);
    Registration two = register_node(daemon.port(), "two", 5012);
    ASSERT_TRUE(watcher.saw("joined: hostK: name one at port 5011")) << watcher.output();
    ASSERT_TRUE(watcher.saw("joined: hostK: name two at port 5012"));
    daemon.process().kill();
    const auto killed = std::chrono::steady_clock::now();
    // TTL 10 s, plus 1 s.
    EXPECT_TRUE(watcher.saw("left: hostK: name one", 11s)) << watcher.output();
    EXPECT_TRUE(watcher.saw("left: hostK: name two", 0s));
    EXPECT_GT(std::chrono::steady_clock::now() - killed, 1s);  // the lease, not a goodbye
    EXPECT_EQ(watcher.stop(), 0);
}

TEST(FleetCli, WatchGivesEveryEventOnceAcrossAnEtcdRestart) {
    EtcdServer etcd;
    etcd.start();
    Watcher watcher(etcd, "/w3/");
    Daemon daemon = Daemon::start(DaemonKind::epmdx, fleet_args(etcd, "/w3/", "hostR"));
    Registration alpha = register_node(daemon.port(), "alpha", 5021);
    Registration beta = register_node(daemon.port(), "beta", 5022);
    ASSERT_TRUE(watcher.saw("joined: hostR: name beta at port 5022")) << watcher.output();

    etcd.stop();
    EXPECT_TRUE(eventually(
        [&] { return watcher.output().find("lost the watch") != std::string::npos; }, 5s))
        << watcher.output();
    Registration gamma = register_node(daemon.port(), "gamma", 5023);
    alpha.conn.close();
    EXPECT_TRUE(wait_for_names(
        daemon.port(), [](const std::vector<NameEntry>& entries) { return entries.size() == 2; }));
    etcd.start();
    // The daemon catches up; the watch resumes where it was.
    EXPECT_TRUE(watcher.saw("joined: hostR: name gamma at port 5023", 10s)) << watcher.output();
    EXPECT_TRUE(watcher.saw("left: hostR: name alpha", 5s)) << watcher.output();
    Registration delta = register_node(daemon.port(), "delta", 5024);
    EXPECT_TRUE(watcher.saw("joined: hostR: name delta at port 5024")) << watcher.output();
    EXPECT_EQ(watcher.stop(), 0);

    const std::string printed = watcher.output();
    for (const std::string line :
         {"joined: hostR: name alpha at port 5021", "joined: hostR: name beta at port 5022",
          "joined: hostR: name gamma at port 5023", "left: hostR: name alpha",
          "joined: hostR: name delta at port 5024"}) {
        EXPECT_EQ(count_lines(printed, line), 1U) << line << "\n" << printed;
    }
    EXPECT_EQ(printed.find("left: hostR: name beta"), std::string::npos) << printed;
    EXPECT_NE(printed.find("epmdx: -fleet: watching again on " + etcd.url()), std::string::npos)
        << printed;
}

// A node entry as a daemon writes it, put with etcdctl.
void put_node(const EtcdServer& etcd, const std::string& prefix, const std::string& host,
              const std::string& name, std::uint16_t port) {
    server::fleet::FleetNode node;
    node.info.name = name;
    node.info.port = port;
    node.host = host;
    etcd.put(server::fleet::node_key(prefix, host, name), server::fleet::encode_node(node));
}

TEST(FleetCli, WatchSaysWhatACompactionLostAndGoesOn) {
    EtcdServer etcd;
    etcd.start();
    Watcher watcher(etcd, "/w4/");
    put_node(etcd, "/w4/", "hostC", "seen", 5031);
    ASSERT_TRUE(watcher.saw("joined: hostC: name seen at port 5031")) << watcher.output();
    // The watcher frozen while its stream is lost and the history it would resume from goes.
    watcher.signal(SIGSTOP);
    etcd.stop();
    etcd.start();
    put_node(etcd, "/w4/", "hostC", "missed", 5032);
    // A revision past it, outside the prefix, to compact up to: the one above is lost.
    etcd.put("/elsewhere", "x");
    const RunResult status = etcd.ctl({"get", "/elsewhere", "-w", "json"});
    const auto revision =
        nlohmann::json::parse(status.out)["header"]["revision"].get<std::int64_t>();
    ASSERT_EQ(etcd.ctl({"compact", std::to_string(revision)}).exit_code, 0);
    watcher.signal(SIGCONT);

    EXPECT_TRUE(watcher.saw("epmdx: -fleet: etcd has compacted away revisions " +
                                std::to_string(revision - 1) + " to " +
                                std::to_string(revision - 1) +
                                ": the joins and leaves in them are lost; watching on from "
                                "revision " +
                                std::to_string(revision),
                            10s))
        << watcher.output();
    put_node(etcd, "/w4/", "hostC", "after", 5033);
    EXPECT_TRUE(watcher.saw("joined: hostC: name after at port 5033")) << watcher.output();
    EXPECT_EQ(watcher.stop(), 0);
    EXPECT_EQ(watcher.times("joined: hostC: name missed at port 5032"), 0U);
}

}  // namespace
}  // namespace epmdx::test
