// SPDX-License-Identifier: Apache-2.0
// The hand-over's I/O without a daemon (docs/differences.md A-RESTART): the state sealed in a
// memfd and read back, registration sockets queued in bundles and taken out again, and a
// re-execution that fails putting every descriptor back as it was.
#include "server/restart/handover.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "server/restart/handover_state.hpp"

namespace epmdx::server {
namespace {

// What a descriptor refers to, to tell after a move whether it is still the same.
struct Identity {
    dev_t device = 0;
    ino_t inode = 0;
    int flags = 0;
    friend bool operator==(const Identity&, const Identity&) = default;
};

Identity identity_of(int fd) {
    struct stat status {};
    EXPECT_EQ(::fstat(fd, &status), 0) << fd;
    return {status.st_dev, status.st_ino, ::fcntl(fd, F_GETFD)};
}

// Every open descriptor of this process, by number.
std::map<int, Identity> open_descriptors() {
    std::map<int, Identity> open;
    for (int fd = 0; fd < 4096; ++fd) {
        if (::fcntl(fd, F_GETFD) >= 0) {
            open[fd] = identity_of(fd);
        }
    }
    return open;
}

// A connected Unix stream pair, both ends close-on-exec: stands in for a registration's socket.
std::pair<int, int> socket_pair() {
    int ends[2] = {-1, -1};
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends), 0);
    return {ends[0], ends[1]};
}

class Sockets {
  public:
    explicit Sockets(std::size_t count) {
        for (std::size_t i = 0; i < count; ++i) {
            const auto [ours, peer] = socket_pair();
            ours_.push_back(ours);
            peers_.push_back(peer);
        }
    }
    Sockets(const Sockets&) = delete;
    Sockets& operator=(const Sockets&) = delete;
    ~Sockets() {
        for (const int fd : ours_) {
            ::close(fd);
        }
        for (const int fd : peers_) {
            ::close(fd);
        }
    }
    const std::vector<int>& fds() const { return ours_; }

  private:
    std::vector<int> ours_;
    std::vector<int> peers_;
};

// ---- The state in a sealed memfd ------------------------------------------------------------

TEST(SealedState, ReadsBackAsWritten) {
    const std::string blob = encode_handover_state(HandoverState{}) + std::string("\0\xff", 2);
    std::string error;
    const int fd = seal_state(blob, error);
    ASSERT_GE(fd, 0) << error;
    EXPECT_NE(::fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
    const auto read = read_sealed_state(fd, error);
    ASSERT_TRUE(read.has_value()) << error;
    EXPECT_EQ(std::string(read->begin(), read->end()), blob);
    ::close(fd);
}

TEST(SealedState, AnUnsealedMemfdIsRefused) {
    const int fd = ::memfd_create("unsealed", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, "abc", 3), 3);
    ASSERT_EQ(::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);  // writes still allowed
    std::string error;
    EXPECT_FALSE(read_sealed_state(fd, error).has_value());
    EXPECT_EQ(error, "the memfd is not sealed against changes");
    ::close(fd);
}

TEST(SealedState, APipeIsNotAMemfd) {
    int ends[2] = {-1, -1};
    ASSERT_EQ(::pipe2(ends, O_CLOEXEC), 0);
    std::string error;
    EXPECT_FALSE(read_sealed_state(ends[0], error).has_value());
    EXPECT_EQ(error, "not a memfd");
    ::close(ends[0]);
    ::close(ends[1]);
}

TEST(SealedState, MoreThanTheLimitIsRefusedUnread) {
    // Sparse: the size is announced without the bytes being there.
    const int fd = ::memfd_create("huge", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(handover_max_bytes) + 1), 0);
    ASSERT_EQ(::fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE),
              0);
    std::string error;
    EXPECT_FALSE(read_sealed_state(fd, error).has_value());
    EXPECT_EQ(error,
              "the memfd holds " + std::to_string(handover_max_bytes + 1) + " bytes, too many");
    ::close(fd);
}

// ---- Bundles -------------------------------------------------------------------------------

