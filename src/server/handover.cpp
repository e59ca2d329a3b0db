#include "handover.hpp"

#include <elf.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>

#include "handover_state.hpp"

#ifdef EPMDX_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

extern char** environ;  // NOLINT(readability-identifier-naming): POSIX's name

namespace epmdx::server {
namespace {

constexpr int first_passed_fd = 3;  // SD_LISTEN_FDS_START
constexpr unsigned int all_seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL;

std::optional<long> parse_number(const char* text) {
    if (!text || *text == '\0') {
        return std::nullopt;
    }
    char* end = nullptr;
    errno = 0;
    const long value = std::strtol(text, &end, 10);
    if (errno != 0 || *end != '\0' || value < 0) {
        return std::nullopt;
    }
    return value;
}

std::vector<std::string> split(std::string_view text, char separator) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    for (;;) {
        const std::size_t end = text.find(separator, start);
        parts.emplace_back(text.substr(start, end - start));
        if (end == std::string_view::npos) {
            return parts;
        }
        start = end + 1;
    }
}

std::string errno_text(int error) {
    return std::strerror(error);
}

struct ElfIdentity {
    unsigned char elf_class = 0;
    unsigned char data = 0;
    std::uint16_t machine = 0;
};

// The ELF identification of the file at path, or why there is none.
std::optional<ElfIdentity> read_elf_identity(const std::string& path, std::string& error) {
    std::ifstream file(path, std::ios::binary);
    unsigned char header[EI_NIDENT + 4] = {};
    if (!file.read(reinterpret_cast<char*>(header), sizeof header)) {
        error = file.is_open() ? "too short to be an ELF binary" : "cannot be read";
        return std::nullopt;
    }
    if (std::memcmp(header, ELFMAG, SELFMAG) != 0) {
        error = "not an ELF binary";
        return std::nullopt;
    }
    ElfIdentity identity{header[EI_CLASS], header[EI_DATA], 0};
    // e_machine follows e_type, in the file's own byte order.
    const unsigned char* machine = header + EI_NIDENT + 2;
    identity.machine = identity.data == ELFDATA2MSB
                           ? static_cast<std::uint16_t>((machine[0] << 8) | machine[1])
                           : static_cast<std::uint16_t>((machine[1] << 8) | machine[0]);
    return identity;
}

const char* class_name(unsigned char elf_class) {
    return elf_class == ELFCLASS64 ? "64-bit" : elf_class == ELFCLASS32 ? "32-bit" : "unknown";
}

template <typename Value>
std::optional<Value> socket_option(int fd, int level, int option) {
    Value value{};
    socklen_t length = sizeof value;
    if (::getsockopt(fd, level, option, &value, &length) != 0) {
        return std::nullopt;
    }
    return value;
}

sigset_t restart_signals() {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGHUP);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    return signals;
}

}  // namespace

void unblock_restart_signals() {
    const sigset_t signals = restart_signals();
    ::sigprocmask(SIG_UNBLOCK, &signals, nullptr);
}

InheritedDescriptors take_inherited_descriptors() {
    InheritedDescriptors result;
    const std::optional<long> pid = parse_number(std::getenv("LISTEN_PID"));
    const std::optional<long> count = parse_number(std::getenv("LISTEN_FDS"));
    const char* names_text = std::getenv("LISTEN_FDNAMES");
    const std::vector<std::string> names =
        names_text ? split(names_text, ':') : std::vector<std::string>{};
    ::unsetenv("LISTEN_PID");
    ::unsetenv("LISTEN_FDS");
    ::unsetenv("LISTEN_FDNAMES");
    if (!pid || !count || *pid != ::getpid() || *count > INT_MAX - first_passed_fd) {
        return result;  // meant for another process, as sd_listen_fds decides
    }
    for (int i = 0; i < static_cast<int>(*count); ++i) {
        const int fd = first_passed_fd + i;
        const int flags = ::fcntl(fd, F_GETFD);
        if (flags < 0) {
            continue;
        }
        ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
        const std::string name =
            static_cast<std::size_t>(i) < names.size() ? names[i] : std::string("unknown");
        if (name == state_fd_name) {
            result.states.push_back(fd);
        } else if (name == registration_fd_name) {
            result.registrations.push_back(fd);
        } else if (name == listener_fd_name) {
            result.handed_listeners.push_back(fd);
        } else {
            result.systemd_listeners.push_back({fd, name});
        }
    }
    return result;
}

