// SPDX-License-Identifier: Apache-2.0
// Registrations that outlive the process (docs/differences.md A-RESTART), outside systemd:
// SIGHUP re-executes the daemon in place with every registration, listener and creation counter;
// a binary that cannot run leaves the old process serving; kill -9 leaves nothing stale; state
// handed over at start is checked, never trusted (crafted here the way a previous process or
// systemd would pass it: LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>

#include "harness.hpp"
#include "server/restart/handover.hpp"
#include "server/restart/handover_state.hpp"

extern char** environ;  // NOLINT(readability-identifier-naming): POSIX's name

namespace epmdx::test {
namespace {

namespace fs = std::filesystem;
using server::HandoverState;

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::size_t count_of(std::string_view text, std::string_view what) {
    std::size_t n = 0;
    for (std::size_t at = text.find(what); at != std::string_view::npos;
         at = text.find(what, at + 1)) {
        ++n;
    }
    return n;
}

// Until read() holds `what` at least `times` times; false at the timeout.
bool wait_for_log(const std::function<std::string()>& read, std::string_view what,
                  std::size_t times = 1, std::chrono::milliseconds timeout = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (count_of(read(), what) < times) {
        if (std::chrono::steady_clock::now() > deadline) {
            return false;
        }
        std::this_thread::sleep_for(10ms);
    }
    return true;
}

std::uint32_t creation_in(const std::string& alive2_x_reply) {
    return alive2_x_reply.size() == 6 ? be32(alive2_x_reply, 2) : 0;
}

std::size_t names_count(std::uint16_t port) {
    return parse_names(round_trip(port, names_request())).size();
}

// Looks registered names up, one connection each, as fast as it can, until stopped.
class LookupLoop {
  public:
    LookupLoop(std::uint16_t port, std::vector<std::string> names)
        : thread_([this, port, names = std::move(names)] {
              for (std::size_t i = 0; !stop_; ++i) {
                  const auto start = std::chrono::steady_clock::now();
                  std::string reply;
                  try {
                      reply = round_trip(port, port_please_request(names[i % names.size()]), 5s);
                  } catch (const std::exception&) {
                  }
                  const auto took = std::chrono::steady_clock::now() - start;
                  longest_ = std::max(longest_, took);
                  (port_in(reply) ? answered_ : failed_)++;
              }
          }) {}
    ~LookupLoop() { stop(); }
    void stop() {
        stop_ = true;
        if (thread_.joinable()) {
            thread_.join();
        }
    }
    std::size_t answered() const { return answered_; }
    std::size_t failed() const { return failed_; }
    std::chrono::steady_clock::duration longest() const { return longest_; }

