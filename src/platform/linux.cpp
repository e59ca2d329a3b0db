// SPDX-License-Identifier: Apache-2.0
// The platform layer on Linux (platform.hpp): the kernel's own calls, each doing in one step what
// POSIX needs several for, and /proc.
#include <fcntl.h>
#include <linux/close_range.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "platform/platform.hpp"

namespace epmdx::platform {
namespace {

constexpr unsigned int all_seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL;

std::string errno_text(int error) {
    return std::strerror(error);
}

unsigned int range_end(int last) {
    return last < 0 ? ~0U : static_cast<unsigned int>(last);
}

}  // namespace

int accept_connection(int listener, sockaddr_storage& peer, socklen_t& length) {
    length = sizeof peer;
    return ::accept4(listener, reinterpret_cast<sockaddr*>(&peer), &length,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
}

int open_socket(int family, int type) {
    return ::socket(family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
}

int open_socket_pair(int type, int (&ends)[2]) {
    return ::socketpair(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, ends);
}

void set_close_on_exec(int first, int last) {
    // One call whatever the number: a restart may pass tens of thousands of descriptors.
    ::close_range(static_cast<unsigned int>(first), range_end(last), CLOSE_RANGE_CLOEXEC);
}

void close_from(int first) {
    ::close_range(static_cast<unsigned int>(first), ~0U, 0);
}

ssize_t receive_with_descriptors(int fd, msghdr& message) {
    return ::recvmsg(fd, &message, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
}

std::optional<int> socket_family(int fd) {
    return socket_option<int>(fd, SOL_SOCKET, SO_DOMAIN);
}

std::optional<std::uint64_t> reactor_descriptor_limit() {
    return std::nullopt;  // epoll
}

std::optional<bool> tcp_established(int fd) {
    // TCP_INFO answers only for a TCP socket, and ESTABLISHED rules out listening, unconnected
    // and half-closed ones: one call.
    const auto info = socket_option<tcp_info>(fd, IPPROTO_TCP, TCP_INFO);
    if (!info) {
        return std::nullopt;
    }
    return info->tcpi_state == TCP_ESTABLISHED;
}

int seal_bytes(std::string_view bytes, std::string& error) {
    const int fd = ::memfd_create("epmdx-state", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        error = "memfd_create: " + errno_text(errno);
        return -1;
    }
    for (std::size_t written = 0; written < bytes.size();) {
        const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            error = "writing the state: " + errno_text(errno);
            ::close(fd);
            return -1;
        }
        written += static_cast<std::size_t>(n);
    }
    if (::fcntl(fd, F_ADD_SEALS, all_seals) != 0) {
        error = "sealing the state: " + errno_text(errno);
        ::close(fd);
        return -1;
    }
    return fd;
}

std::optional<std::vector<std::uint8_t>> read_sealed_bytes(int fd, std::uint64_t max_bytes,
                                                           std::string& error) {
    const int seals = ::fcntl(fd, F_GET_SEALS);
    if (seals < 0) {
        error = "not a memfd";
        return std::nullopt;
    }
    if ((static_cast<unsigned int>(seals) & all_seals) != all_seals) {
        error = "the memfd is not sealed against changes";
        return std::nullopt;
    }
    struct stat status {};
    if (::fstat(fd, &status) != 0) {
        error = "fstat: " + errno_text(errno);
        return std::nullopt;
    }
    if (status.st_size < 0 || static_cast<std::uint64_t>(status.st_size) > max_bytes) {
        error = "the memfd holds " + std::to_string(status.st_size) + " bytes, too many";
        return std::nullopt;
    }
    std::vector<std::uint8_t> bytes(static_cast<std::size_t>(status.st_size));
    for (std::size_t done = 0; done < bytes.size();) {
        const ssize_t n =
            ::pread(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(done));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            error = n == 0 ? "the memfd ended early" : "reading the memfd: " + errno_text(errno);
            return std::nullopt;
        }
        done += static_cast<std::size_t>(n);
    }
    return bytes;
}

std::optional<CommandLine> own_command_line(std::string& error) {
    CommandLine command;
    char resolved[PATH_MAX];
    if (::realpath("/proc/self/exe", resolved) == nullptr) {
        error = "cannot resolve /proc/self/exe: " + errno_text(errno);
        return std::nullopt;
    }
    command.executable = resolved;
    std::ifstream cmdline("/proc/self/cmdline", std::ios::binary);
    const std::string arguments{std::istreambuf_iterator<char>(cmdline),
                                std::istreambuf_iterator<char>()};
    if (arguments.empty()) {
        error = "cannot read /proc/self/cmdline";
        return std::nullopt;
    }
    // NUL-terminated arguments, one after the other.
    for (std::size_t start = 0; start < arguments.size();) {
        const std::size_t end = arguments.find('\0', start);
        command.argv.push_back(arguments.substr(start, end - start));
        start = end == std::string::npos ? arguments.size() : end + 1;
    }
    return command;
}

ProcessStats process_stats() {
    ProcessStats stats;
    std::error_code error;
    std::uint64_t fds = 0;
    for (std::filesystem::directory_iterator it("/proc/self/fd", error), end; !error && it != end;
         it.increment(error)) {
        ++fds;
    }
    if (!error) {
        stats.open_fds = fds;
    }
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
        stats.max_fds = limit.rlim_cur;
    }

    // /proc/self/stat: the fields after the command name's closing parenthesis, from field 3.
    std::ifstream stat_file("/proc/self/stat");
    std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
    const auto after_name = stat.rfind(')');
    const long ticks = ::sysconf(_SC_CLK_TCK);
    const long page = ::sysconf(_SC_PAGESIZE);
    if (after_name != std::string::npos && ticks > 0 && page > 0) {
        std::istringstream fields(stat.substr(after_name + 2));
        std::string field;
        std::array<std::string, 22> values;  // fields 3 to 24
        std::size_t n = 0;
        while (n < values.size() && fields >> field) {
            values[n++] = field;
        }
        if (n == values.size()) {
            const auto at = [&values](int field_number) {
                return std::stoull(values[static_cast<std::size_t>(field_number - 3)]);
            };
            const double per_tick = 1.0 / static_cast<double>(ticks);
            stats.cpu_seconds = static_cast<double>(at(14) + at(15)) * per_tick;
            stats.virtual_memory_bytes = at(23);
            stats.resident_memory_bytes = at(24) * static_cast<std::uint64_t>(page);
            // Field 22 counts ticks since boot; /proc/stat's btime is the boot's Unix time.
            std::ifstream system_stat("/proc/stat");
            std::string key;
            std::uint64_t value = 0;
            while (system_stat >> key) {
                if (key == "btime" && system_stat >> value) {
                    stats.start_time_seconds =
                        static_cast<double>(value) + static_cast<double>(at(22)) * per_tick;
                    break;
                }
            }
        }
    }
    return stats;
}

}  // namespace epmdx::platform
