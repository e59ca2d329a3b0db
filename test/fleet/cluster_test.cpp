// SPDX-License-Identifier: Apache-2.0
// The fleet view as a fleet: a 3-member etcd cluster and three epmdx "hosts", each a network
// namespace of its own with its address and two real `erl -sname` nodes, all on one bridge.
// The test process first moves into a network namespace of its own (so nothing here touches the
// host's network); the bridge and the etcd members (10.79.0.1-3) live there, the hosts
// (10.79.0.11-13) in named namespaces joined to the bridge by veth pairs. Needs root and `ip`;
// skipped otherwise. Every case builds the whole fleet afresh and tears it down, on failure too;
// what a killed run leaves (named namespaces, the data directory) goes at the next start.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "etcd_server.hpp"
#include "harness.hpp"

namespace epmdx::test {
namespace {

using Clock = std::chrono::steady_clock;

// Every name this test gives the system starts with this, so a later run can find its leftovers.
const std::string namespace_prefix = "epmdx-fc-";
const std::filesystem::path data_root =
    std::filesystem::temp_directory_path() / "epmdx-fleet-cluster";
const std::string fleet_prefix = "/fc/";
constexpr std::size_t host_count = 3;
constexpr std::size_t member_count = 3;

std::string member_address(std::size_t i) {
    return cat("10.79.0.", std::to_string(i + 1));
}
std::string host_address(std::size_t i) {
    return cat("10.79.0.", std::to_string(i + 11));
}
std::string host_name(std::size_t i) {
    return cat("host", std::to_string(i + 1));
}

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// One measured figure, on a line of its own in the test's output.
void report(const std::string& what, double seconds) {
    std::cout << "[  figure  ] " << what << ": " << std::fixed << std::setprecision(2) << seconds
              << " s" << std::endl;
}

// Also called from destructors: never throws.
bool ip(std::vector<std::string> args) noexcept {
    try {
        args.insert(args.begin(), {"/usr/bin/env", "ip"});
        return run(args, {}, {}, 10s).exit_code == 0;
    } catch (...) {
        return false;
    }
}

// A field of a JSON object, or the fallback when it is missing or of another type: whatever
// etcdctl prints while members come and go is never an exception (nor a failed assertion in
// nlohmann's const operator[]).
template <typename T>
T field(const nlohmann::json& object, const std::string& key, T fallback) {
    if (!object.is_object()) {
        return fallback;
    }
    const auto found = object.find(key);
    if (found == object.end()) {
        return fallback;
    }
    try {
        return found->get<T>();
    } catch (const nlohmann::json::exception&) {
        return fallback;
    }
}

// Moves this process (its main thread, and so every child started later) into a network
// namespace of its own with lo up: once per process. "" on success, else why not.
const std::string& enter_private_network() {
    static const std::string reason = []() -> std::string {
        if (::geteuid() != 0) {
            return "needs root (network namespaces)";
        }
        if (!ip({"netns", "list"})) {
            return "needs `ip netns` (iproute2)";
        }
        if (::unshare(CLONE_NEWNET) != 0) {
            return cat("unshare(CLONE_NEWNET): ", std::strerror(errno));
        }
        if (!ip({"link", "set", "lo", "up"})) {
            return "cannot bring lo up in the private namespace";
        }
        return {};
    }();
    return reason;
}

// Named namespaces (and their processes) and the data directory a killed run left behind. The
// bridge needs no cleaning: it lives in that run's private namespace, gone with the run.
void remove_leftovers() {
    const RunResult listed = run({"/usr/bin/env", "ip", "netns", "list"});
    std::istringstream lines(listed.out);
    for (std::string line; std::getline(lines, line);) {
        const std::string name = line.substr(0, line.find(' '));
        if (!name.starts_with(namespace_prefix)) {
            continue;
        }
        std::istringstream pids(run({"/usr/bin/env", "ip", "netns", "pids", name}).out);
        for (pid_t pid = 0; pids >> pid;) {
            ::kill(pid, SIGKILL);
        }
        ip({"netns", "del", name});
    }
    std::error_code ignored;
    std::filesystem::remove_all(data_root, ignored);
}

// The calling thread in a named namespace for the guard's lifetime: sockets opened meanwhile
// stay there (ALIVE2 is accepted from local peers only). Never fork under it.
class InNamespace {
  public:
    explicit InNamespace(const std::string& name)
        : home_(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) {
        const int target = ::open(cat("/run/netns/", name).c_str(), O_RDONLY | O_CLOEXEC);
        entered_ = home_ >= 0 && target >= 0 && ::setns(target, CLONE_NEWNET) == 0;
        if (target >= 0) {
            ::close(target);
        }
    }
    InNamespace(const InNamespace&) = delete;
    InNamespace& operator=(const InNamespace&) = delete;
    ~InNamespace() {
        if (entered_) {
            (void)::setns(home_, CLONE_NEWNET);
        }
        if (home_ >= 0) {
            ::close(home_);
        }
    }
    bool entered() const { return entered_; }