  private:
    std::atomic<bool> stop_{false};
    std::size_t answered_ = 0;
    std::size_t failed_ = 0;
    std::chrono::steady_clock::duration longest_{};
    std::thread thread_;
};

struct Nodes {
    std::vector<Registration> held;
    std::vector<std::uint32_t> creations;
    std::vector<std::string> names;
};

Nodes register_nodes(std::uint16_t port, std::size_t count) {
    Nodes nodes;
    for (std::size_t i = 0; i < count; ++i) {
        nodes.names.push_back(numbered("node", i));
        nodes.held.push_back(
            register_node(port, nodes.names.back(), static_cast<std::uint16_t>(10000 + i)));
        nodes.creations.push_back(creation_in(nodes.held.back().reply));
    }
    return nodes;
}

// No registration's connection saw EOF or a byte.
std::size_t closed_connections(const Nodes& nodes) {
    return static_cast<std::size_t>(
        std::count_if(nodes.held.begin(), nodes.held.end(),
                      [](const Registration& r) { return !still_open(r.conn.fd(), 0ms); }));
}

std::string took_over(std::size_t registrations) {
    return cat("took over ", std::to_string(registrations), " registrations");
}

TEST(EpmdxRestart, SighupKeepsRegistrationsListenersAndCreations) {
    Daemon d = Daemon::start(DaemonKind::epmdx);
    const std::uint16_t port = d.port();
    Nodes nodes = register_nodes(port, 1000);
    LookupLoop lookups(port, nodes.names);
    std::this_thread::sleep_for(100ms);
    const pid_t pid = d.process().pid();

    for (std::size_t round = 1; round <= 3; ++round) {
        d.process().signal(SIGHUP);
        ASSERT_TRUE(wait_for_log([&d] { return d.log(); }, took_over(1000), round)) << d.log();
        std::this_thread::sleep_for(100ms);
    }
    lookups.stop();
    EXPECT_EQ(lookups.failed(), 0U);
    EXPECT_GT(lookups.answered(), 0U);
    EXPECT_EQ(d.process().pid(), pid);
    EXPECT_TRUE(d.process().running());
    EXPECT_EQ(names_count(port), 1000U);
    EXPECT_EQ(closed_connections(nodes), 0U);
    EXPECT_EQ(count_of(d.log(), "re-executing"), 3U) << d.log();

    // Still held exactly as before: a node that leaves is removed, and when it comes back it
    // gets the creation after the one it had before the restarts.
    nodes.held[7].conn.close();
    ASSERT_TRUE(wait_for_names(
        port, [](const std::vector<NameEntry>& names) { return names.size() == 999; }));
    EXPECT_EQ(port_in(round_trip(port, port_please_request("node7"))), std::nullopt);
    const Registration back = register_node(port, "node7", 10007);
    EXPECT_EQ(creation_in(back.reply), nodes.creations[7] + 1);
    // A name still held is still refused.
    const Registration clash = register_node(port, "node8", 12345);
    EXPECT_EQ(clash.reply, alive2_x_error);
}

TEST(EpmdxRestart, OldListSurvivesASighup) {
    Daemon d = Daemon::start(DaemonKind::epmdx);
    Nodes nodes = register_nodes(d.port(), 2);
    nodes.held[0].conn.close();  // node0 goes to the old/unused list with its counter
    ASSERT_TRUE(wait_for_names(
        d.port(), [](const std::vector<NameEntry>& names) { return names.size() == 1; }));
    d.process().signal(SIGHUP);
    ASSERT_TRUE(wait_for_log([&d] { return d.log(); }, "and 1 old/unused entries")) << d.log();
    const Registration back = register_node(d.port(), "node0", 10000);
    EXPECT_EQ(creation_in(back.reply), nodes.creations[0] + 1);
    const std::string dump = round_trip(d.port(), dump_request());
    EXPECT_NE(dump.find("active name     <node0>"), std::string::npos) << dump;
}

TEST(EpmdxRestart, TenThousandRegistrationsServeAgainQuickly) {
    Daemon d = Daemon::start(DaemonKind::epmdx);
    Nodes nodes = register_nodes(d.port(), 10000);
    LookupLoop lookups(d.port(), nodes.names);
    std::this_thread::sleep_for(100ms);
    d.process().signal(SIGHUP);
    ASSERT_TRUE(wait_for_log([&d] { return d.log(); }, took_over(10000))) << d.log();
    std::this_thread::sleep_for(200ms);
    lookups.stop();
    const auto longest =
        std::chrono::duration_cast<std::chrono::microseconds>(lookups.longest()).count();
    // The figure the documentation quotes: the longest any lookup waited across the re-exec.
    std::cout << "longest lookup across a SIGHUP with 10,000 registrations: " << longest / 1000.0
              << " ms (" << lookups.answered() << " lookups)\n";
    EXPECT_EQ(lookups.failed(), 0U);
    // Loose on purpose: the tests share the machine, and run under AddressSanitizer too.
    EXPECT_LT(longest, 4'000'000);
    EXPECT_EQ(closed_connections(nodes), 0U);
    EXPECT_EQ(names_count(d.port()), 10000U);
}

// One name per registration in LISTEN_FDNAMES would pass the kernel's 128 KiB limit on one
// environment string at about 10,080 of them: the registrations travel in a bundle instead.
TEST(EpmdxRestart, MoreRegistrationsThanLISTEN_FDNAMESCouldNameSurviveASighup) {
    constexpr std::size_t count = 11'500;
    rlimit limit{};
    ::getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
    if (limit.rlim_cur < count + 1000) {
        GTEST_SKIP() << "the open file limit (" << limit.rlim_cur << ") cannot hold " << count;
    }
    Daemon d = Daemon::start(DaemonKind::epmdx);
    Nodes nodes = register_nodes(d.port(), count);
    d.process().signal(SIGHUP);
    ASSERT_TRUE(wait_for_log([&d] { return d.log(); }, took_over(count), 1, 30s)) << d.log();
    EXPECT_EQ(closed_connections(nodes), 0U);
    EXPECT_EQ(names_count(d.port()), count);
}

// The restored registrations' waits start in chunks after serving has resumed (A-RESTART): the
// oldest last. Ending some of those at once is noticed all the same, and their names can be
// registered again at once, whether their waits have started yet or not.
TEST(EpmdxRestart, RegistrationsEndingRightAfterATakeOverAreNoticed) {
    Daemon d = Daemon::start(DaemonKind::epmdx);
    Nodes nodes = register_nodes(d.port(), 3000);
    d.process().signal(SIGHUP);
    ASSERT_TRUE(wait_for_log([&d] { return d.log(); }, took_over(3000))) << d.log();
    nodes.held[0].conn.close();
    nodes.held[1].conn.close();
    const Registration again = register_node(d.port(), nodes.names[0], 20000);
    EXPECT_NE(creation_in(again.reply), 0U) << d.log();
    EXPECT_TRUE(wait_for_names(d.port(), [&nodes](const std::vector<NameEntry>& entries) {
        return entries.size() == 2999 &&
               std::none_of(entries.begin(), entries.end(), [&nodes](const NameEntry& entry) {
                   return entry.name == nodes.names[1];
               });
    }));
}

// Until its wait starts, a restored registration's socket is not with the event loop yet: a STOP
// for it then (the oldest is watched last) must still close its connection and unlist it.
TEST(EpmdxRestart, StoppingARestoredRegistrationBeforeItsWaitStartsClosesIt) {
    Daemon d = Daemon::start(DaemonKind::epmdx, {"-relaxed_command_check"});
    Nodes nodes = register_nodes(d.port(), 10000);
    d.process().signal(SIGHUP);
    // Sent while the daemon re-executes: it waits in the listener's backlog, and the new image
    // takes it between its first chunks of restored waits.
    std::this_thread::sleep_for(5ms);
    EXPECT_EQ(round_trip(d.port(), stop_request(nodes.names[0]), 10s), "STOPPED") << d.log();
    EXPECT_FALSE(still_open(nodes.held[0].conn.fd(), 2000ms));
    EXPECT_TRUE(wait_for_log([&d] { return d.log(); }, took_over(10000))) << d.log();
    EXPECT_EQ(names_count(d.port()), 9999U);
}

TEST(EpmdxRestart, KillNineLeavesNothingStale) {
    Daemon d = Daemon::start(DaemonKind::epmdx);
    const std::uint16_t port = d.port();
    Nodes nodes = register_nodes(port, 3);
    d.process().kill();
    for (Registration& node : nodes.held) {
        EXPECT_TRUE(node.conn.closed_within(2s));
    }
    Daemon again = Daemon::start_on(port, DaemonKind::epmdx);
    EXPECT_EQ(names_count(port), 0U);
    EXPECT_EQ(port_in(round_trip(port, port_please_request("node0"))), std::nullopt);
    EXPECT_EQ(again.log().find("took over"), std::string::npos) << again.log();
}

// ---- A binary that cannot replace the process -------------------------------------------------

// epmdx copied to a directory of its own, started from there so the file can be replaced.
class CopiedDaemon {
  public:
    CopiedDaemon() : dir_(log_path("bin").replace_extension("")), log_(log_path("copied")) {
        fs::create_directories(dir_);
        fs::copy_file(epmdx_binary(), binary());
        port_ = free_port();
        process_ = Process::spawn(
            {binary().string(), "-port", std::to_string(port_), "-address", "127.0.0.1"}, {}, {},
            log_);
        if (!wait_for_port(port_, process_, 10s)) {
            throw std::runtime_error("the copied daemon did not start");
        }
    }
    fs::path binary() const { return dir_ / "epmdx"; }
    std::uint16_t port() const { return port_; }
    Process& process() { return process_; }
    std::string log() const { return read_file(log_); }
    // Puts `bytes` at the binary's path (as an upgrade would: a new file renamed over it).
    void replace_binary(const std::string& bytes, fs::perms permissions) {
        const fs::path next = dir_ / "epmdx.new";
        std::ofstream(next, std::ios::binary) << bytes;
        fs::permissions(next, permissions);
        fs::rename(next, binary());
    }

