// SPDX-License-Identifier: Apache-2.0
#include "harness.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "platform/platform.hpp"

extern char** environ;

namespace epmdx::test {
namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error(cat(what, ": ", std::strerror(errno)));
}

int remaining_ms(Clock::time_point deadline) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

bool sockaddr_for(const std::string& address, std::uint16_t port, sockaddr_storage& storage,
                  socklen_t& length) {
    std::memset(&storage, 0, sizeof storage);
    auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
    if (inet_pton(AF_INET, address.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        length = sizeof(sockaddr_in);
        return true;
    }
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
    if (inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        length = sizeof(sockaddr_in6);
        return true;
    }
    return false;
}

// Reads whatever arrives on fd until EOF or the deadline; appends to out.
void drain(int fd, std::string& out, Clock::time_point deadline) {
    char buf[65536];
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        const int ready = ::poll(&p, 1, remaining_ms(deadline));
        if (ready <= 0) {
            return;
        }
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) {
            return;
        }
        out.append(buf, static_cast<std::size_t>(n));
    }
}

// argv and envp for execve, built before fork so the child only calls async-signal-safe code.
struct ExecArgs {
    std::vector<std::string> strings;
    std::vector<char*> argv;
    std::vector<char*> envp;

    ExecArgs(const std::vector<std::string>& args, const Env& env,
             const std::vector<std::string>& unset_env) {
        std::vector<std::string> env_strings;
        for (char** e = environ; *e; ++e) {
            const std::string_view entry = *e;
            const std::string_view key = entry.substr(0, entry.find('='));
            // Whatever the user running the tests has set for epmd (OTP's variables and
            // epmdx's own) must not reach a daemon or client under test.
            bool dropped = key.starts_with("ERL_EPMD_");
            for (const auto& [k, v] : env) {
                dropped = dropped || k == key;
            }
            for (const auto& k : unset_env) {
                dropped = dropped || k == key;
            }
            if (!dropped) {
                env_strings.emplace_back(entry);
            }
        }
        for (const auto& [k, v] : env) {
            env_strings.push_back(cat(k, "=", v));
        }
        strings = args;
        strings.insert(strings.end(), env_strings.begin(), env_strings.end());
        for (std::size_t i = 0; i < strings.size(); ++i) {
            (i < args.size() ? argv : envp).push_back(strings[i].data());
        }
        argv.push_back(nullptr);
        envp.push_back(nullptr);
    }
};

// Forks and execs. The child reads /dev/null, writes to out_fd and err_fd (inherited streams
// if -1), leads a process group of its own (so that erl's helpers can be killed with it), and
// dies with the test, so that a test killed by its timeout leaves no daemon behind.
pid_t start_child(const ExecArgs& exec, int out_fd, int err_fd) {
    const pid_t pid = ::fork();
    if (pid < 0) {
        fail("fork");
    }
    if (pid == 0) {
        ::setpgid(0, 0);
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        const int null_in = ::open("/dev/null", O_RDONLY);
        ::dup2(null_in, 0);
        if (out_fd >= 0) {
            ::dup2(out_fd, 1);
        }
        if (err_fd >= 0) {
            ::dup2(err_fd, 2);
        }
        ::execve(exec.argv[0], exec.argv.data(), exec.envp.data());
        _exit(127);
    }
    return pid;
}

}  // namespace

std::string epmdx_binary() {
    return EPMDX_BINARY;
}
std::string otp_epmd_binary() {
    return OTP_EPMD_BINARY;
}
std::string erl_binary() {
    return ERL_BINARY;
}