  private:
    int home_;
    bool entered_ = false;
};

// The bridge with the members' addresses, and one named namespace per host on it.
class Network {
  public:
    Network() {
        ready_ =
            ip({"link", "add", bridge_, "type", "bridge"}) && ip({"link", "set", bridge_, "up"});
        for (std::size_t i = 0; i < member_count && ready_; ++i) {
            ready_ = ip({"addr", "add", cat(member_address(i), "/24"), "dev", bridge_});
        }
        for (std::size_t i = 0; i < host_count && ready_; ++i) {
            const std::string ns = namespace_of(i);
            const std::string link = cat("efc-veth", std::to_string(i + 1));
            ready_ =
                ip({"netns", "add", ns}) &&
                ip({"link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", ns}) &&
                ip({"link", "set", link, "master", bridge_, "up"}) &&
                ip({"-n", ns, "addr", "add", cat(host_address(i), "/24"), "dev", "eth0"}) &&
                ip({"-n", ns, "link", "set", "eth0", "up"}) &&
                ip({"-n", ns, "link", "set", "lo", "up"});
        }
    }
    Network(const Network&) = delete;
    Network& operator=(const Network&) = delete;
    ~Network() {
        for (std::size_t i = 0; i < host_count; ++i) {
            ip({"netns", "del", namespace_of(i)});  // takes its veth pair along
        }
        ip({"link", "del", bridge_});
    }

    bool ready() const { return ready_; }
    static std::string namespace_of(std::size_t host) { return namespace_prefix + host_name(host); }

  private:
    const std::string bridge_ = "efc-br0";
    bool ready_ = false;
};

// Three etcd members, m1..m3 on 10.79.0.1..3, one cluster (--initial-cluster); each member's
// data outlives a kill, so a restart finds its keys and leases again.
class EtcdCluster {
  public:
    EtcdCluster() {
        for (std::size_t i = 0; i < member_count; ++i) {
            initial_cluster_ += cat(i ? "," : "", member_name(i), "=", peer_url(i));
        }
    }

    static std::string client_url(std::size_t i) {
        return cat("http://", member_address(i), ":2379");
    }
    // The members' client URLs from the given one on, comma-separated.
    static std::string endpoints(std::size_t first = 0) {
        std::string list;
        for (std::size_t k = 0; k < member_count; ++k) {
            list += cat(k ? "," : "", client_url((first + k) % member_count));
        }
        return list;
    }

    void start(std::size_t i) {
        members_[i] = Process::spawn(
            {ETCD_BINARY, "--name", member_name(i), "--data-dir",
             (data_root / member_name(i)).string(), "--listen-client-urls", client_url(i),
             "--advertise-client-urls", client_url(i), "--listen-peer-urls", peer_url(i),
             "--initial-advertise-peer-urls", peer_url(i), "--initial-cluster", initial_cluster_,
             "--initial-cluster-state", "new", "--initial-cluster-token", "epmdx-fleet-cluster"},
            {}, {}, log_path(cat("etcd-", member_name(i))));
    }
    void start_all() {
        for (std::size_t i = 0; i < member_count; ++i) {
            start(i);
        }
    }
    // As a crash would.
    void kill(std::size_t i) { members_[i].kill(); }
    bool healthy(std::chrono::milliseconds timeout) const {
        return eventually(
            [this] {
                return ctl({"endpoint", "health", "--endpoints", endpoints()}).exit_code == 0;
            },
            timeout);
    }