  private:
    fs::path dir_;
    fs::path log_;
    std::uint16_t port_ = 0;
    Process process_;
};

const fs::perms executable = fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                             fs::perms::others_read | fs::perms::others_exec;

// SIGHUP with the binary made unusable by `spoil`: the old process logs why and serves on, and
// once the binary is back, a SIGHUP works.
void expect_refused_reexec(const std::function<void(CopiedDaemon&)>& spoil,
                           std::string_view reason) {
    CopiedDaemon d;
    Nodes nodes = register_nodes(d.port(), 5);
    const std::string original = read_file(epmdx_binary());
    spoil(d);
    LookupLoop lookups(d.port(), nodes.names);
    d.process().signal(SIGHUP);
    ASSERT_TRUE(wait_for_log([&d] { return d.log(); }, "still serving")) << d.log();
    const std::string log = d.log();
    EXPECT_NE(log.find(cat("cannot re-execute ", d.binary().string())), std::string::npos) << log;
    EXPECT_NE(log.find(reason), std::string::npos) << log;
    std::this_thread::sleep_for(100ms);
    EXPECT_TRUE(d.process().running());
    EXPECT_EQ(names_count(d.port()), 5U);
    EXPECT_EQ(closed_connections(nodes), 0U);
    const Registration late = register_node(d.port(), "late", 4000);
    EXPECT_NE(creation_in(late.reply), 0U);

    d.replace_binary(original, executable);
    d.process().signal(SIGHUP);
    ASSERT_TRUE(wait_for_log([&d] { return d.log(); }, took_over(6))) << d.log();
    lookups.stop();
    EXPECT_EQ(lookups.failed(), 0U);
    EXPECT_EQ(names_count(d.port()), 6U);
    EXPECT_EQ(closed_connections(nodes), 0U);
}

TEST(EpmdxRestart, SighupWithTheBinaryGoneKeepsServing) {
    expect_refused_reexec([](CopiedDaemon& d) { fs::remove(d.binary()); },
                          "No such file or directory");
}

TEST(EpmdxRestart, SighupWithTheBinaryNotExecutableKeepsServing) {
    expect_refused_reexec(
        [](CopiedDaemon& d) { d.replace_binary(read_file(epmdx_binary()), fs::perms::owner_read); },
        "not executable");
}

TEST(EpmdxRestart, SighupWithAnotherArchitectureKeepsServing) {
    expect_refused_reexec(
        [](CopiedDaemon& d) {
            std::string other = read_file(epmdx_binary());
            other[18] = 0xB7;  // e_machine: AArch64
            other[19] = 0;
            d.replace_binary(other, executable);
        },
        "built for another architecture");
}

TEST(EpmdxRestart, SighupWithA32BitBinaryKeepsServing) {
    expect_refused_reexec(
        [](CopiedDaemon& d) {
            std::string other = read_file(epmdx_binary());
            other[4] = 1;  // EI_CLASS: ELFCLASS32
            d.replace_binary(other, executable);
        },
        "a 32-bit binary");
}

TEST(EpmdxRestart, SighupWithANonElfFileKeepsServing) {
    expect_refused_reexec(
        [](CopiedDaemon& d) { d.replace_binary("#!/bin/sh\nexit 0\n", executable); },
        "not an ELF binary");
}

TEST(EpmdxRestart, SighupWhenExecveItselfFailsKeepsServing) {
    // The header passes every check; the kernel refuses the rest. Every descriptor moved for
    // the new image must be put back.
    expect_refused_reexec(
        [](CopiedDaemon& d) {
            d.replace_binary(read_file(epmdx_binary()).substr(0, 64), executable);
        },
        "Exec format error");
}

// ---- State handed over at start: checked, never trusted -----------------------------------------

// A connected TCP pair on loopback: the daemon gets `server`, the test keeps `client` as the
// node would.
struct Pair {
    int server = -1;
    int client = -1;
};

Pair connected_pair() {
    const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (::bind(listener, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        ::listen(listener, 1) != 0 ||
        ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
        throw std::runtime_error("cannot listen on loopback");
    }
    Pair pair;
    pair.client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::connect(pair.client, reinterpret_cast<sockaddr*>(&address), length) != 0) {
        throw std::runtime_error("cannot connect on loopback");
    }
    pair.server = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    ::close(listener);
    return pair;
}

std::uint64_t inode_of(int fd) {
    struct stat status {};
    ::fstat(fd, &status);
    return status.st_ino;
}

HandoverState::Registration entry(std::string name, std::uint64_t inode,
                                  std::uint32_t counter = 1000) {
    HandoverState::Registration registration;
    registration.node.name = std::move(name);
    registration.node.port = 5000;
    registration.counter = counter;
    registration.socket_inode = inode;
    return registration;
}

int sealed(const std::string& blob) {
    std::string error;
    const int fd = server::seal_state(blob, error);
    if (fd < 0) {
        throw std::runtime_error(error);
    }
    return fd;
}

int unsealed(const std::string& blob) {
    const int fd = ::memfd_create("not-sealed", MFD_CLOEXEC);
    if (::write(fd, blob.data(), blob.size()) != static_cast<ssize_t>(blob.size())) {
        throw std::runtime_error("cannot write the memfd");
    }
    return fd;
}

// epmdx started the way systemd or a previous process starts it: the descriptors at 3, 4, ...,
// named in LISTEN_FDNAMES, LISTEN_PID set to the child's own pid.
class CraftedStart {
  public:
    // port: where the daemon is expected to serve; 0 picks a free one and passes it as -port.
    CraftedStart(const std::vector<server::NamedFd>& fds, std::vector<std::string> extra_args = {},
                 const Env& env = {}, std::uint16_t port = 0)
        : log_(log_path("crafted")) {
        port_ = port != 0 ? port : free_port();
        std::vector<std::string> args = {epmdx_binary(), "-port", std::to_string(port_), "-address",
                                         "127.0.0.1"};
        args.insert(args.end(), extra_args.begin(), extra_args.end());
        std::vector<std::string> environment;
        for (char** variable = environ; *variable != nullptr; ++variable) {
            const std::string_view text(*variable);
            if (!text.starts_with("LISTEN_") && !text.starts_with("ERL_EPMD_") &&
                !text.starts_with("NOTIFY_SOCKET=")) {
                environment.emplace_back(text);
            }
        }
        std::string names;
        for (const server::NamedFd& fd : fds) {
            names += names.empty() ? "" : ":";
            names += fd.name;
        }
        for (const auto& [name, value] : env) {
            environment.push_back(name);
            environment.back().append("=").append(value);
        }
        environment.push_back("LISTEN_FDS=" + std::to_string(fds.size()));
        environment.push_back("LISTEN_FDNAMES=" + names);
        environment.emplace_back("LISTEN_PID=0000000000");  // the child writes its pid here
        std::vector<char*> argv;
        argv.reserve(args.size() + 1);
        for (std::string& arg : args) {
            argv.push_back(arg.data());
        }
        argv.push_back(nullptr);
        std::vector<char*> envp;
        envp.reserve(environment.size() + 1);
        for (std::string& variable : environment) {
            envp.push_back(variable.data());
        }
        envp.push_back(nullptr);
        char* pid_digits = environment.back().data() + std::strlen("LISTEN_PID=");
        const int output = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        const int n = static_cast<int>(fds.size());

        pid_ = ::fork();
        if (pid_ == 0) {
            // Only async-signal-safe calls from here on.
            ::dup2(output, 1);
            ::dup2(output, 2);
            // All copied out of the way first: a descriptor may sit where another goes.
            const int above = 1000;
            for (int i = 0; i < n; ++i) {
                ::dup2(fds[static_cast<std::size_t>(i)].fd, above + i);
            }
            for (int i = 0; i < n; ++i) {
                ::dup2(above + i, 3 + i);
            }
            ::close_range(static_cast<unsigned>(3 + n), ~0U, 0);
            long pid = ::getpid();
            for (int digit = 9; digit >= 0; --digit, pid /= 10) {
                pid_digits[digit] = static_cast<char>('0' + pid % 10);
            }
            ::execve(argv[0], argv.data(), envp.data());
            ::_exit(127);
        }
        ::close(output);
        if (!wait_for_port(port_, 10s)) {
            throw std::runtime_error("the crafted start did not serve: " + log());
        }
    }
    CraftedStart(const CraftedStart&) = delete;
    CraftedStart& operator=(const CraftedStart&) = delete;
    ~CraftedStart() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    pid_t pid() const { return pid_; }
    // The exit status once it has exited by itself (reaped), nullopt while it runs.
    std::optional<int> exit_status() {
        int status = 0;
        if (pid_ <= 0 || ::waitpid(pid_, &status, WNOHANG) != pid_) {
            return std::nullopt;
        }
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::uint16_t port() const { return port_; }
    std::string log() const { return read_file(log_); }
    bool running() const { return ::waitpid(pid_, nullptr, WNOHANG) == 0; }

  private:
    fs::path log_;
    std::uint16_t port_ = 0;
    pid_t pid_ = -1;
};

// Three held registrations and the state that names them; each case spoils something.
struct Handover {
    Handover() {
        for (const char* name : {"alpha", "beta", "gamma"}) {
            pairs.push_back(connected_pair());
            state.registrations.push_back(entry(name, inode_of(pairs.back().server)));
        }
        state.old.push_back({"retired", 5999, 12, 700});
    }
    ~Handover() {
        for (const Pair& pair : pairs) {
            ::close(pair.server);
            ::close(pair.client);
        }
        for (const int fd : bundles_) {
            ::close(fd);
        }
    }
    // The registration sockets (the server ends of the pairs), in order.
    std::vector<int> sockets() const {
        std::vector<int> fds;
        for (const Pair& pair : pairs) {
            fds.push_back(pair.server);
        }
        return fds;
    }
    // `fds` queued in one bundle, as a previous process passes them (closed with the Handover).
    server::NamedFd bundle(const std::vector<int>& fds) {
        const server::Bundles bundles = server::bundle_registrations(fds);
        if (bundles.fds.size() != 1 || bundles.sent != fds.size()) {
            throw std::runtime_error("cannot bundle: " + bundles.error);
        }
        bundles_.push_back(bundles.fds[0]);
        return {bundles.fds[0], "epmdx-registrations"};
    }
    std::vector<server::NamedFd> registrations() { return {bundle(sockets())}; }
    // The bundle of `fds` (every registration socket if none are given), then the state.
    std::vector<server::NamedFd> with_state(int state_fd, const std::vector<int>& fds = {}) {
        return {bundle(fds.empty() ? sockets() : fds), {state_fd, "epmdx-state"}};
    }
    std::vector<std::string> listed(std::uint16_t port) const {
        std::vector<std::string> names = names_in(round_trip(port, names_request()));
        std::sort(names.begin(), names.end());
        return names;
    }
    bool client_open(std::size_t i) const { return still_open(pairs[i].client, 0ms); }
    bool client_closed(std::size_t i) const {
        pollfd p{pairs[i].client, POLLIN, 0};
        return ::poll(&p, 1, 2000) == 1;
    }