std::uint16_t free_port() {
    // Ask the kernel for an ephemeral port on IPv4, then make sure ::1 has it free as well.
    for (int attempt = 0; attempt < 50; ++attempt) {
        const int v4 = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::bind(v4, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
            fail("bind");
        }
        socklen_t len = sizeof addr;
        ::getsockname(v4, reinterpret_cast<sockaddr*>(&addr), &len);
        const std::uint16_t port = ntohs(addr.sin_port);
        ::close(v4);
        const int v6 = ::socket(AF_INET6, SOCK_STREAM, 0);
        sockaddr_in6 addr6{};
        addr6.sin6_family = AF_INET6;
        addr6.sin6_addr = in6addr_loopback;
        addr6.sin6_port = htons(port);
        const bool v6_free =
            v6 < 0 || ::bind(v6, reinterpret_cast<sockaddr*>(&addr6), sizeof addr6) == 0;
        if (v6 >= 0) {
            ::close(v6);
        }
        if (v6_free) {
            return port;
        }
    }
    throw std::runtime_error("no free port");
}

// ---- Process ---------------------------------------------------------------------------------

Process Process::spawn(const std::vector<std::string>& argv, const Env& env,
                       const std::vector<std::string>& unset_env,
                       const std::filesystem::path& output_file) {
    ExecArgs exec(argv, env, unset_env);
    int output = -1;
    if (!output_file.empty()) {
        output = ::open(output_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (output < 0) {
            fail("open " + output_file.string());
        }
    }
    Process p;
    p.pid_ = start_child(exec, output, output);
    if (output >= 0) {
        ::close(output);
    }
    return p;
}

Process::Process(Process&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), status_(other.status_) {}

Process& Process::operator=(Process&& other) noexcept {
    if (this != &other) {
        kill();
        pid_ = std::exchange(other.pid_, -1);
        status_ = other.status_;
    }
    return *this;
}

Process::~Process() {
    kill();
}

bool Process::running() {
    return pid_ > 0 && !wait(0ms).has_value();
}

std::optional<int> Process::wait(std::chrono::milliseconds timeout) {
    if (status_) {
        return status_;
    }
    if (pid_ <= 0) {
        return std::nullopt;
    }
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        int raw = 0;
        const pid_t r = ::waitpid(pid_, &raw, WNOHANG);
        if (r == pid_) {
            status_ = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
            return status_;
        }
        if (Clock::now() >= deadline) {
            return std::nullopt;
        }
        std::this_thread::sleep_for(5ms);
    }
}

void Process::signal(int sig) {
    if (pid_ > 0 && !status_) {
        ::kill(pid_, sig);
    }
}

void Process::kill() {
    if (pid_ > 0 && !status_) {
        ::kill(-pid_, SIGKILL);  // its whole process group: erl starts helpers
        ::kill(pid_, SIGKILL);
        wait(5s);
    }
}

RunResult run(const std::vector<std::string>& argv, const Env& env,
              const std::vector<std::string>& unset_env, std::chrono::milliseconds timeout) {
    int out_pipe[2];
    int err_pipe[2];
    // Close-on-exec, so that only the dup2'ed copies reach the command (a daemonized child
    // holding the originals would keep the pipes open).
    if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) {
        fail("pipe");
    }
    ExecArgs exec(argv, env, unset_env);
    const pid_t pid = start_child(exec, out_pipe[1], err_pipe[1]);
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    RunResult result;
    const auto deadline = Clock::now() + timeout;
    pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
    int open_fds = 2;
    char buf[65536];
    while (open_fds > 0 && remaining_ms(deadline) > 0) {
        if (::poll(fds, 2, remaining_ms(deadline)) <= 0) {
            break;
        }
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) {
                continue;
            }
            const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
            if (n <= 0) {
                ::close(fds[i].fd);
                fds[i].fd = -1;
                --open_fds;
            } else {
                (i == 0 ? result.out : result.err).append(buf, static_cast<std::size_t>(n));
            }
        }
    }
    for (auto& p : fds) {
        if (p.fd >= 0) {
            ::close(p.fd);
        }
    }
    for (;;) {
        int raw = 0;
        const pid_t r = ::waitpid(pid, &raw, WNOHANG);
        if (r == pid) {
            result.exit_code = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
            break;
        }
        if (remaining_ms(deadline) == 0) {
            ::kill(-pid, SIGKILL);
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &raw, 0);
            result.exit_code = -1;
            break;
        }
        std::this_thread::sleep_for(2ms);
    }
    return result;
}