// Takes every descriptor out of bundles (which are closed) and checks they are sockets[i] in
// order: the same open files, close-on-exec.
void expect_unbundled(const Bundles& bundles, const std::vector<int>& sockets) {
    std::vector<std::string> problems;
    const std::vector<int> taken = unbundle_registrations(bundles.fds, problems);
    EXPECT_TRUE(problems.empty()) << problems.front();
    ASSERT_EQ(taken.size(), sockets.size());
    for (std::size_t i = 0; i < taken.size(); ++i) {
        const Identity original = identity_of(sockets[i]);
        const Identity received = identity_of(taken[i]);
        EXPECT_EQ(received.inode, original.inode) << i;
        EXPECT_NE(received.flags & FD_CLOEXEC, 0) << i;
        ::close(taken[i]);
    }
    for (const int bundle : bundles.fds) {
        EXPECT_LT(::fcntl(bundle, F_GETFD), 0) << "bundle " << bundle << " left open";
    }
}

TEST(Bundles, NothingToBundleMakesNoBundle) {
    const Bundles bundles = bundle_registrations({});
    EXPECT_TRUE(bundles.fds.empty());
    EXPECT_EQ(bundles.sent, 0U);
    EXPECT_TRUE(bundles.error.empty());
}

TEST(Bundles, OneRegistrationRoundTrips) {
    const Sockets sockets(1);
    const Bundles bundles = bundle_registrations(sockets.fds());
    EXPECT_EQ(bundles.fds.size(), 1U);
    EXPECT_EQ(bundles.sent, 1U);
    EXPECT_TRUE(bundles.error.empty()) << bundles.error;
    expect_unbundled(bundles, sockets.fds());
}

TEST(Bundles, MoreThanOneMessageKeepsTheirOrder) {
    // 253 descriptors per message at most: three messages, in one bundle.
    const Sockets sockets(2 * descriptors_per_message + 7);
    const Bundles bundles = bundle_registrations(sockets.fds());
    EXPECT_EQ(bundles.fds.size(), 1U);
    EXPECT_EQ(bundles.sent, sockets.fds().size());
    EXPECT_TRUE(bundles.error.empty()) << bundles.error;
    for (const int bundle : bundles.fds) {
        EXPECT_NE(::fcntl(bundle, F_GETFD) & FD_CLOEXEC, 0);
    }
    expect_unbundled(bundles, sockets.fds());
}

TEST(Bundles, TheBundleAloneHoldsThem) {
    // The sender's copies closed, the queued ones still carry the connections.
    std::vector<int> ours;
    std::vector<int> peers;
    for (int i = 0; i < 3; ++i) {
        const auto [one, other] = socket_pair();
        ours.push_back(one);
        peers.push_back(other);
    }
    const Bundles bundles = bundle_registrations(ours);
    ASSERT_EQ(bundles.sent, 3U);
    for (const int fd : ours) {
        ::close(fd);
    }
    std::vector<std::string> problems;
    const std::vector<int> taken = unbundle_registrations(bundles.fds, problems);
    ASSERT_EQ(taken.size(), 3U);
    for (std::size_t i = 0; i < taken.size(); ++i) {
        const char byte = static_cast<char>('a' + i);
        EXPECT_EQ(::write(taken[i], &byte, 1), 1) << i;
        char got = 0;
        EXPECT_EQ(::read(peers[i], &got, 1), 1) << i;
        EXPECT_EQ(got, byte) << i;
        ::close(taken[i]);
        ::close(peers[i]);
    }
}

// The lowest descriptor number not open: with the soft limit there, nothing more can be opened.
rlim_t lowest_free_descriptor() {
    int fd = 0;
    while (::fcntl(fd, F_GETFD) >= 0) {
        ++fd;
    }
    return static_cast<rlim_t>(fd);
}

TEST(Bundles, NoDescriptorsLeftBehindWhenAPairCannotBeOpened) {
    const Sockets sockets(2);
    rlimit before{};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &before), 0);
    rlimit full = before;
    full.rlim_cur = lowest_free_descriptor();
    const std::map<int, Identity> open = open_descriptors();
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &full), 0);
    const Bundles bundles = bundle_registrations(sockets.fds());
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &before), 0);
    EXPECT_TRUE(bundles.fds.empty());
    EXPECT_EQ(bundles.sent, 0U);
    EXPECT_EQ(bundles.error, "socketpair: Too many open files");
    EXPECT_EQ(open_descriptors(), open);
}