    HandoverState state;
    std::vector<Pair> pairs;

  private:
    std::vector<int> bundles_;
};

TEST(EpmdxHandoverState, AGoodStateIsTakenOver) {
    Handover h;
    const int state_fd = sealed(server::encode_handover_state(h.state));
    CraftedStart d(h.with_state(state_fd));
    ::close(state_fd);
    ASSERT_TRUE(wait_for_log([&d] { return d.log(); }, took_over(3))) << d.log();
    EXPECT_EQ(h.listed(d.port()), (std::vector<std::string>{"alpha", "beta", "gamma"}));
    EXPECT_EQ(port_in(round_trip(d.port(), port_please_request("beta"))), 5000);
    // The test's copies are closed: the daemon's are what hold the registrations now.
    for (const Pair& pair : h.pairs) {
        ::close(pair.server);
    }
    std::this_thread::sleep_for(100ms);
    for (std::size_t i = 0; i < 3; ++i) {
        EXPECT_TRUE(h.client_open(i)) << i;
    }
    const Registration retired = register_node(d.port(), "retired", 5999);
    EXPECT_EQ(creation_in(retired.reply), 701U);
    // A node that leaves is unregistered as usual.
    ::shutdown(h.pairs[1].client, SHUT_RDWR);
    ASSERT_TRUE(wait_for_names(d.port(), [](const std::vector<NameEntry>& names) {
        return names.size() == 3 &&
               std::none_of(names.begin(), names.end(),
                            [](const NameEntry& e) { return e.name == "beta"; });
    }));
    for (const Pair& pair : h.pairs) {
        ::close(pair.client);
    }
    h.pairs.clear();
}

// Starts with `fds`, then checks that the daemon serves, logged `line`, and kept `kept`.
void expect_clean_start(Handover& h, const std::vector<server::NamedFd>& fds, std::string_view line,
                        const std::vector<std::string>& kept,
                        const std::vector<std::string>& extra_args = {}) {
    CraftedStart d(fds, extra_args);
    ASSERT_TRUE(wait_for_log([&d] { return d.log(); }, "took over")) << d.log();
    const std::string log = d.log();
    EXPECT_NE(log.find(line), std::string::npos) << log;
    std::vector<std::string> listed = h.listed(d.port());
    listed.erase(std::remove(listed.begin(), listed.end(), "static"), listed.end());
    EXPECT_EQ(listed, kept) << log;
    EXPECT_TRUE(d.running());
    // It serves: a new node registers.
    EXPECT_NE(creation_in(register_node(d.port(), "newcomer", 6000).reply), 0U);
}

void expect_state_dropped(const std::function<int(const std::string&)>& make_fd,
                          const std::string& blob, std::string_view why) {
    Handover h;
    const int state_fd = make_fd(blob);
    expect_clean_start(h, h.with_state(state_fd), cat("handover: dropped the state: ", why), {});
    ::close(state_fd);
    for (const Pair& pair : h.pairs) {
        ::close(pair.server);
    }
    for (std::size_t i = 0; i < 3; ++i) {
        EXPECT_TRUE(h.client_closed(i)) << i;  // nobody holds it: the node re-registers
    }
}

TEST(EpmdxHandoverState, AnotherVersionIsDropped) {
    Handover h;
    std::string blob = server::encode_handover_state(h.state);
    blob[11] = 9;
    expect_state_dropped(sealed, blob, "state version 9");
}

TEST(EpmdxHandoverState, ABadChecksumIsDropped) {
    Handover h;
    std::string blob = server::encode_handover_state(h.state);
    blob.back() ^= 0x40;
    expect_state_dropped(sealed, blob, "bad checksum");
}

TEST(EpmdxHandoverState, ATruncatedStateIsDropped) {
    Handover h;
    std::string blob = server::encode_handover_state(h.state);
    blob.resize(blob.size() - 5);
    expect_state_dropped(sealed, blob, "truncated");
}

TEST(EpmdxHandoverState, AnUnsealedMemfdIsDropped) {
    Handover h;
    expect_state_dropped(unsealed, server::encode_handover_state(h.state),
                         "the memfd is not sealed");
}

TEST(EpmdxHandoverState, AFileInsteadOfAMemfdIsDropped) {
    Handover h;
    const fs::path path = log_path("state");
    std::ofstream(path, std::ios::binary) << server::encode_handover_state(h.state);
    expect_state_dropped(
        [&path](const std::string&) { return ::open(path.c_str(), O_RDONLY | O_CLOEXEC); }, "",
        "not a memfd");
}

TEST(EpmdxHandoverState, RegistrationsWithoutStateAreClosed) {
    Handover h;
    expect_clean_start(h, h.registrations(), "handover: no state came with the registrations", {});
    for (const Pair& pair : h.pairs) {
        ::close(pair.server);
    }
    for (std::size_t i = 0; i < 3; ++i) {
        EXPECT_TRUE(h.client_closed(i)) << i;
    }
}

TEST(EpmdxHandoverState, RegistrationsInABundleAreTakenOver) {
    Handover h;
    const int state_fd = sealed(server::encode_handover_state(h.state));
    const std::vector<server::NamedFd> fds = h.with_state(state_fd);
    for (const Pair& pair : h.pairs) {
        ::close(pair.server);  // the bundle holds them now
    }
    CraftedStart d(fds);
    ::close(state_fd);
    ASSERT_TRUE(wait_for_log([&d] { return d.log(); }, took_over(3))) << d.log();
    EXPECT_EQ(h.listed(d.port()), (std::vector<std::string>{"alpha", "beta", "gamma"}));
    // The bundle held the only other copies: the daemon's are what hold the nodes now.
    for (std::size_t i = 0; i < 3; ++i) {
        EXPECT_TRUE(h.client_open(i)) << i;
    }
}

TEST(EpmdxHandoverState, AUdpSocketInABundleIsDropped) {
    Handover h;
    const int udp = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    h.state.registrations.push_back(entry("udp", inode_of(udp)));
    const int state_fd = sealed(server::encode_handover_state(h.state));
    std::vector<int> fds = {udp};
    for (const Pair& pair : h.pairs) {
        fds.push_back(pair.server);
    }
    const server::Bundles bundles = server::bundle_registrations(fds);
    ASSERT_EQ(bundles.fds.size(), 1U);
    expect_clean_start(h, {{bundles.fds[0], "epmdx-registrations"}, {state_fd, "epmdx-state"}},
                       "not a TCP socket", {"alpha", "beta", "gamma"});
    ::close(bundles.fds[0]);
    ::close(state_fd);
    ::close(udp);
}

TEST(EpmdxHandoverState, ABundleThatIsNotAUnixSocketIsDropped) {
    Handover h;
    const int udp = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    const int state_fd = sealed(server::encode_handover_state(h.state));
    std::vector<server::NamedFd> fds = h.with_state(state_fd);
    fds.push_back({udp, "epmdx-registrations"});
    expect_clean_start(h, fds, "not a Unix datagram socket", {"alpha", "beta", "gamma"});
    ::close(state_fd);
    ::close(udp);
}

TEST(EpmdxHandoverState, AnEmptyBundleDropsNothingElse) {
    Handover h;
    int pair[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, pair), 0);
    ::close(pair[0]);
    const int state_fd = sealed(server::encode_handover_state(h.state));
    std::vector<server::NamedFd> fds = h.with_state(state_fd);
    fds.push_back({pair[1], "epmdx-registrations"});
    expect_clean_start(h, fds, took_over(3), {"alpha", "beta", "gamma"});
    ::close(state_fd);
    ::close(pair[1]);
}

TEST(EpmdxHandoverState, AListeningSocketInABundleIsDropped) {
    Handover h;
    const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    ASSERT_EQ(::listen(listener, 1), 0);
    h.state.registrations.push_back(entry("listener", inode_of(listener)));
    const int state_fd = sealed(server::encode_handover_state(h.state));
    std::vector<int> sockets = h.sockets();
    sockets.push_back(listener);
    expect_clean_start(h, h.with_state(state_fd, sockets), "a listening socket",
                       {"alpha", "beta", "gamma"});
    ::close(state_fd);
    ::close(listener);
}

TEST(EpmdxHandoverState, APeerThatClosedIsDropped) {
    Handover h;
    ::close(h.pairs[1].client);
    h.pairs[1].client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);  // closed by ~Handover
    std::this_thread::sleep_for(50ms);
    const int state_fd = sealed(server::encode_handover_state(h.state));
    expect_clean_start(h, h.with_state(state_fd), "no longer established", {"alpha", "gamma"});
    ::close(state_fd);
}

TEST(EpmdxHandoverState, AnExtraDescriptorIsClosed) {
    Handover h;
    const Pair extra = connected_pair();
    const int state_fd = sealed(server::encode_handover_state(h.state));
    std::vector<int> sockets = h.sockets();
    sockets.push_back(extra.server);
    expect_clean_start(h, h.with_state(state_fd, sockets),
                       "no registration in the state names its socket", {"alpha", "beta", "gamma"});
    ::close(extra.server);
    pollfd p{extra.client, POLLIN, 0};
    EXPECT_EQ(::poll(&p, 1, 2000), 1);  // the daemon closed its copy: EOF
    ::close(extra.client);
    ::close(state_fd);
}

TEST(EpmdxHandoverState, AMissingDescriptorDropsItsEntry) {
    Handover h;
    const int state_fd = sealed(server::encode_handover_state(h.state));
    std::vector<int> sockets = h.sockets();
    sockets.pop_back();  // gamma's socket
    expect_clean_start(h, h.with_state(state_fd, sockets),
                       "registration gamma: no descriptor was handed over", {"alpha", "beta"});
    ::close(state_fd);
}

TEST(EpmdxHandoverState, DuplicateNamesKeepTheFirst) {
    Handover h;
    h.state.registrations[2].node.name = "alpha";
    const int state_fd = sealed(server::encode_handover_state(h.state));
    expect_clean_start(h, h.with_state(state_fd), "registration alpha: registered twice",
                       {"alpha", "beta"});
    ::close(state_fd);
}

TEST(EpmdxHandoverState, AStaticNameWins) {
    Handover h;
    const fs::path file = log_path("static");
    std::ofstream(file) << "beta 7000\nstatic 7001\n";
    const int state_fd = sealed(server::encode_handover_state(h.state));
    expect_clean_start(h, h.with_state(state_fd), "registration beta: the name is a static entry",
                       {"alpha", "beta", "gamma"}, {"-static", file.string()});
    ::close(state_fd);
}

TEST(EpmdxHandoverState, TwoStatesUseTheFirst) {
    Handover h;
    const int state_fd = sealed(server::encode_handover_state(h.state));
    const int second = sealed(server::encode_handover_state(HandoverState{}));
    std::vector<server::NamedFd> fds = h.with_state(state_fd);
    fds.push_back({second, "epmdx-state"});
    expect_clean_start(h, fds, "only one is read", {"alpha", "beta", "gamma"});
    ::close(state_fd);
    ::close(second);
}

// ---- systemd's descriptor store, played by the test -------------------------------------------
// Only where epmdx has -systemd (libsystemd; see CMakeLists.txt).
#ifdef EPMDX_HAVE_SYSTEMD

// An abstract datagram socket standing in for systemd's notification socket: it keeps what
// FDSTORE=1 messages carry and answers BARRIER=1 as systemd does (by closing its descriptor).
class FakeSystemd {
  public:
    struct Message {
        std::string text;
        std::vector<int> fds;
    };