// ---- Daemon ----------------------------------------------------------------------------------

namespace {

std::string binary(DaemonKind kind) {
    return kind == DaemonKind::epmdx ? epmdx_binary() : otp_epmd_binary();
}

}  // namespace

bool Daemon::launch(DaemonKind kind, const std::vector<std::string>& command, const Env& env) {
    log_file_ = log_path(
        cat(kind == DaemonKind::epmdx ? "epmdx" : "otp", "-daemon-", std::to_string(port_)));
    process_ = Process::spawn(command, env, {}, log_file_);
    if (!wait_for_port(port_, process_, 10s)) {
        return false;
    }
    // The daemon may bind ::1 after 127.0.0.1 (the newest OTP binds implicit loopbacks last), so
    // a test that goes straight to ::1 could find it not yet listening. Where the host has ::1,
    // give it a moment too; a daemon told not to listen there simply costs the short wait.
    // It is read from the kernel's socket table rather than probed with a connection, which
    // would take a connection slot and count as a request in the daemon's metrics.
    if (ipv6_loopback_available()) {
        (void)wait_for_ipv6_listener(port_, process_, 2s);
    }
    return true;
}

Daemon Daemon::start(DaemonKind kind, const std::vector<std::string>& extra_args, const Env& env,
                     std::vector<std::string> address_args) {
    for (int attempt = 0; attempt < 5; ++attempt) {
        Daemon d;
        d.port_ = free_port();
        std::vector<std::string> argv = {binary(kind), "-port", std::to_string(d.port_)};
        argv.insert(argv.end(), address_args.begin(), address_args.end());
        argv.insert(argv.end(), extra_args.begin(), extra_args.end());
        if (d.launch(kind, argv, env)) {
            return d;
        }
        // Lost a race for the port (a busy port makes epmd exit 0): try another one.
    }
    throw std::runtime_error("daemon did not start");
}

Daemon Daemon::start_on(std::uint16_t port, DaemonKind kind,
                        const std::vector<std::string>& extra_args) {
    Daemon d;
    d.port_ = port;
    std::vector<std::string> argv = {binary(kind), "-port", std::to_string(port), "-address",
                                     "127.0.0.1"};
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    if (!d.launch(kind, argv, {})) {
        throw std::runtime_error(cat("daemon did not start on port ", std::to_string(port)));
    }
    return d;
}

Daemon Daemon::start_with_descriptor_limit(DaemonKind kind, int descriptor_limit,
                                           const std::vector<std::string>& extra_args) {
    for (int attempt = 0; attempt < 5; ++attempt) {
        Daemon d;
        d.port_ = free_port();
        std::string command =
            cat("ulimit -n ", std::to_string(descriptor_limit), "; exec ", binary(kind), " -port ",
                std::to_string(d.port_), " -address 127.0.0.1");
        for (const std::string& arg : extra_args) {
            command += cat(" ", arg);
        }
        if (d.launch(kind, {"/bin/sh", "-c", command}, {})) {
            return d;
        }
    }
    throw std::runtime_error("daemon did not start under ulimit");
}