    RunResult ctl(const std::vector<std::string>& args) const {
        std::vector<std::string> argv = {
            ETCDCTL_BINARY, "--endpoints",       endpoints(), "--dial-timeout",
            "2s",           "--command-timeout", "3s"};
        argv.insert(argv.end(), args.begin(), args.end());
        return run(argv, {{"ETCDCTL_API", "3"}});
    }
    // Each listed member's ID and the leader it knows of (0: none), from `endpoint status`. A
    // member without a leader answers it slowly: a short timeout keeps polls ~0.2 s apart.
    struct Status {
        std::uint64_t member = 0;
        std::uint64_t leader = 0;
    };
    std::map<std::size_t, Status> status(const std::vector<std::size_t>& which) const {
        std::string list;
        for (const std::size_t i : which) {
            list += cat(list.empty() ? "" : ",", client_url(i));
        }
        const RunResult listed = ctl({"endpoint", "status", "-w", "json", "--endpoints", list,
                                      "--command-timeout", "200ms"});
        std::map<std::size_t, Status> found;
        const nlohmann::json parsed = nlohmann::json::parse(listed.out, nullptr, false);
        if (!parsed.is_array()) {
            return found;
        }
        for (const nlohmann::json& entry : parsed) {
            for (const std::size_t i : which) {
                if (field(entry, "Endpoint", std::string()) == client_url(i)) {
                    const auto status = field(entry, "Status", nlohmann::json());
                    found[i] = {field(field(status, "header", nlohmann::json()), "member_id",
                                      std::uint64_t{0}),
                                field(status, "leader", std::uint64_t{0})};
                }
            }
        }
        return found;
    }
    // The store's current revision; 0 if etcd did not answer.
    std::int64_t revision() const {
        const nlohmann::json parsed = nlohmann::json::parse(
            ctl({"get", "--prefix", fleet_prefix, "--keys-only", "-w", "json"}).out, nullptr,
            false);
        return field(field(parsed, "header", nlohmann::json()), "revision", std::int64_t{0});
    }
    // Every key under the prefix with its value (single lines); nullopt if etcd did not answer.
    std::optional<Store> get() const {
        const RunResult listed = ctl({"get", "--prefix", fleet_prefix});
        if (listed.exit_code != 0) {
            return std::nullopt;
        }
        Store store;
        std::istringstream lines(listed.out);
        for (std::string key, value; std::getline(lines, key) && std::getline(lines, value);) {
            store[key] = value;
        }
        return store;
    }

  private:
    static std::string member_name(std::size_t i) { return cat("m", std::to_string(i + 1)); }
    static std::string peer_url(std::size_t i) {
        return cat("http://", member_address(i), ":2380");
    }

    std::string initial_cluster_;
    std::array<Process, member_count> members_;
};

// "host/name:port" for every node, as the registries or the store hold them.
using Nodes = std::set<std::string>;

std::string node_entry(const std::string& host, const std::string& name, int port) {
    return cat(host, "/", name, ":", std::to_string(port));
}

// The nodes the fleet view holds; nullopt if etcd did not answer.
std::optional<Nodes> stored_nodes(const EtcdCluster& etcd) {
    const std::optional<Store> store = etcd.get();
    if (!store) {
        return std::nullopt;
    }
    Nodes nodes;
    for (const auto& [key, value] : *store) {
        const nlohmann::json node = nlohmann::json::parse(value, nullptr, false);
        nodes.insert(node.is_object()
                         ? node_entry(field(node, "host", std::string()),
                                      field(node, "name", std::string()), field(node, "port", 0))
                         : cat("not a node: ", key));
    }
    return nodes;
}

// Who left the fleet view, as a watcher saw it: `etcdctl watch` from the revision current at
// construction, so nothing after that is missed however late the process gets going.
class NodeWatcher {
  public:
    explicit NodeWatcher(const EtcdCluster& etcd)
        : output_(log_path("watch")),
          process_(Process::spawn(
              {ETCDCTL_BINARY, "--endpoints", EtcdCluster::endpoints(), "watch", "--prefix",
               fleet_prefix, "--rev", std::to_string(etcd.revision() + 1)},
              {{"ETCDCTL_API", "3"}}, {}, output_)) {}

