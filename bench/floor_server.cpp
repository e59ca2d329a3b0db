// SPDX-License-Identifier: Apache-2.0
// epmdx-floor: the kernel floor of the benchmark. A bare single-threaded epoll loop on loopback
// that answers PORT_PLEASE2 and NAMES with replies of the same size as a real daemon's, but
// looks nothing up, keeps no node table and checks nothing else. Whatever a daemon does beyond
// this loop's system calls is the daemon's own cost; see bench/README.md.
//
//   epmdx-floor --port P [--names-nodes N --names-prefix S]
//
// PORT_PLEASE2 for any name is answered as if a node of that name were registered (port 20000,
// type 'M', protocol 0, versions 6..5, no extra): the reply a daemon sends for the benchmark's
// nodes, byte count for byte count. NAMES is answered with the list a daemon would send after the
// load generator registered N nodes named S0, S1, ... (ports 20000 + i), built once at start.
// ALIVE2 is answered with a canned success (ALIVE2_X_RESP, creation 1) and its connection held
// until the peer closes it, as a registration is: the least a daemon does for one. Anything else
// is closed unanswered.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace epmdx::bench {
namespace {

// Requests bigger than this are not the benchmark's and are closed.
constexpr std::size_t max_request = 512;

[[noreturn]] void fail(const char* what) {
    throw std::system_error(errno, std::generic_category(), what);
}

void put16(std::string& out, std::size_t value) {
    out.push_back(static_cast<char>((value >> 8) & 0xff));
    out.push_back(static_cast<char>(value & 0xff));
}

// What the load generator's registrations would make a daemon list, in the same number of bytes.
std::string names_reply(std::uint16_t own_port, std::size_t nodes, const std::string& prefix) {
    std::string reply;
    put16(reply, 0);
    put16(reply, own_port);
    for (std::size_t i = 0; i < nodes; ++i) {
        reply += "name " + prefix + std::to_string(i) + " at port " +
                 std::to_string(20000 + i % 40000) + "\n";
    }
    return reply;
}

// A connection in the epoll set: its request was not complete when it was accepted (or its reply
// did not fit in the socket buffer), the slow path, which the benchmark's loopback clients hardly
// ever take; or it holds a registration, and any event on it is the peer closing it.
struct Waiting {
    std::string in;
    std::string out;
    bool held = false;
};

class FloorServer {
  public:
    FloorServer(std::uint16_t port, std::string names)
        : listener_(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)),
          epoll_(::epoll_create1(EPOLL_CLOEXEC)),
          names_(std::move(names)) {
        if (listener_ < 0 || epoll_ < 0) {
            fail("socket");
        }
        const int one = 1;
        ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(port);
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
            fail("bind");
        }
        if (::listen(listener_, SOMAXCONN) != 0) {
            fail("listen");
        }
        watch(listener_, EPOLLIN, EPOLL_CTL_ADD);
    }

    [[noreturn]] void run() {
        std::array<epoll_event, 256> events{};
        for (;;) {
            const int n = ::epoll_wait(epoll_, events.data(), events.size(), -1);
            if (n < 0 && errno != EINTR) {
                fail("epoll_wait");
            }
            for (int i = 0; i < n; ++i) {
                const int fd = events[i].data.fd;
                if (fd == listener_) {
                    accept_all();
                } else {
                    resume(fd);
                }
            }
        }
    }

  private:
    // The fast path: every connection queued now, each with one recv, one send and a close.
    void accept_all() {
        for (;;) {
            const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno == EINTR || errno == ECONNABORTED) {
                    continue;
                }
                return;  // EAGAIN: the queue is empty (out of descriptors: retried at once)
            }
            const ssize_t n = ::recv(fd, buffer_.data(), buffer_.size(), 0);
            if (n > 0) {
                serve(fd, std::string_view(buffer_.data(), static_cast<std::size_t>(n)), false);
            } else if (n < 0 && errno == EAGAIN) {
                park(fd, {}, false);
            } else {
                ::close(fd);
            }
        }
    }

    // Answers a request that is complete, parks one that is not, closes anything else. watched:
    // fd is in the epoll set already (waiting for read).
    void serve(int fd, std::string_view in, bool watched) {
        if (in.size() < 2) {
            park(fd, in, watched);
            return;
        }
        const std::size_t length =
            (static_cast<std::uint8_t>(in[0]) << 8) | static_cast<std::uint8_t>(in[1]);
        if (length == 0 || length + 2 > max_request) {
            ::close(fd);
            return;
        }
        if (in.size() < length + 2) {
            park(fd, in, watched);
            return;
        }
        const char type = in[2];
        if (type == 'z' && length > 1) {
            const std::size_t name_length = length - 1;
            reply_.assign({'w', 0, 20000 >> 8, 20000 & 0xff, 'M', 0, 0, 6, 0, 5});
            put16(reply_, name_length);
            reply_.append(in.substr(3, name_length));
            put16(reply_, 0);
            send_reply(fd, reply_, watched);
        } else if (type == 'n' && length == 1) {
            send_reply(fd, names_, watched);
        } else if (type == 'x') {
            hold(fd, watched);
        } else {
            ::close(fd);
        }
    }

    void send_reply(int fd, std::string_view reply, bool watched) {
        const ssize_t sent = ::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
        if (sent >= 0 && static_cast<std::size_t>(sent) < reply.size()) {
            Waiting& w = waiting(fd);
            w.in.clear();
            w.out.assign(reply.substr(static_cast<std::size_t>(sent)));
            watch(fd, EPOLLOUT, watched ? EPOLL_CTL_MOD : EPOLL_CTL_ADD);
            return;
        }
        ::close(fd);
    }

    // An ALIVE2: the 6-byte reply fits in any socket buffer; then the connection stays open until
    // the peer closes it (an event on it), waiting for read like a parked one.
    void hold(int fd, bool watched) {
        static constexpr std::array<char, 6> registered{'v', 0, 0, 0, 0, 1};
        if (::send(fd, registered.data(), registered.size(), MSG_NOSIGNAL) !=
            static_cast<ssize_t>(registered.size())) {
            ::close(fd);
            return;
        }
        Waiting& w = waiting(fd);
        w.in.clear();
        w.held = true;
        if (!watched) {
            watch(fd, EPOLLIN, EPOLL_CTL_ADD);
        }
    }

    void park(int fd, std::string_view in, bool watched) {
        Waiting& w = waiting(fd);
        w.in.assign(in);
        w.out.clear();
        if (!watched) {
            watch(fd, EPOLLIN, EPOLL_CTL_ADD);
        }
    }

    // A connection in the epoll set is readable or writable again.
    void resume(int fd) {
        Waiting& w = waiting(fd);
        if (w.held) {
            w.held = false;
            ::close(fd);  // the peer closed it (or sent something): the registration ends
            return;
        }
        if (!w.out.empty()) {
            const ssize_t sent = ::send(fd, w.out.data(), w.out.size(), MSG_NOSIGNAL);
            if (sent < 0 && errno == EAGAIN) {
                return;
            }
            if (sent > 0 && static_cast<std::size_t>(sent) < w.out.size()) {
                w.out.erase(0, static_cast<std::size_t>(sent));
                return;
            }
            w.out.clear();
            ::close(fd);  // also leaves the epoll set
            return;
        }
        const ssize_t n = ::recv(fd, buffer_.data(), buffer_.size(), 0);
        if (n < 0 && errno == EAGAIN) {
            return;
        }
        if (n <= 0 || w.in.size() + static_cast<std::size_t>(n) > max_request) {
            ::close(fd);
            return;
        }
        std::string in = std::move(w.in);
        w.in.clear();
        in.append(buffer_.data(), static_cast<std::size_t>(n));
        serve(fd, in, true);
    }

    Waiting& waiting(int fd) {
        if (static_cast<std::size_t>(fd) >= waiting_.size()) {
            waiting_.resize(static_cast<std::size_t>(fd) + 1);
        }
        return waiting_[static_cast<std::size_t>(fd)];
    }

    void watch(int fd, std::uint32_t events, int operation) const {
        epoll_event event{};
        event.events = events;
        event.data.fd = fd;
        if (::epoll_ctl(epoll_, operation, fd, &event) != 0) {
            fail("epoll_ctl");
        }
    }

    int listener_;
    int epoll_;
    std::string names_;
    std::array<char, max_request> buffer_{};
    std::string reply_;
    std::vector<Waiting> waiting_;
};

int run(int argc, char** argv) {
    long port = -1;
    std::size_t names_nodes = 0;
    std::string names_prefix;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string key = argv[i];
        if (key == "--port") {
            port = std::stol(argv[i + 1]);
        } else if (key == "--names-nodes") {
            names_nodes = std::stoul(argv[i + 1]);
        } else if (key == "--names-prefix") {
            names_prefix = argv[i + 1];
        } else {
            port = -1;
            break;
        }
    }
    if (port <= 0 || port > 65535 || argc % 2 == 0) {
        std::cerr << "usage: epmdx-floor --port P [--names-nodes N --names-prefix S]\n";
        return 2;
    }
    // As many connections as the daemons may hold.
    rlimit limit{};
    ::getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
    const auto own_port = static_cast<std::uint16_t>(port);
    FloorServer(own_port, names_reply(own_port, names_nodes, names_prefix)).run();
}

}  // namespace
}  // namespace epmdx::bench

int main(int argc, char** argv) {
    try {
        return epmdx::bench::run(argc, argv);
    } catch (const std::exception& error) {
        std::cerr << "epmdx-floor: " << error.what() << "\n";
        return 1;
    }
}