    FakeSystemd()
        : name_(cat("epmdx-test-notify-", std::to_string(::getpid()), "-",
                    std::to_string(next_number()))) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::memcpy(address.sun_path + 1, name_.data(), name_.size());
        const auto length =
            static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name_.size());
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&address), length) != 0) {
            throw std::runtime_error("cannot bind the notification socket");
        }
    }
    FakeSystemd(const FakeSystemd&) = delete;
    FakeSystemd& operator=(const FakeSystemd&) = delete;
    ~FakeSystemd() {
        for (const Message& message : messages) {
            for (const int fd : message.fds) {
                ::close(fd);
            }
        }
        ::close(fd_);
    }
    std::string address() const { return "@" + name_; }

    // Receives until done() holds or the timeout passes.
    bool receive_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (!done()) {
            if (std::chrono::steady_clock::now() > deadline) {
                return false;
            }
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 20) == 1) {
                receive_one();
            }
        }
        return true;
    }
    bool received(std::string_view text) const {
        return std::any_of(messages.begin(), messages.end(), [text](const Message& m) {
            return m.text.find(text) != std::string::npos;
        });
    }
    // Every descriptor stored under FDNAME=name, in order, and the sizes of the messages.
    std::vector<int> stored(std::string_view name,
                            std::vector<std::size_t>* batches = nullptr) const {
        std::vector<int> fds;
        for (const Message& m : messages) {
            if (m.text.find("FDSTORE=1") != std::string::npos &&
                m.text.find(cat("FDNAME=", name)) != std::string::npos) {
                fds.insert(fds.end(), m.fds.begin(), m.fds.end());
                if (batches) {
                    batches->push_back(m.fds.size());
                }
            }
        }
        return fds;
    }

    std::vector<Message> messages;

  private:
    void receive_one() {
        char text[4096];
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 256)];
        iovec part{text, sizeof text};
        msghdr header{};
        header.msg_iov = &part;
        header.msg_iovlen = 1;
        header.msg_control = control;
        header.msg_controllen = sizeof control;
        const ssize_t n = ::recvmsg(fd_, &header, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0) {
            return;
        }
        Message message{std::string(text, static_cast<std::size_t>(n)), {}};
        for (cmsghdr* c = CMSG_FIRSTHDR(&header); c != nullptr; c = CMSG_NXTHDR(&header, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                const int* fds = reinterpret_cast<const int*>(CMSG_DATA(c));
                message.fds.assign(fds, fds + count);
            }
        }
        if (message.text.find("BARRIER=1") != std::string::npos) {
            for (const int fd : message.fds) {
                ::close(fd);  // what the barrier waits for
            }
            message.fds.clear();
        }
        messages.push_back(std::move(message));
    }

    static int next_number() {
        static int count = 0;
        return ++count;
    }
    std::string name_;
    int fd_ = -1;
};

