// SPDX-License-Identifier: Apache-2.0
// epmdx-restart-client: the client side of restart_systemd_test.sh, run while the daemon is
// restarted, reloaded and upgraded under it.
//
//   epmdx-restart-client hold PORT PREFIX COUNT STATUS_FILE
//       registers PREFIX0..PREFIX<COUNT-1> (one connection each, as a node does), then holds the
//       connections open until SIGTERM, noting every one that sees EOF or an error.
//   epmdx-restart-client lookups PORT INTERVAL_MS STATUS_FILE NAME...
//       looks the names up in turn (PORT_PLEASE2, one connection per lookup, 5 s to answer)
//       every INTERVAL_MS until SIGTERM, counting the lookups that did not find the node and
//       noting the slowest answer. (An Erlang node gives a whole connection set-up, lookup
//       included, 7 s: net_setuptime.)
//
// STATUS_FILE always holds one line of key=value pairs, replaced whole (rename) when it changes:
// "registered=N eof=K" or "ok=N failed=M slowest_ms=T". Each EOF and each failed lookup is also
// logged to stderr with the time.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "wire.hpp"

namespace {

using epmdx::test::alive2_request;
using epmdx::test::port_please_request;

volatile std::sig_atomic_t stop_requested = 0;

void request_stop(int) {
    stop_requested = 1;
}

void write_status(const std::string& path, const std::string& line) {
    const std::string temporary = path + ".new";
    {
        std::ofstream out(temporary, std::ios::trunc);
        out << line << '\n';
    }
    if (std::rename(temporary.c_str(), path.c_str()) != 0) {
        std::cerr << "epmdx-restart-client: cannot write " << path << std::endl;
    }
}

void log_event(const std::string& what) {
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    tm local{};
    ::gmtime_r(&now.tv_sec, &local);
    char stamp[32];
    (void)std::strftime(stamp, sizeof stamp, "%H:%M:%S", &local);
    std::cerr << stamp << '.' << std::to_string(1000 + now.tv_nsec / 1000000).substr(1) << ' '
              << what << std::endl;
}

// A blocking connection to 127.0.0.1:port with 5 s for connect, each send and each receive;
// -1 if it cannot be made.
int connect_to(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    timeval timeout{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

bool send_all(int fd, const std::string& bytes) {
    std::size_t sent = 0;
    while (sent < bytes.size()) {
        const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) {
            return false;
        }
        sent += static_cast<std::size_t>(n);
    }
    return true;
}

// Reads until `size` bytes are in (size 0: until the peer closes). Empty on error or timeout.
std::string receive(int fd, std::size_t size, std::string& why) {
    std::string reply;
    char buffer[512];
    while (size == 0 || reply.size() < size) {
        const std::size_t want =
            size == 0 ? sizeof buffer : std::min(sizeof buffer, size - reply.size());
        const ssize_t n = ::recv(fd, buffer, want, 0);
        if (n == 0) {
            if (size == 0) {
                return reply;
            }
            why = "closed after " + std::to_string(reply.size()) + " bytes";
            return {};
        }
        if (n < 0) {
            why = errno == EAGAIN ? std::string("no answer in 5 s") : std::strerror(errno);
            return {};
        }
        reply.append(buffer, static_cast<std::size_t>(n));
    }
    return reply;
}

void raise_descriptor_limit() {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &limit);
    }
}