    // "name@host" of every node whose key was deleted, in the order seen. etcdctl writes an
    // event as its type, the key and the value (empty for a delete), a line each.
    std::vector<std::string> left() const {
        std::ifstream in(output_);
        std::vector<std::string> nodes;
        for (std::string type, key, value;
             std::getline(in, type) && std::getline(in, key) && std::getline(in, value);) {
            const std::string host_and_name =
                key.substr(std::min(key.size(), nodes_prefix_.size()));
            const std::size_t slash = host_and_name.find('/');
            if (type == "DELETE" && key.starts_with(nodes_prefix_) && slash != std::string::npos) {
                nodes.push_back(
                    cat(host_and_name.substr(slash + 1), "@", host_and_name.substr(0, slash)));
            }
        }
        return nodes;
    }

  private:
    const std::string nodes_prefix_ = fleet_prefix + "nodes/";
    std::filesystem::path output_;
    Process process_;
};

// One host: its namespace, its epmdx (listening on every address there) and its erl nodes.
class Host {
  public:
    Host(std::size_t index, std::uint16_t port)
        : index_(index), port_(port), namespace_(Network::namespace_of(index)) {}

    const std::string& name_space() const { return namespace_; }
    std::string name() const { return host_name(index_); }
    Process& daemon() { return daemon_; }

    // Its first etcd member is a different one on each host.
    void start_daemon() {
        daemon_ = Process::spawn(
            {"/usr/bin/env", "ip", "netns", "exec", namespace_, epmdx_binary(), "-port",
             std::to_string(port_), "-fleet", EtcdCluster::endpoints(index_), "-fleet_prefix",
             fleet_prefix, "-fleet_host", name()},
            {}, {}, log_path(cat("epmdx-", name())));
    }
    bool listening(std::chrono::milliseconds timeout) {
        return eventually(
            [this] {
                try {
                    Conn::open(port_, host_address(index_));
                    return true;
                } catch (const std::runtime_error&) {
                    return false;
                }
            },
            timeout);
    }
    void start_node(const std::string& node, const std::filesystem::path& inetrc,
                    const std::string& eval) {
        nodes_.push_back(Process::spawn(
            {"/usr/bin/env",
             "ip",
             "netns",
             "exec",
             namespace_,
             erl_binary(),
             "-sname",
             cat(node, "@", name()),
             "-setcookie",
             "epmdx_fleet_cluster",
             "-noshell",
             "-start_epmd",
             "false",
             "+sbwt",
             "none",
             "+sbwtdcpu",
             "none",
             "+sbwtdio",
             "none",
             "-eval",
             eval},
            {{"ERL_EPMD_PORT", std::to_string(port_)}, {"ERL_INETRC", inetrc.string()}},
            {"ERL_FLAGS", "ERL_AFLAGS", "ERL_ZFLAGS"}, log_path(cat("erl-", node, "-", name()))));
    }
    // What NAMES lists (NAMES is answered to any peer); empty if the daemon did not answer.
    std::vector<NameEntry> names() const {
        try {
            Conn conn = Conn::open(port_, host_address(index_));
            conn.send(names_request());
            const std::string reply = conn.read_until_close(5s);
            return reply.starts_with(names_header(port_)) ? parse_names(reply)
                                                          : std::vector<NameEntry>{};
        } catch (const std::runtime_error&) {
            return {};
        }
    }
    // A raw registration from inside the namespace, held open until the Registration goes.
    std::optional<Registration> register_raw(const std::string& node, std::uint16_t node_port) {
        const InNamespace inside(namespace_);
        if (!inside.entered()) {
            return std::nullopt;
        }
        try {
            Registration registration = register_node(port_, node, node_port);
            if (registration.reply.size() == 6 && registration.reply[1] == 0) {
                return registration;
            }
        } catch (const std::runtime_error&) {
        }
        return std::nullopt;
    }