TEST(EpmdxSystemdStore, SigtermHandsRegistrationsToTheStoreAndTheNextStartTakesThemBack) {
    // The socket unit's listener: the test holds it, as systemd does, across both processes.
    const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), length), 0);
    ASSERT_EQ(::listen(listener, 128), 0);
    ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length), 0);
    const std::uint16_t port = ntohs(address.sin_port);

    FakeSystemd systemd;
    const Env env = {{"NOTIFY_SOCKET", systemd.address()}};
    auto first =
        std::make_unique<CraftedStart>(std::vector<server::NamedFd>{{listener, "epmdx.socket"}},
                                       std::vector<std::string>{"-systemd"}, env, port);
    ASSERT_TRUE(systemd.receive_until([&] { return systemd.received("READY=1"); }, 10s));
    Nodes nodes = register_nodes(port, 300);  // more than one message of 253

    ::kill(first->pid(), SIGTERM);
    std::optional<int> status;
    ASSERT_TRUE(
        systemd.receive_until([&] { return (status = first->exit_status()).has_value(); }, 10s))
        << first->log();
    EXPECT_EQ(status, 0);
    EXPECT_NE(first->log().find("handed 300 registrations over to systemd's descriptor store"),
              std::string::npos)
        << first->log();
    // One bundle holds them all, stored with FDPOLL=0; no descriptor of its own per registration.
    EXPECT_TRUE(systemd.stored("registration").empty());
    const std::vector<int> bundles = systemd.stored("epmdx-registrations");
    ASSERT_EQ(bundles.size(), 1U);
    EXPECT_TRUE(systemd.received("FDSTORE=1\nFDPOLL=0\nFDNAME=epmdx-registrations"));
    const std::vector<int> state = systemd.stored("epmdx-state");
    ASSERT_EQ(state.size(), 1U);
    // systemd holds every connection now: the nodes saw nothing.
    EXPECT_EQ(closed_connections(nodes), 0U);

    // The next start gets the listener, the bundle and the state, as systemd passes them.
    std::vector<server::NamedFd> passed = {
        {listener, "epmdx.socket"}, {bundles[0], "epmdx-registrations"}, {state[0], "epmdx-state"}};
    systemd.messages.clear();  // (their descriptors go with the store below)
    CraftedStart second(passed, {"-systemd"}, env, port);
    ASSERT_TRUE(systemd.receive_until([&] { return systemd.received("READY=1"); }, 10s))
        << second.log();
    EXPECT_NE(second.log().find(took_over(300)), std::string::npos) << second.log();
    EXPECT_TRUE(systemd.received("FDSTOREREMOVE=1\nFDNAME=epmdx-registrations"));
    EXPECT_TRUE(systemd.received("FDSTOREREMOVE=1\nFDNAME=epmdx-state"));
    // systemd lets go of its copies once told to.
    for (const server::NamedFd& fd : passed) {
        ::close(fd.fd);
    }
    EXPECT_EQ(names_count(port), 300U);
    EXPECT_EQ(port_in(round_trip(port, port_please_request("node299"))), 10299);
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(closed_connections(nodes), 0U);
    nodes.held[3].conn.close();
    EXPECT_TRUE(wait_for_names(
        port, [](const std::vector<NameEntry>& names) { return names.size() == 299; }));
}