int seal_state(std::string_view blob, std::string& error) {
    const int fd = ::memfd_create("epmdx-state", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        error = "memfd_create: " + errno_text(errno);
        return -1;
    }
    for (std::size_t written = 0; written < blob.size();) {
        const ssize_t n = ::write(fd, blob.data() + written, blob.size() - written);
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

std::optional<std::vector<std::uint8_t>> read_sealed_state(int fd, std::string& error) {
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
    if (status.st_size < 0 || static_cast<std::uint64_t>(status.st_size) > handover_max_bytes) {
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

std::uint64_t socket_inode(int fd) {
    struct stat status {};
    return ::fstat(fd, &status) == 0 ? static_cast<std::uint64_t>(status.st_ino) : 0;
}

RegistrationSocket check_registration_socket(int fd) {
    RegistrationSocket socket;
    const auto type = socket_option<int>(fd, SOL_SOCKET, SO_TYPE);
    const auto domain = socket_option<int>(fd, SOL_SOCKET, SO_DOMAIN);
    const auto protocol = socket_option<int>(fd, SOL_SOCKET, SO_PROTOCOL);
    if (!type || !domain || !protocol) {
        socket.problem = "not a socket";
    } else if (*type != SOCK_STREAM || (*domain != AF_INET && *domain != AF_INET6) ||
               *protocol != IPPROTO_TCP) {
        socket.problem = "not a TCP socket";
    } else if (socket_option<int>(fd, SOL_SOCKET, SO_ACCEPTCONN).value_or(0) != 0) {
        socket.problem = "a listening socket";
    } else if (socket.peer_length = sizeof socket.peer;
               ::getpeername(fd, reinterpret_cast<sockaddr*>(&socket.peer), &socket.peer_length) !=
               0) {
        socket.problem = "not connected";
    } else if (const auto info = socket_option<tcp_info>(fd, IPPROTO_TCP, TCP_INFO);
               !info || info->tcpi_state != TCP_ESTABLISHED) {
        socket.problem = "its connection is no longer established (the peer closed it)";
    } else {
        socket.inode = socket_inode(fd);
    }
    return socket;
}

std::optional<ExecImage> capture_exec_image(std::string& error) {
    ExecImage image;
    char resolved[PATH_MAX];
    if (::realpath("/proc/self/exe", resolved) == nullptr) {
        error = "cannot resolve /proc/self/exe: " + errno_text(errno);
        return std::nullopt;
    }
    image.path = resolved;
    std::ifstream cmdline("/proc/self/cmdline", std::ios::binary);
    const std::string arguments{std::istreambuf_iterator<char>(cmdline),
                                std::istreambuf_iterator<char>()};
    if (arguments.empty()) {
        error = "cannot read /proc/self/cmdline";
        return std::nullopt;
    }
    image.argv = split(std::string_view(arguments).substr(0, arguments.size() - 1), '\0');
    const std::optional<ElfIdentity> own = read_elf_identity(image.path, error);
    if (!own) {
        error = image.path + ": " + error;
        return std::nullopt;
    }
    image.elf_class = own->elf_class;
    image.elf_machine = own->machine;
    return image;
}

std::string check_exec_image(const ExecImage& image) {
    struct stat status {};
    if (::stat(image.path.c_str(), &status) != 0) {
        return errno_text(errno);
    }
    if (!S_ISREG(status.st_mode)) {
        return "not a regular file";
    }
    if (::access(image.path.c_str(), X_OK) != 0) {
        return "not executable: " + errno_text(errno);
    }
    std::string error;
    const std::optional<ElfIdentity> identity = read_elf_identity(image.path, error);
    if (!identity) {
        return error;
    }
    if (identity->elf_class != image.elf_class) {
        return std::string("a ") + class_name(identity->elf_class) + " binary, this one is " +
               class_name(image.elf_class);
    }
    if (identity->machine != image.elf_machine) {
        return "built for another architecture (ELF machine " + std::to_string(identity->machine) +
               ", this one is " + std::to_string(image.elf_machine) + ")";
    }
    return {};
}

std::string reexec(const ExecImage& image, std::span<const NamedFd> fds) {
    // Everything that allocates comes first: from the first dup2 on, only system calls.
    std::vector<std::string> environment;
    for (char** entry = environ; *entry != nullptr; ++entry) {
        const std::string_view variable(*entry);
        if (!variable.starts_with("LISTEN_PID=") && !variable.starts_with("LISTEN_FDS=") &&
            !variable.starts_with("LISTEN_FDNAMES=")) {
            environment.emplace_back(variable);
        }
    }
    std::string names;
    for (const NamedFd& fd : fds) {
        names += (names.empty() ? "" : ":") + fd.name;
    }
    environment.push_back("LISTEN_PID=" + std::to_string(::getpid()));
    environment.push_back("LISTEN_FDS=" + std::to_string(fds.size()));
    environment.push_back("LISTEN_FDNAMES=" + names);
    std::vector<char*> envp;
    for (std::string& variable : environment) {
        envp.push_back(variable.data());
    }
    envp.push_back(nullptr);
    std::vector<std::string> arguments = image.argv;
    std::vector<char*> argv;
    for (std::string& argument : arguments) {
        argv.push_back(argument.data());
    }
    argv.push_back(nullptr);

    // The passed descriptors go to first..end-1. What sits there now (the event loop's own
    // descriptors, sockets) is set aside above end, and the passed ones that sit there are
    // copied above end first, so that nothing is lost if execve fails.
    const int end = first_passed_fd + static_cast<int>(fds.size());
    std::vector<int> sources(fds.size(), -1);
    struct SetAside {
        int target;
        int copy;
        int flags;
    };
    std::vector<SetAside> set_aside;
    set_aside.reserve(fds.size());
    int error = 0;
    const auto put_back = [&] {
        for (int target = first_passed_fd; target < end; ++target) {
            auto found = std::find_if(set_aside.begin(), set_aside.end(),
                                      [target](const SetAside& s) { return s.target == target; });
            if (found != set_aside.end()) {
                ::dup2(found->copy, target);
                ::fcntl(target, F_SETFD, found->flags);
            } else {
                ::close(target);
            }
        }
        for (const SetAside& saved : set_aside) {
            ::close(saved.copy);
        }
        for (std::size_t i = 0; i < fds.size(); ++i) {
            if (sources[i] != fds[i].fd && sources[i] >= 0) {
                ::close(sources[i]);
            }
        }
    };
    for (std::size_t i = 0; i < fds.size() && error == 0; ++i) {
        sources[i] = fds[i].fd < end ? ::fcntl(fds[i].fd, F_DUPFD_CLOEXEC, end) : fds[i].fd;
        if (sources[i] < 0) {
            error = errno;
        }
    }
    for (int target = first_passed_fd; target < end && error == 0; ++target) {
        const int flags = ::fcntl(target, F_GETFD);
        if (flags < 0) {
            continue;  // free
        }
        const int copy = ::fcntl(target, F_DUPFD_CLOEXEC, end);
        if (copy < 0) {
            error = errno;
            break;
        }
        set_aside.push_back({target, copy, flags});
    }
    if (error != 0) {
        // Nothing has moved yet: only the copies go.
        for (const SetAside& saved : set_aside) {
            ::close(saved.copy);
        }
        for (std::size_t i = 0; i < fds.size(); ++i) {
            if (sources[i] >= 0 && sources[i] != fds[i].fd) {
                ::close(sources[i]);
            }
        }
        return "cannot move the descriptors to pass: " + errno_text(error);
    }
    for (std::size_t i = 0; i < fds.size() && error == 0; ++i) {
        // dup2 leaves FD_CLOEXEC clear on the target: exactly these are inherited.
        if (::dup2(sources[i], first_passed_fd + static_cast<int>(i)) < 0) {
            error = errno;
        }
    }
    if (error == 0) {
        ::close_range(static_cast<unsigned int>(end), ~0U, CLOSE_RANGE_CLOEXEC);
        const sigset_t signals = restart_signals();
        sigset_t before;
        ::sigprocmask(SIG_BLOCK, &signals, &before);
        ::execve(image.path.c_str(), argv.data(), envp.data());
        error = errno;
        ::sigprocmask(SIG_SETMASK, &before, nullptr);
    }
    put_back();
    return errno_text(error);
}

bool systemd_notify_available() {
    const char* socket = std::getenv("NOTIFY_SOCKET");
    return socket != nullptr && *socket != '\0';
}

void notify_systemd([[maybe_unused]] const std::string& state) {
#ifdef EPMDX_HAVE_SYSTEMD
    sd_notify(0, state.c_str());
#endif
}

std::string store_in_fd_store([[maybe_unused]] std::span<const int> registrations,
                              [[maybe_unused]] int state_fd) {
#ifdef EPMDX_HAVE_SYSTEMD
    const std::string registration_message =
        "FDSTORE=1\nFDNAME=" + std::string(registration_fd_name);
    for (std::size_t first = 0; first < registrations.size(); first += fd_store_batch) {
        const std::size_t n = std::min(fd_store_batch, registrations.size() - first);
        const int r =
            sd_pid_notify_with_fds(0, 0, registration_message.c_str(), registrations.data() + first,
                                   static_cast<unsigned>(n));
        if (r <= 0) {
            return "storing registrations: " + (r == 0 ? "no NOTIFY_SOCKET" : errno_text(-r));
        }
    }
    const std::string state_message = "FDSTORE=1\nFDNAME=" + std::string(state_fd_name);
    int r = sd_pid_notify_with_fds(0, 0, state_message.c_str(), &state_fd, 1);
    if (r <= 0) {
        return "storing the state: " + (r == 0 ? "no NOTIFY_SOCKET" : errno_text(-r));
    }
    // systemd reads notifications asynchronously: exiting before it has would lose them.
    constexpr std::uint64_t five_seconds_us = 5'000'000;
    r = sd_notify_barrier(0, five_seconds_us);
    if (r < 0) {
        return "waiting for systemd to take the descriptors: " + errno_text(-r);
    }
    return {};
#else
    return "this epmdx was built without systemd support";
#endif
}

void clear_fd_store() {
    notify_systemd("FDSTOREREMOVE=1\nFDNAME=" + std::string(registration_fd_name));
    notify_systemd("FDSTOREREMOVE=1\nFDNAME=" + std::string(state_fd_name));
}

}  // namespace epmdx::server