  private:
    std::size_t index_;
    std::uint16_t port_;
    std::string namespace_;
    Process daemon_;
    std::vector<Process> nodes_;
};

// `epmdx -fleet ... -hosts`' output as `.hosts.erlang`, written atomically into dir, where a
// node's net_adm:world() waits for it.
void write_hosts_erlang(const std::string& hosts_output, const std::filesystem::path& dir) {
    const std::filesystem::path partial = dir / ".hosts.erlang.partial";
    std::ofstream(partial) << hosts_output;
    std::filesystem::rename(partial, dir / ".hosts.erlang");
}

// PORT_PLEASE2 for one node, in a loop on a thread of its own that moves into a host's
// namespace, until stopped. Nothing in it can throw or fail an assertion off the main thread:
// each outcome is counted, and the destructor stops and joins it on any way out of the test.
class LookupLoop {
  public:
    LookupLoop(const std::string& name_space, std::uint16_t port, std::string node,
               std::uint16_t expected)
        : thread_([this, name_space, port, node = std::move(node), expected] {
              loop(name_space, port, node, expected);
          }) {}
    LookupLoop(const LookupLoop&) = delete;
    LookupLoop& operator=(const LookupLoop&) = delete;
    ~LookupLoop() { stop(); }

    void stop() {
        stopping_ = true;
        if (thread_.joinable()) {
            thread_.join();
        }
    }
    std::size_t done() const { return done_; }
    std::size_t failed() const { return failed_; }

  private:
    void loop(const std::string& name_space, std::uint16_t port, const std::string& node,
              std::uint16_t expected) noexcept {
        const InNamespace inside(name_space);
        if (!inside.entered()) {
            ++failed_;
            return;
        }
        while (!stopping_) {
            bool found = false;
            try {
                found = port_in(round_trip(port, port_please_request(node), 2s)) == expected;
            } catch (...) {
                found = false;
            }
            ++done_;
            failed_ += found ? 0 : 1;
            std::this_thread::sleep_for(2ms);  // a steady stream, not a flood
        }
    }

    std::atomic<bool> stopping_ = false;
    std::atomic<std::size_t> done_ = 0;
    std::atomic<std::size_t> failed_ = 0;
    std::thread thread_;  // last: the loop uses the members above
};

class FleetCluster : public ::testing::Test {
  protected:
    void SetUp() override {
        if (const std::string& why = enter_private_network(); !why.empty()) {
            GTEST_SKIP() << why;
        }
        remove_leftovers();
        network_ = std::make_unique<Network>();
        ASSERT_TRUE(network_->ready()) << "could not build the bridge and the namespaces";
        std::filesystem::create_directories(data_root / "world");
        etcd_ = std::make_unique<EtcdCluster>();
        etcd_->start_all();
        ASSERT_TRUE(etcd_->healthy(30s)) << "the etcd cluster did not form";

        port_ = free_port();
        for (std::size_t i = 0; i < host_count; ++i) {
            hosts_.push_back(std::make_unique<Host>(i, port_));
            hosts_.back()->start_daemon();
        }
        for (const auto& host : hosts_) {
            ASSERT_TRUE(host->listening(20s)) << host->name() << "'s epmdx did not start";
        }
        const std::filesystem::path inetrc = data_root / "inetrc";
        {
            std::ofstream out(inetrc);
            for (std::size_t i = 0; i < host_count; ++i) {
                out << "{host, {10,79,0," << i + 11 << "}, [\"" << host_name(i) << "\"]}.\n";
            }
            out << "{lookup, [file]}.\n";
        }
        // a@host1 waits for its .hosts.erlang, then joins the world and writes down nodes().
        const std::string world = (data_root / "world").string();
        const std::string join_world = cat(
            "Dir = \"", world,
            "\", Wait = fun W() -> case filelib:is_regular(Dir ++ \"/.hosts.erlang\") of "
            "true -> ok; false -> timer:sleep(100), W() end end, Wait(), ok = file:set_cwd(Dir), "
            "net_adm:world(), ok = file:write_file(\"nodes.partial\", "
            "[[atom_to_list(N), $\\n] || N <- lists:sort(nodes())]), "
            "ok = file:rename(\"nodes.partial\", \"nodes\"), timer:sleep(infinity).");
        for (std::size_t i = 0; i < host_count; ++i) {
            hosts_[i]->start_node("a", inetrc, i == 0 ? join_world : "timer:sleep(infinity).");
            hosts_[i]->start_node("b", inetrc, "timer:sleep(infinity).");
        }
        for (const auto& host : hosts_) {
            ASSERT_TRUE(eventually([&] { return host->names().size() == 2; }, 40s))
                << host->name() << "'s erl nodes did not register";
        }
        ASSERT_TRUE(store_matches(15s)) << "the fleet view did not fill";
    }
    void TearDown() override {
        hosts_.clear();
        etcd_.reset();
        network_.reset();
        std::error_code ignored;
        std::filesystem::remove_all(data_root, ignored);
    }