// Whether, before the timeout, the -metrics endpoint on metrics_port shows exactly `waiting`
// accepted connections that have not registered.
bool wait_for_waiting_connections(std::uint16_t metrics_port, int waiting) {
    const std::string line =
        cat("\nepmdx_connections{state=\"waiting\"} ", std::to_string(waiting), "\n");
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (
        round_trip(metrics_port, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n").find(line) ==
        std::string::npos) {
        if (std::chrono::steady_clock::now() > deadline) {
            return false;
        }
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

// A request accepted before SIGTERM is answered before the hand-over, as across a SIGHUP.
TEST(EpmdxSystemdStore, SigtermAnswersARequestAlreadyAccepted) {
    const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), length), 0);
    ASSERT_EQ(::listen(listener, 128), 0);
    ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length), 0);
    FakeSystemd systemd;
    const std::uint16_t metrics_port = free_port();
    CraftedStart d({{listener, "epmdx.socket"}},
                   {"-systemd", "-metrics", cat("127.0.0.1:", std::to_string(metrics_port))},
                   {{"NOTIFY_SOCKET", systemd.address()}}, ntohs(address.sin_port));
    ::close(listener);
    ASSERT_TRUE(systemd.receive_until([&] { return systemd.received("READY=1"); }, 10s));
    Nodes nodes = register_nodes(d.port(), 1);
    Conn waiting = Conn::open(d.port());
    // Accepted (not left in the backlog for the next process) before the signal...
    ASSERT_TRUE(wait_for_waiting_connections(metrics_port, 1)) << d.log();
    ::kill(d.pid(), SIGTERM);
    // ...and the request sent only once the daemon has taken the signal: the drain answers it.
    ASSERT_TRUE(wait_for_log([&d] { return d.log(); }, "got signal 15, shutting down")) << d.log();
    waiting.send(port_please_request("node0"));
    EXPECT_EQ(port_in(waiting.read_until_close()), 10000) << d.log();
    ASSERT_TRUE(systemd.receive_until([&] { return d.exit_status().has_value(); }, 10s)) << d.log();
    EXPECT_NE(d.log().find("handed 1 registrations over"), std::string::npos) << d.log();
}