TEST(Bundles, ABundleThatIsNotAUnixDatagramSocketIsDroppedAndClosed) {
    const auto [stream, other] = socket_pair();
    std::vector<std::string> problems;
    EXPECT_TRUE(unbundle_registrations(std::vector<int>{stream}, problems).empty());
    ASSERT_EQ(problems.size(), 1U);
    EXPECT_EQ(problems[0], "dropped bundle descriptor " + std::to_string(stream) +
                               ": not a Unix datagram socket");
    EXPECT_LT(::fcntl(stream, F_GETFD), 0);
    ::close(other);
}

TEST(Bundles, AnEmptyBundleGivesNothingAndNoProblem) {
    int ends[2] = {-1, -1};
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, ends), 0);
    ::close(ends[0]);
    std::vector<std::string> problems;
    EXPECT_TRUE(unbundle_registrations(std::vector<int>{ends[1]}, problems).empty());
    EXPECT_TRUE(problems.empty());
    EXPECT_LT(::fcntl(ends[1], F_GETFD), 0);
}

// ---- Checking the sockets passed ------------------------------------------------------------

// Loopback TCP connections, by their accepted ends (what a registration holds).
class Connections {
  public:
    explicit Connections(std::size_t count) : listener_(::socket(AF_INET, SOCK_STREAM, 0)) {
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t length = sizeof address;
        EXPECT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&address), length), 0);
        EXPECT_EQ(::listen(listener_, 128), 0);
        EXPECT_EQ(::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length), 0);
        for (std::size_t i = 0; i < count; ++i) {
            const int client = ::socket(AF_INET, SOCK_STREAM, 0);
            EXPECT_EQ(::connect(client, reinterpret_cast<sockaddr*>(&address), length), 0);
            clients_.push_back(client);
            accepted_.push_back(::accept(listener_, nullptr, nullptr));
        }
    }
    Connections(const Connections&) = delete;
    Connections& operator=(const Connections&) = delete;
    ~Connections() {
        for (const std::vector<int>* fds : {&clients_, &accepted_}) {
            for (const int fd : *fds) {
                ::close(fd);
            }
        }
        ::close(listener_);
    }
    int listener() const { return listener_; }
    std::vector<int>& accepted() { return accepted_; }
    // Closes connection i's client end: the accepted end is then no longer established.
    void close_client(std::size_t i) { ::close(std::exchange(clients_[i], -1)); }

  private:
    int listener_;
    std::vector<int> clients_;
    std::vector<int> accepted_;
};

TEST(CheckSockets, ThousandsAreAnsweredInTheirOrderAsOneByOne) {
    // Enough connections for two threads' shares (2,048 each).
    constexpr std::size_t count = 4500;
    rlimit before{};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &before), 0);
    if (before.rlim_max != RLIM_INFINITY && before.rlim_max < 2 * count + 64) {
        GTEST_SKIP() << "the descriptor limit is below " << 2 * count + 64;
    }
    rlimit raised = before;
    raised.rlim_cur = raised.rlim_max;
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &raised), 0);
    {
        Connections connections(count);
        std::vector<int> fds = connections.accepted();
        const int udp = ::socket(AF_INET, SOCK_DGRAM, 0);
        const int file = ::open("/dev/null", O_RDONLY);
        // Something else in each thread's share, and a peer gone in the last.
        fds[10] = udp;
        fds[2500] = file;
        fds[3000] = connections.listener();
        connections.close_client(4400);
        const std::vector<RegistrationSocket> checked = check_registration_sockets(fds);
        ASSERT_EQ(checked.size(), fds.size());
        std::size_t usable = 0;
        for (std::size_t i = 0; i < fds.size(); ++i) {
            const RegistrationSocket alone = check_registration_socket(fds[i]);
            EXPECT_EQ(checked[i].problem, alone.problem) << i;
            EXPECT_EQ(checked[i].inode, alone.inode) << i;
            usable += checked[i].problem.empty() && checked[i].inode != 0 ? 1 : 0;
        }
        EXPECT_EQ(usable, count - 4);
        EXPECT_EQ(checked[10].problem, "not a TCP socket");
        EXPECT_EQ(checked[2500].problem, "not a socket");
        EXPECT_EQ(checked[3000].problem, "a listening socket");
        EXPECT_EQ(checked[4400].problem,
                  "its connection is no longer established (the peer closed it)");
        ::close(udp);
        ::close(file);
    }
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &before), 0);
}