    // The nodes every running daemon holds.
    Nodes registries() const {
        Nodes nodes;
        for (const auto& host : hosts_) {
            if (host->daemon().running()) {
                for (const NameEntry& entry : host->names()) {
                    nodes.insert(node_entry(host->name(), entry.name, entry.port));
                }
            }
        }
        return nodes;
    }
    // Until etcd holds exactly the nodes of the registries; prints the difference if it never does.
    bool store_matches(std::chrono::milliseconds timeout) const {
        Nodes held;
        Nodes stored;
        const bool matched = eventually(
            [&] {
                held = registries();
                stored = stored_nodes(*etcd_).value_or(Nodes{"(etcd did not answer)"});
                return held == stored;
            },
            timeout);
        if (!matched) {
            std::ostringstream difference;
            for (const std::string& node : held) {
                difference << (stored.contains(node) ? "" : cat(" missing ", node));
            }
            for (const std::string& node : stored) {
                difference << (held.contains(node) ? "" : cat(" extra ", node));
            }
            std::cout << "the store differs from the registries:" << difference.str() << std::endl;
        }
        return matched;
    }
    std::vector<std::string> fleet_cli(const std::vector<std::string>& action) const {
        std::vector<std::string> argv = {epmdx_binary(), "-fleet", EtcdCluster::endpoints(),
                                         "-fleet_prefix", fleet_prefix};
        argv.insert(argv.end(), action.begin(), action.end());
        return argv;
    }