TEST(EpmdxSystemdStore, SighupUnderSystemdKeepsTheSocketUnitsListener) {
    const int listener = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in6 address{};
    address.sin6_family = AF_INET6;
    address.sin6_addr = in6addr_any;  // one socket for IPv4 and IPv6, as epmdx.socket has
    socklen_t length = sizeof address;
    ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), length), 0);
    ASSERT_EQ(::listen(listener, 128), 0);
    ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length), 0);
    const std::uint16_t port = ntohs(address.sin6_port);

    FakeSystemd systemd;
    CraftedStart d({{listener, "epmdx.socket"}}, {"-systemd"},
                   {{"NOTIFY_SOCKET", systemd.address()}}, port);
    ::close(listener);
    ASSERT_TRUE(systemd.receive_until([&] { return systemd.received("READY=1"); }, 10s));
    Nodes nodes = register_nodes(port, 5);
    systemd.messages.clear();
    ::kill(d.pid(), SIGHUP);
    ASSERT_TRUE(systemd.receive_until([&] { return systemd.received("READY=1"); }, 10s)) << d.log();
    EXPECT_TRUE(systemd.received("RELOADING=1"));
    EXPECT_TRUE(systemd.received(cat("MAINPID=", std::to_string(d.pid()))));
    EXPECT_NE(d.log().find(took_over(5)), std::string::npos) << d.log();
    EXPECT_EQ(names_count(port), 5U);
    EXPECT_EQ(closed_connections(nodes), 0U);
    EXPECT_TRUE(systemd.stored("registration").empty());  // a re-exec needs no store
}
#endif  // EPMDX_HAVE_SYSTEMD

}  // namespace
}  // namespace epmdx::test