int hold(std::uint16_t port, const std::string& prefix, std::size_t count,
         const std::string& status) {
    raise_descriptor_limit();
    std::vector<int> fds;
    for (std::size_t i = 0; i < count; ++i) {
        const std::string name = prefix + std::to_string(i);
        const int fd = connect_to(port);
        std::string why = "cannot connect";
        if (fd < 0 || !send_all(fd, alive2_request(name, static_cast<std::uint16_t>(20000 + i))) ||
            [&] {
                const std::string reply = receive(fd, 6, why);
                return reply.size() != 6 || reply[0] != 'v' || reply[1] != 0;
            }()) {
            std::cerr << "epmdx-restart-client: registering " << name << " failed: " << why
                      << std::endl;
            return 1;
        }
        fds.push_back(fd);
    }
    const int poller = ::epoll_create1(EPOLL_CLOEXEC);
    for (std::size_t i = 0; i < fds.size(); ++i) {
        epoll_event event{};
        event.events = EPOLLIN | EPOLLRDHUP;
        event.data.u64 = i;
        ::epoll_ctl(poller, EPOLL_CTL_ADD, fds[i], &event);
    }
    std::size_t eof = 0;
    const auto report = [&] {
        write_status(status,
                     "registered=" + std::to_string(fds.size()) + " eof=" + std::to_string(eof));
    };
    report();
    std::vector<epoll_event> events(64);
    while (stop_requested == 0) {
        const int n = ::epoll_wait(poller, events.data(), static_cast<int>(events.size()), 200);
        for (int k = 0; k < n; ++k) {
            const std::size_t i = events[static_cast<std::size_t>(k)].data.u64;
            char byte = 0;
            const ssize_t got = ::recv(fds[i], &byte, 1, MSG_DONTWAIT);
            if (got > 0) {
                continue;  // the daemon never sends on a registration: ignore, keep watching
            }
            if (got < 0 && errno == EAGAIN) {
                continue;
            }
            log_event("EOF on the registration of " + prefix + std::to_string(i) +
                      (got < 0 ? std::string(": ") + std::strerror(errno) : std::string()));
            ::epoll_ctl(poller, EPOLL_CTL_DEL, fds[i], nullptr);
            ++eof;
            report();
        }
    }
    report();
    return 0;
}

int lookups(std::uint16_t port, long interval_ms, const std::string& status,
            const std::vector<std::string>& names) {
    std::size_t ok = 0;
    std::size_t failed = 0;
    std::chrono::milliseconds slowest{0};
    const auto report = [&] {
        write_status(status, "ok=" + std::to_string(ok) + " failed=" + std::to_string(failed) +
                                 " slowest_ms=" + std::to_string(slowest.count()));
    };
    report();
    for (std::size_t i = 0; stop_requested == 0; ++i) {
        const std::string& name = names[i % names.size()];
        std::string why = "cannot connect";
        const auto sent = std::chrono::steady_clock::now();
        const int fd = connect_to(port);
        std::string reply;
        if (fd >= 0) {
            if (send_all(fd, port_please_request(name))) {
                reply = receive(fd, 0, why);
            } else {
                why = "send failed";
            }
            ::close(fd);
        }
        if (reply.size() >= 2 && reply[0] == 'w' && reply[1] == 0) {
            ++ok;
            slowest = std::max(slowest, std::chrono::duration_cast<std::chrono::milliseconds>(
                                            std::chrono::steady_clock::now() - sent));
        } else {
            if (!reply.empty()) {
                why = "not found";
            } else if (why == "cannot connect" && fd >= 0) {
                why = "closed without an answer";
            }
            ++failed;
            std::string event = "lookup of " + name;
            event += " failed: ";
            event += why;
            log_event(event);
        }
        if (i % 20 == 0 || reply.empty()) {
            report();
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
    }
    report();
    return 0;
}

int usage() {
    std::cerr << "usage: epmdx-restart-client hold PORT PREFIX COUNT STATUS_FILE\n"
                 "       epmdx-restart-client lookups PORT INTERVAL_MS STATUS_FILE NAME...\n";
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    struct sigaction action {};
    action.sa_handler = request_stop;
    ::sigaction(SIGTERM, &action, nullptr);
    ::sigaction(SIGINT, &action, nullptr);
    const std::vector<std::string> args(argv + 1, argv + argc);
    try {
        if (args.size() == 5 && args[0] == "hold") {
            return hold(static_cast<std::uint16_t>(std::stoul(args[1])), args[2],
                        std::stoul(args[3]), args[4]);
        }
        if (args.size() >= 5 && args[0] == "lookups") {
            return lookups(static_cast<std::uint16_t>(std::stoul(args[1])), std::stol(args[2]),
                           args[3], std::vector<std::string>(args.begin() + 4, args.end()));
        }
    } catch (const std::exception& error) {
        std::cerr << "epmdx-restart-client: " << error.what() << "\n";
    }
    return usage();
}