TEST(CheckSockets, NoneGiveNone) {
    EXPECT_TRUE(check_registration_sockets({}).empty());
}

// ---- A re-execution that fails ---------------------------------------------------------------

// The daemon's invariant, which reexec relies on: every descriptor from 3 on is close-on-exec.
void close_on_exec_from_3() {
    for (int fd = 3; fd < 4096; ++fd) {
        const int flags = ::fcntl(fd, F_GETFD);
        if (flags >= 0) {
            ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
        }
    }
}

ExecImage missing_binary() {
    return {"/nonexistent/epmdx-handover-test", {"epmdx", "-port", "1"}, 0, 0};
}

sigset_t blocked_signals() {
    sigset_t mask;
    ::sigprocmask(SIG_SETMASK, nullptr, &mask);
    return mask;
}

// Runs a reexec that fails and checks that every descriptor, the signal mask and the
// environment are as they were.
void expect_rolled_back(const std::vector<NamedFd>& fds, const std::string& why) {
    const std::map<int, Identity> open = open_descriptors();
    const sigset_t mask = blocked_signals();
    const std::string error = reexec(missing_binary(), fds);
    EXPECT_EQ(error, why);
    EXPECT_EQ(open_descriptors(), open);
    const sigset_t after = blocked_signals();
    for (const int signal : {SIGHUP, SIGTERM, SIGINT}) {
        EXPECT_EQ(sigismember(&after, signal), sigismember(&mask, signal)) << signal;
    }
    EXPECT_EQ(std::getenv("LISTEN_FDS"), nullptr);
    EXPECT_EQ(std::getenv("LISTEN_FDNAMES"), nullptr);
}

TEST(ReexecRollback, TargetsHeldByOtherDescriptorsGetThemBack) {
    close_on_exec_from_3();
    const Sockets sockets(4);  // at the lowest free numbers: what 3 and 4 hold is not passed
    const std::vector<int>& fds = sockets.fds();
    expect_rolled_back({{fds[3], "epmdx-registrations"}, {fds[2], "epmdx-state"}},
                       "No such file or directory");
}

TEST(ReexecRollback, ATargetThatWasFreeIsFreeAgain) {
    close_on_exec_from_3();
    const Sockets sockets(3);
    // Descriptor 3 free for the test (what held it is put back after).
    const int held = ::fcntl(3, F_DUPFD_CLOEXEC, 100);
    ::close(3);
    expect_rolled_back({{sockets.fds()[2], "epmdx-state"}, {sockets.fds()[1], "x"}},
                       "No such file or directory");
    EXPECT_LT(::fcntl(3, F_GETFD), 0);
    if (held >= 0) {
        ::dup2(held, 3);
        ::fcntl(3, F_SETFD, FD_CLOEXEC);
        ::close(held);
    }
}

TEST(ReexecRollback, DescriptorsAlreadyInPlaceAreCloseOnExecAgain) {
    close_on_exec_from_3();
    const Sockets sockets(2);  // 3 is open now, if it was not
    // Each passed where it is: its own number is its target.
    std::vector<NamedFd> passed;
    for (int fd = 3; ::fcntl(fd, F_GETFD) >= 0; ++fd) {
        passed.push_back({fd, "epmdx-listen"});
    }
    ASSERT_FALSE(passed.empty());
    expect_rolled_back(passed, "No such file or directory");
}

TEST(ReexecRollback, AMoveThatFailsMidwayIsUndone) {
    close_on_exec_from_3();
    const Sockets sockets(4);  // 3 and 4 are open now, and neither is fds[3]
    const std::vector<int>& fds = sockets.fds();
    // Target 3 is passed in place (its close-on-exec flag is cleared first); making room at
    // target 4 needs a copy from 5 on (above the targets), which a limit at 5 refuses.
    rlimit before{};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &before), 0);
    rlimit low = before;
    low.rlim_cur = 3 + 2;
    const std::map<int, Identity> open = open_descriptors();
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
    const std::string error = reexec(missing_binary(), {{{3, "a"}, {fds[3], "b"}}});
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &before), 0);
    EXPECT_EQ(error, "cannot move the descriptors to pass: Invalid argument");
    EXPECT_EQ(open_descriptors(), open);
}

}  // namespace
}  // namespace epmdx::server