    std::unique_ptr<Network> network_;
    std::unique_ptr<EtcdCluster> etcd_;
    std::uint16_t port_ = 0;
    std::vector<std::unique_ptr<Host>> hosts_;
};

TEST_F(FleetCluster, NamesListsEveryNodeAndWorldConnectsThemAll) {
    // The listing, host by host in key order, is exactly what the three daemons hold.
    std::string expected;
    for (const auto& host : hosts_) {
        std::vector<NameEntry> entries = host->names();
        std::sort(entries.begin(), entries.end(),
                  [](const NameEntry& x, const NameEntry& y) { return x.name < y.name; });
        for (const NameEntry& entry : entries) {
            expected += cat(host->name(), ": name ", entry.name, " at port ",
                            std::to_string(entry.port), "\n");
        }
    }
    ASSERT_EQ(registries().size(), 6U);
    const RunResult listed = run(fleet_cli({"-names"}));
    ASSERT_EQ(listed.exit_code, 0) << listed.err;
    EXPECT_EQ(listed.out, expected);
    EXPECT_EQ(listed.err, "");

    const RunResult hosts = run(fleet_cli({"-hosts"}));
    ASSERT_EQ(hosts.exit_code, 0) << hosts.err;
    EXPECT_EQ(hosts.out, "'host1'.\n'host2'.\n'host3'.\n");
    write_hosts_erlang(hosts.out, data_root / "world");
    std::string connected;
    const std::filesystem::path result = data_root / "world" / "nodes";
    ASSERT_TRUE(eventually([&] { return std::filesystem::exists(result); }, 30s))
        << "a@host1 did not finish net_adm:world()";
    std::ifstream in(result);
    std::stringstream text;
    text << in.rdbuf();
    EXPECT_EQ(text.str(), "a@host2\na@host3\nb@host1\nb@host2\nb@host3\n");
}

TEST_F(FleetCluster, AKilledDaemonsNodesLeaveWithinTheLease) {
    const NodeWatcher watcher(*etcd_);
    const Nodes before = registries();
    hosts_[2]->daemon().kill();
    const auto killed = Clock::now();
    Nodes remaining;
    for (const std::string& node : before) {
        if (!node.starts_with("host3/")) {
            remaining.insert(node);
        }
    }
    ASSERT_EQ(remaining.size(), 4U);
    EXPECT_TRUE(eventually([&] { return stored_nodes(*etcd_) == remaining; }, 11s));  // TTL + 1 s
    const double gone = seconds_since(killed);
    report("kill -9 of host3's epmdx until its keys were gone", gone);
    EXPECT_LE(gone, 11.0);
    EXPECT_TRUE(eventually([&] { return watcher.left().size() >= 2; }, 3s));
    std::vector<std::string> left = watcher.left();
    std::sort(left.begin(), left.end());
    EXPECT_EQ(left, (std::vector<std::string>{"a@host3", "b@host3"}));
}

TEST_F(FleetCluster, PublishingGoesOnAcrossALeaderElection) {
    const std::vector<std::size_t> all = {0, 1, 2};
    const std::map<std::size_t, EtcdCluster::Status> before = etcd_->status(all);
    ASSERT_EQ(before.size(), member_count);
    const std::uint64_t old_leader = before.begin()->second.leader;
    std::size_t leader = member_count;
    for (const auto& [member, status] : before) {
        leader = status.member == old_leader ? member : leader;
    }
    ASSERT_LT(leader, member_count) << "no member is the leader";
    std::cout << "the leader is m" << leader + 1 << ", first member of host" << leader + 1
              << "'s epmdx" << std::endl;

    // 100 registrations across the hosts; the leader dies after the 30th.
    std::vector<Registration> registrations;
    Clock::time_point killed;
    for (std::size_t i = 0; i < 100; ++i) {
        if (i == 30) {
            etcd_->kill(leader);
            killed = Clock::now();
        }
        std::optional<Registration> registration = hosts_[i % host_count]->register_raw(
            numbered("r", i), static_cast<std::uint16_t>(20000 + i));
        ASSERT_TRUE(registration) << "registration " << i << " failed";
        registrations.push_back(std::move(*registration));
    }
    std::vector<std::size_t> survivors;
    for (std::size_t i = 0; i < member_count; ++i) {
        if (i != leader) {
            survivors.push_back(i);
        }
    }
    EXPECT_TRUE(eventually(
        [&] {
            const auto now = etcd_->status(survivors);
            return now.size() == survivors.size() && now.begin()->second.leader != 0 &&
                   now.begin()->second.leader != old_leader;
        },
        15s))
        << "no new leader";
    report("election after killing the leader", seconds_since(killed));
    EXPECT_TRUE(store_matches(20s));
    report("leader killed until the store held all 106 nodes", seconds_since(killed));
    EXPECT_EQ(registries().size(), 106U);
}

TEST_F(FleetCluster, EveryMemberDownCostsNoLookupAndTheStoreCatchesUp) {
    std::optional<Registration> leaving = hosts_[0]->register_raw("leaving", 21000);
    ASSERT_TRUE(leaving);
    ASSERT_TRUE(store_matches(10s));
    std::uint16_t node_port = 0;
    for (const NameEntry& entry : hosts_[0]->names()) {
        node_port = entry.name == "a" ? static_cast<std::uint16_t>(entry.port) : node_port;
    }
    ASSERT_NE(node_port, 0);

    LookupLoop lookups(hosts_[0]->name_space(), port_, "a", node_port);
    std::this_thread::sleep_for(500ms);
    for (std::size_t i = 0; i < member_count; ++i) {
        etcd_->kill(i);
    }
    const auto down = Clock::now();
    // The registries change while etcd cannot hear of it.
    leaving.reset();
    std::optional<Registration> joining = hosts_[1]->register_raw("joining", 21001);
    ASSERT_TRUE(joining);
    std::this_thread::sleep_for(3s - (Clock::now() - down));
    etcd_->start_all();
    const auto back = Clock::now();
    EXPECT_TRUE(store_matches(10s));
    report("members back until the store matched the registries", seconds_since(back));
    const Nodes now = registries();
    EXPECT_TRUE(now.contains(node_entry("host2", "joining", 21001)));
    EXPECT_FALSE(now.contains(node_entry("host1", "leaving", 21000)));
    lookups.stop();
    std::cout << "[  figure  ] PORT_PLEASE2 lookups from host1: " << lookups.done() << " done, "
              << lookups.failed() << " failed" << std::endl;
    EXPECT_GT(lookups.done(), 0U);
    EXPECT_EQ(lookups.failed(), 0U);
}

}  // namespace
}  // namespace epmdx::test