std::string Daemon::log() const {
    std::ifstream in(log_file_, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

RunResult Daemon::cli(DaemonKind client, const std::vector<std::string>& args,
                      const Env& env) const {
    std::vector<std::string> argv = {binary(client)};
    argv.insert(argv.end(), args.begin(), args.end());
    Env full_env = env;
    full_env.emplace_back("ERL_EPMD_PORT", std::to_string(port_));
    return run(argv, full_env);
}

std::string proc_net_port(std::uint16_t port) {
    std::ostringstream text;
    text << ':' << std::uppercase << std::hex << std::setw(4) << std::setfill('0') << port;
    return text.str();
}

bool wait_for_ipv6_listener(std::uint16_t port, Process& server,
                            std::chrono::milliseconds timeout) {
    // /proc/net/tcp6 rows: "sl local_address:PORT rem_address:PORT st ...", hex; 0A is LISTEN.
    const std::string wanted = proc_net_port(port);
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
        if (server.pid() > 0 && !server.running()) {
            return false;
        }
        std::ifstream table("/proc/net/tcp6");
        std::string slot, local, remote, state;
        std::string rest;
        std::getline(table, rest);  // header
        while (table >> slot >> local >> remote >> state && std::getline(table, rest)) {
            if (state == "0A" && local.ends_with(wanted)) {
                return true;
            }
        }
        std::this_thread::sleep_for(10ms);
    }
    return false;
}

std::string epmdx_cannot_hold(std::size_t connections) {
    // The daemon keeps a few descriptors back from connections: stdio, listeners, its own.
    constexpr std::size_t reserve = 64;
    const std::optional<std::uint64_t> most = platform::reactor_descriptor_limit();
    if (!most || connections + reserve <= *most) {
        return {};
    }
    return "needs " + std::to_string(connections) + " connections; this build's reactor (select) " +
           "watches " + std::to_string(*most) + " descriptors";
}

std::string epmdx_cannot_restart() {
    // The daemon links the same platform layer: what fails here fails there.
    std::string error;
    return platform::own_command_line(error) ? std::string() : error;
}

bool ipv6_loopback_available() {
    const int fd = ::socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0) {
        return false;
    }
    sockaddr_in6 addr{};
    addr.sin6_family = AF_INET6;
    addr.sin6_addr = in6addr_loopback;
    const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
}

bool wait_for_port(std::uint16_t port, std::chrono::milliseconds timeout) {
    Process none;
    return wait_for_port(port, none, timeout);
}

bool wait_for_port(std::uint16_t port, Process& server, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
        if (server.pid() > 0 && !server.running()) {
            return false;  // it died: no use waiting
        }
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons(port);
        const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
        ::close(fd);
        if (ok) {
            return true;
        }
        std::this_thread::sleep_for(10ms);
    }
    return false;
}

// ---- SilentListener --------------------------------------------------------------------------

SilentListener::SilentListener() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof addr;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &length) != 0) {
        ::close(fd_);
        throw std::runtime_error(cat("SilentListener: ", std::strerror(errno)));
    }
    port_ = ntohs(addr.sin_port);
}

SilentListener::~SilentListener() {
    ::close(fd_);
}

// ---- Conn ------------------------------------------------------------------------------------

Conn Conn::open(std::uint16_t port, const std::string& address, const std::string& bind_address) {
    sockaddr_storage target{};
    socklen_t target_len = 0;
    if (!sockaddr_for(address, port, target, target_len)) {
        throw std::runtime_error("bad address " + address);
    }
    const int fd = ::socket(target.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fail("socket");
    }
    if (!bind_address.empty()) {
        sockaddr_storage local{};
        socklen_t local_len = 0;
        sockaddr_for(bind_address, 0, local, local_len);
        if (::bind(fd, reinterpret_cast<sockaddr*>(&local), local_len) != 0) {
            ::close(fd);
            fail("bind " + bind_address);
        }
    }
    if (::connect(fd, reinterpret_cast<sockaddr*>(&target), target_len) != 0) {
        ::close(fd);
        fail("connect " + address + ":" + std::to_string(port));
    }
    return Conn(fd);
}

Conn::Conn(Conn&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

Conn& Conn::operator=(Conn&& other) noexcept {
    if (this != &other) {
        close();
        fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
}

Conn::~Conn() {
    close();
}

void Conn::send(std::string_view bytes) {
    while (!bytes.empty()) {
        const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n < 0) {
            fail("send");
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
}

std::string Conn::read_until_close(std::chrono::milliseconds timeout) {
    std::string out;
    drain(fd_, out, Clock::now() + timeout);
    return out;
}

std::string Conn::read_exact(std::size_t n, std::chrono::milliseconds timeout) {
    std::string out;
    const auto deadline = Clock::now() + timeout;
    char buf[4096];
    while (out.size() < n) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, remaining_ms(deadline)) <= 0) {
            break;
        }
        const ssize_t got = ::read(fd_, buf, std::min(sizeof buf, n - out.size()));
        if (got <= 0) {
            break;
        }
        out.append(buf, static_cast<std::size_t>(got));
    }
    return out;
}

