// SPDX-License-Identifier: Apache-2.0
// The platform layer (src/platform/platform.hpp): what its Linux and its POSIX implementation
// both promise, checked on real descriptors. platform_linux_test.cpp and platform_posix_test.cpp
// check what only the one built here gives.
#include "platform/platform.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <ctime>

namespace epmdx::platform {
namespace {

bool close_on_exec(int fd) {
    return (::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0;
}

bool non_blocking(int fd) {
    return (::fcntl(fd, F_GETFL) & O_NONBLOCK) != 0;
}

// A descriptor closed at the end of the scope.
struct Fd {
    int fd = -1;
    Fd() = default;
    explicit Fd(int fd) : fd(fd) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() {
        if (fd >= 0) {
            ::close(fd);
        }
    }
};

// A blocking loopback listener on an ephemeral port, and its address.
struct Listener {
    Fd socket{::socket(AF_INET, SOCK_STREAM, 0)};
    sockaddr_in address{};

    Listener() {
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t length = sizeof address;
        if (::bind(socket.fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
            ::listen(socket.fd, 8) != 0 ||
            ::getsockname(socket.fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
            ADD_FAILURE() << "cannot listen on loopback: " << std::strerror(errno);
        }
    }

    // A blocking client connected to it.
    int connect_client() const {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        EXPECT_EQ(::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address), 0);
        return fd;
    }
};

TEST(Platform, AcceptedConnectionsAreNonBlockingAndCloseOnExec) {
    Listener listener;
    sockaddr_storage peer{};
    socklen_t length = 0;
    ::fcntl(listener.socket.fd, F_SETFL, O_NONBLOCK);
    EXPECT_EQ(accept_connection(listener.socket.fd, peer, length), -1);
    EXPECT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK) << std::strerror(errno);

    const Fd client(listener.connect_client());
    const Fd accepted(accept_connection(listener.socket.fd, peer, length));
    ASSERT_GE(accepted.fd, 0) << std::strerror(errno);
    EXPECT_TRUE(close_on_exec(accepted.fd));
    EXPECT_TRUE(non_blocking(accepted.fd));
    EXPECT_EQ(peer.ss_family, AF_INET);
    EXPECT_EQ(length, sizeof(sockaddr_in));
}

TEST(Platform, OpenedSocketsAreNonBlockingAndCloseOnExec) {
    const Fd socket(open_socket(AF_INET6, SOCK_STREAM));
    ASSERT_GE(socket.fd, 0) << std::strerror(errno);
    EXPECT_TRUE(close_on_exec(socket.fd));
    EXPECT_TRUE(non_blocking(socket.fd));
    EXPECT_EQ(socket_family(socket.fd), AF_INET6);
    EXPECT_EQ(open_socket(AF_INET, -1), -1);  // an invalid type: refused, nothing leaks
}

TEST(Platform, BothEndsOfASocketPairAreNonBlockingAndCloseOnExec) {
    int ends[2] = {-1, -1};
    ASSERT_EQ(open_socket_pair(SOCK_DGRAM, ends), 0) << std::strerror(errno);
    const Fd first(ends[0]);
    const Fd second(ends[1]);
    for (const int fd : ends) {
        EXPECT_TRUE(close_on_exec(fd));
        EXPECT_TRUE(non_blocking(fd));
        EXPECT_EQ(socket_family(fd), AF_UNIX);
    }
}

TEST(Platform, SetCloseOnExecCoversTheRangeOnly) {
    const Fd a(::open("/dev/null", O_RDONLY));
    const Fd b(::dup(a.fd));
    const Fd c(::dup(a.fd));
    ASSERT_TRUE(a.fd < b.fd && b.fd < c.fd);
    set_close_on_exec(a.fd, b.fd);
    EXPECT_TRUE(close_on_exec(a.fd));
    EXPECT_TRUE(close_on_exec(b.fd));
    EXPECT_FALSE(close_on_exec(c.fd));
    set_close_on_exec(c.fd, -1);
    EXPECT_TRUE(close_on_exec(c.fd));
}

TEST(Platform, CloseFromClosesEveryDescriptorFromThereOn) {
    // In a child, since it closes the test's own descriptors too.
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        const int kept = ::open("/dev/null", O_RDONLY);
        const int gone = ::dup(kept);
        const int also_gone = ::dup2(kept, 900);
        close_from(gone);
        const bool ok = ::fcntl(kept, F_GETFD) >= 0 && ::fcntl(gone, F_GETFD) < 0 &&
                        ::fcntl(also_gone, F_GETFD) < 0;
        ::_exit(ok ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(Platform, ReceivedDescriptorsAreCloseOnExec) {
    int ends[2] = {-1, -1};
    ASSERT_EQ(open_socket_pair(SOCK_DGRAM, ends), 0);
    const Fd sender(ends[0]);
    const Fd receiver(ends[1]);
    const Fd passed(::open("/dev/null", O_RDONLY));
    ASSERT_FALSE(close_on_exec(passed.fd));

    char byte = 'x';
    iovec part{&byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr message{};
    message.msg_iov = &part;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    cmsghdr* rights = CMSG_FIRSTHDR(&message);
    rights->cmsg_level = SOL_SOCKET;
    rights->cmsg_type = SCM_RIGHTS;
    rights->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(rights), &passed.fd, sizeof(int));
    ASSERT_EQ(::sendmsg(sender.fd, &message, 0), 1) << std::strerror(errno);

    alignas(cmsghdr) char received_control[CMSG_SPACE(sizeof(int))] = {};
    msghdr received{};
    received.msg_iov = &part;
    received.msg_iovlen = 1;
    received.msg_control = received_control;
    received.msg_controllen = sizeof received_control;
    ASSERT_EQ(receive_with_descriptors(receiver.fd, received), 1);
    const cmsghdr* got = CMSG_FIRSTHDR(&received);
    ASSERT_NE(got, nullptr);
    int fd = -1;
    std::memcpy(&fd, CMSG_DATA(got), sizeof fd);
    const Fd copy(fd);
    EXPECT_TRUE(close_on_exec(copy.fd));
    // Nothing more: it says so at once instead of waiting.
    received.msg_controllen = sizeof received_control;
    EXPECT_EQ(receive_with_descriptors(receiver.fd, received), -1);
    EXPECT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK);
}

TEST(Platform, SocketFamilyOfWhatIsNotASocketIsNone) {
    const Fd file(::open("/dev/null", O_RDONLY));
    EXPECT_EQ(socket_family(file.fd), std::nullopt);
}

TEST(Platform, AnEstablishedConnectionIsTold) {
    Listener listener;
    const Fd client(listener.connect_client());
    EXPECT_EQ(tcp_established(client.fd), true);
    EXPECT_EQ(tcp_established(listener.socket.fd), false);
    const Fd unconnected(::socket(AF_INET, SOCK_STREAM, 0));
    EXPECT_EQ(tcp_established(unconnected.fd), false);
    const Fd udp(::socket(AF_INET, SOCK_DGRAM, 0));
    EXPECT_EQ(tcp_established(udp.fd), std::nullopt);
    const Fd file(::open("/dev/null", O_RDONLY));
    EXPECT_EQ(tcp_established(file.fd), std::nullopt);
}

TEST(Platform, ProcessStatsHaveTheLimitCpuTimeAndStartTime) {
    const ProcessStats stats = process_stats();
    rlimit limit{};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &limit), 0);
    EXPECT_EQ(stats.max_fds, limit.rlim_cur);
    ASSERT_TRUE(stats.cpu_seconds && stats.start_time_seconds);
    EXPECT_GE(*stats.cpu_seconds, 0.0);
    const double now = static_cast<double>(std::time(nullptr));
    EXPECT_LE(*stats.start_time_seconds, now + 1);
    EXPECT_GT(*stats.start_time_seconds, now - 3600);
}

}  // namespace
}  // namespace epmdx::platform