bool Conn::closed_within(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    char buf[4096];
    for (;;) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, remaining_ms(deadline)) <= 0) {
            return false;
        }
        const ssize_t n = ::read(fd_, buf, sizeof buf);
        if (n <= 0) {
            return true;
        }
    }
}

void Conn::close() {
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
}

// ---- Outcomes -------------------------------------------------------------------------------

Outcome read_outcome(int fd, std::chrono::milliseconds timeout) {
    Outcome out;
    const auto deadline = Clock::now() + timeout;
    char buf[65536];
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, remaining_ms(deadline)) <= 0) {
            return out;
        }
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) {  // EOF, or a reset when the server closed with our request unread
            out.closed = true;
            return out;
        }
        out.bytes.append(buf, static_cast<std::size_t>(n));
    }
}

bool send_quietly(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
        const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n <= 0) {
            return false;
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

bool still_open(int fd, std::chrono::milliseconds grace) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(grace.count())) == 0;
}

// ---- Requests --------------------------------------------------------------------------------

std::string round_trip(std::uint16_t port, std::string_view bytes,
                       std::chrono::milliseconds timeout) {
    Conn c = Conn::open(port);
    c.send(bytes);
    return c.read_until_close(timeout);
}

Registration register_node(std::uint16_t epmd_port, std::string_view name, std::uint16_t node_port,
                           std::uint16_t highest) {
    Registration r{Conn::open(epmd_port), {}};
    r.conn.send(alive2_request(name, node_port, highest));
    r.reply = r.conn.read_exact(highest >= 6 ? 6 : 4);
    return r;
}

// ---- Test logs -------------------------------------------------------------------------------

namespace {

// The running test's log directory; empty until the test asks for its first log file.
std::filesystem::path test_log_directory;

// Passed: the logs go. Failed: they stay, and the output says where.
class TestLogKeeper : public ::testing::EmptyTestEventListener {
    void OnTestEnd(const ::testing::TestInfo& info) override {
        if (test_log_directory.empty()) {
            return;
        }
        if (info.result()->Failed()) {
            std::cout << "test logs kept in " << test_log_directory.string() << std::endl;
        } else {
            std::error_code ignored;
            std::filesystem::remove_all(test_log_directory, ignored);
        }
        test_log_directory.clear();
    }
};

// Registered before main() runs, so that every test binary linking the harness gets it.
[[maybe_unused]] const bool test_log_keeper_registered = [] {
    ::testing::UnitTest::GetInstance()->listeners().Append(new TestLogKeeper);
    return true;
}();

}  // namespace

std::filesystem::path log_path(std::string_view stem) {
    static int counter = 0;
    if (test_log_directory.empty()) {
        const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
        std::string name =
            test ? cat(test->test_suite_name(), ".", test->name()) : std::string("outside-tests");
        std::replace(name.begin(), name.end(), '/', '_');  // parameterised tests: "Suite/Test/0"
        test_log_directory =
            std::filesystem::path(EPMDX_TEST_LOG_DIR) / cat(name, "-", std::to_string(::getpid()));
        std::filesystem::create_directories(test_log_directory);
    }
    return test_log_directory / cat(std::to_string(++counter), "-", stem, ".log");
}

bool wait_for_names(std::uint16_t port,
                    const std::function<bool(const std::vector<NameEntry>&)>& done,
                    std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        try {
            const std::string reply = round_trip(port, names_request(), 2s);
            if (reply.starts_with(names_header(port)) && done(parse_names(reply))) {
                return true;
            }
        } catch (const std::runtime_error&) {
            // Not listening (yet, or any more): keep polling until the deadline.
        }
        if (Clock::now() >= deadline) {
            return false;
        }
        std::this_thread::sleep_for(10ms);
    }
}

}  // namespace epmdx::test
