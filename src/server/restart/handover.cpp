// SPDX-License-Identifier: Apache-2.0
#include "server/restart/handover.hpp"

#include <elf.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <system_error>
#include <thread>
#include <utility>

#include "platform/platform.hpp"
#include "server/config/values.hpp"
#include "server/core/connection.hpp"
#include "server/restart/handover_state.hpp"

#ifdef EPMDX_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

extern char** environ;  // NOLINT(readability-identifier-naming): POSIX's name

namespace epmdx::server {
namespace {

constexpr int first_passed_fd = 3;  // SD_LISTEN_FDS_START

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
    if (!file.is_open()) {
        error = "cannot be read";
        return std::nullopt;
    }
    unsigned char header[EI_NIDENT + 4] = {};
    file.read(reinterpret_cast<char*>(header), sizeof header);
    const auto got = static_cast<std::size_t>(file.gcount());
    if (got < SELFMAG || std::memcmp(header, ELFMAG, SELFMAG) != 0) {
        error = "not an ELF binary";
        return std::nullopt;
    }
    if (got < sizeof header) {
        error = "too short to be an ELF binary";
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
    const char* names_variable = std::getenv("LISTEN_FDNAMES");
    const std::string names_text = names_variable ? names_variable : "";
    const std::vector<std::string_view> names =
        names_variable ? split(names_text, ':') : std::vector<std::string_view>{};
    ::unsetenv("LISTEN_PID");
    ::unsetenv("LISTEN_FDS");
    ::unsetenv("LISTEN_FDNAMES");
    if (!pid || !count || *pid != ::getpid() || *count > INT_MAX - first_passed_fd) {
        return result;  // meant for another process, as sd_listen_fds decides
    }
    if (*count == 0) {
        return result;
    }
    // All at once (one call on Linux), however many there are.
    platform::set_close_on_exec(first_passed_fd, first_passed_fd + static_cast<int>(*count) - 1);
    for (int i = 0; i < static_cast<int>(*count); ++i) {
        const int fd = first_passed_fd + i;
        const std::string_view name =
            static_cast<std::size_t>(i) < names.size() ? names[i] : "unknown";
        if (name == state_fd_name) {
            result.states.push_back(fd);
        } else if (name == bundle_fd_name) {
            result.bundles.push_back(fd);
        } else if (name == listener_fd_name) {
            result.handed_listeners.push_back(fd);
        } else {
            result.systemd_listeners.push_back({fd, std::string(name)});
        }
    }
    return result;
}

int seal_state(std::string_view blob, std::string& error) {
    return platform::seal_bytes(blob, error);
}

std::optional<std::vector<std::uint8_t>> read_sealed_state(int fd, std::string& error) {
    return platform::read_sealed_bytes(fd, handover_max_bytes, error);
}

RegistrationSocket check_registration_socket(int fd) {
    // The usual case in two calls (on Linux): an established TCP connection. (The peer comes
    // with the state.)
    RegistrationSocket socket;
    const std::optional<bool> established = platform::tcp_established(fd);
    if (established.value_or(false)) {
        socket.inode = socket_inode(fd);
        return socket;
    }
    // Otherwise say what it is instead.
    const auto type = platform::socket_option<int>(fd, SOL_SOCKET, SO_TYPE);
    const std::optional<int> domain = platform::socket_family(fd);
    if (!type || !domain) {
        socket.problem = "not a socket";
    } else if (*type != SOCK_STREAM || (*domain != AF_INET && *domain != AF_INET6) ||
               !established) {
        socket.problem = "not a TCP socket";
    } else if (platform::socket_option<int>(fd, SOL_SOCKET, SO_ACCEPTCONN).value_or(0) != 0) {
        socket.problem = "a listening socket";
    } else {
        socket.problem = "its connection is no longer established (the peer closed it)";
    }
    return socket;
}

std::vector<RegistrationSocket> check_registration_sockets(std::span<const int> fds) {
    // Two calls per socket, microseconds each in a virtual machine: at tens of thousands of
    // registrations the largest part of a restart, before anything is served. The calls are
    // independent, so the cores share them. (One sock_diag dump of the established connections
    // was measured instead: it lists the nodes' ends too and cost as much as the calls it saved.)
    std::vector<RegistrationSocket> checked(fds.size());
    const auto check_part = [&checked, fds](std::size_t from, std::size_t to) {
        for (std::size_t i = from; i < to; ++i) {
            checked[i] = check_registration_socket(fds[i]);
        }
    };
    constexpr std::size_t least_per_thread = 2048;  // fewer do not repay starting a thread
    constexpr std::size_t most_threads = 8;
    const std::size_t threads = std::clamp<std::size_t>(
        fds.size() / least_per_thread, 1,
        std::min<std::size_t>(most_threads, std::max(1U, std::thread::hardware_concurrency())));
    const std::size_t share = (fds.size() + threads - 1) / threads;
    std::vector<std::thread> helpers;
    std::size_t from = share;
    for (; from < fds.size(); from += share) {
        try {
            helpers.emplace_back(check_part, from, std::min(fds.size(), from + share));
        } catch (const std::system_error&) {
            break;  // no more threads to be had
        }
    }
    check_part(0, std::min(share, fds.size()));
    check_part(from, fds.size());  // what no thread took: nothing if all started
    for (std::thread& helper : helpers) {
        helper.join();
    }
    return checked;
}

// A bundle is a Unix datagram socket pair: each message is one datagram, so every receive
// returns exactly the descriptors one send queued, and the receiving end never reports a hangup
// when the sending end closes (as a stream or seqpacket socket would), so nothing that polls the
// stored descriptor takes it for dead. Each message carries its descriptor count, so that a
// truncated receive can say how many were lost.
Bundles bundle_registrations(std::span<const int> registrations) {
    Bundles bundles;
    int sender = -1;
    std::size_t queued_here = 0;  // in the current pair
    while (bundles.sent < registrations.size()) {
        if (sender < 0) {
            int pair[2];
            if (platform::open_socket_pair(SOCK_DGRAM, pair) != 0) {
                bundles.error = "socketpair: " + errno_text(errno);
                break;
            }
            // Queued messages are charged to the sender: as much room as the kernel allows
            // (net.core.wmem_max), so that one pair holds tens of thousands of descriptors.
            const int most = INT_MAX / 2;
            ::setsockopt(pair[0], SOL_SOCKET, SO_SNDBUF, &most, sizeof most);
            sender = pair[0];
            bundles.fds.push_back(pair[1]);
            queued_here = 0;
        }
        const std::size_t n =
            std::min(descriptors_per_message, registrations.size() - bundles.sent);
        auto count = static_cast<std::uint16_t>(n);
        iovec part{&count, sizeof count};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * descriptors_per_message)] = {};
        msghdr header{};
        header.msg_iov = &part;
        header.msg_iovlen = 1;
        header.msg_control = control;
        header.msg_controllen = CMSG_SPACE(sizeof(int) * n);
        cmsghdr* rights = CMSG_FIRSTHDR(&header);
        rights->cmsg_level = SOL_SOCKET;
        rights->cmsg_type = SCM_RIGHTS;
        rights->cmsg_len = CMSG_LEN(sizeof(int) * n);
        std::memcpy(CMSG_DATA(rights), registrations.data() + bundles.sent, sizeof(int) * n);
        if (::sendmsg(sender, &header, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0) {
            bundles.sent += n;
            ++queued_here;
            continue;
        }
        const int error = errno;
        if (error == EINTR) {
            continue;
        }
        ::close(sender);
        sender = -1;
        if ((error == EAGAIN || error == EWOULDBLOCK || error == ENOBUFS) && queued_here > 0) {
            continue;  // this pair is full: the next one
        }
        // ETOOMANYREFS: more descriptors in flight than RLIMIT_NOFILE allows this user.
        bundles.error = "queueing registrations: " + errno_text(error);
        if (queued_here == 0) {
            ::close(bundles.fds.back());
            bundles.fds.pop_back();
        }
        break;
    }
    if (sender >= 0) {
        ::close(sender);  // what it queued stays readable at the other end
    }
    return bundles;
}

std::vector<int> unbundle_registrations(std::span<const int> bundles,
                                        std::vector<std::string>& problems) {
    std::vector<int> fds;
    for (const int bundle : bundles) {
        const std::optional<int> domain = platform::socket_family(bundle);
        const auto type = platform::socket_option<int>(bundle, SOL_SOCKET, SO_TYPE);
        if (!domain || !type || *domain != AF_UNIX || *type != SOCK_DGRAM) {
            problems.push_back("dropped bundle descriptor " + std::to_string(bundle) +
                               ": not a Unix datagram socket");
            ::close(bundle);
            continue;
        }
        std::size_t lost = 0;
        for (;;) {
            std::uint16_t count = 0;
            iovec part{&count, sizeof count};
            alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * descriptors_per_message)];
            msghdr header{};
            header.msg_iov = &part;
            header.msg_iovlen = 1;
            header.msg_control = control;
            header.msg_controllen = sizeof control;
            const ssize_t n = platform::receive_with_descriptors(bundle, header);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0) {
                if (errno != EAGAIN && errno != EWOULDBLOCK) {
                    problems.push_back("reading bundle descriptor " + std::to_string(bundle) +
                                       ": " + errno_text(errno));
                }
                break;  // all read
            }
            std::size_t received = 0;
            for (cmsghdr* c = CMSG_FIRSTHDR(&header); c != nullptr; c = CMSG_NXTHDR(&header, c)) {
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                    const std::size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                    const std::size_t at = fds.size();
                    fds.resize(at + k);
                    std::memcpy(fds.data() + at, CMSG_DATA(c), sizeof(int) * k);
                    received += k;
                }
            }
            if ((header.msg_flags & MSG_CTRUNC) != 0) {
                // The kernel closed what did not fit (RLIMIT_NOFILE reached, or a bigger
                // message than any epmdx sends).
                lost += n == sizeof count && count > received ? count - received : 1;
            }
        }
        if (lost > 0) {
            problems.push_back("bundle descriptor " + std::to_string(bundle) + ": " +
                               std::to_string(lost) +
                               " registration sockets lost in transit (truncated receive)");
        }
        ::close(bundle);
    }
    return fds;
}

std::optional<ExecImage> capture_exec_image(std::string& error) {
    std::optional<platform::CommandLine> command = platform::own_command_line(error);
    if (!command) {
        return std::nullopt;
    }
    ExecImage image;
    image.path = std::move(command->executable);
    image.argv = std::move(command->argv);
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

namespace {

// Which descriptor goes to each target first..first+n-1 (each is named, so any order does). One
// that is there already keeps its place, so that even with tens of thousands of registrations
// only the few others in that range (the event loop's own descriptors) are moved.
std::vector<const NamedFd*> assign_targets(std::span<const NamedFd> fds) {
    const int end = first_passed_fd + static_cast<int>(fds.size());
    std::vector<const NamedFd*> slots(fds.size(), nullptr);
    std::vector<const NamedFd*> to_move;
    for (const NamedFd& fd : fds) {
        if (fd.fd >= first_passed_fd && fd.fd < end) {
            slots[static_cast<std::size_t>(fd.fd - first_passed_fd)] = &fd;
        } else {
            to_move.push_back(&fd);
        }
    }
    for (const NamedFd*& slot : slots) {
        if (slot == nullptr) {
            slot = to_move.back();
            to_move.pop_back();
        }
    }
    return slots;
}

// execve's argv and envp, built before the first descriptor moves (nothing allocates after):
// the environment without the LISTEN_ variables, then those that name `slots`.
class ExecVectors {
  public:
    ExecVectors(const ExecImage& image, std::span<const NamedFd* const> slots)
        : arguments_(image.argv) {
        for (char** entry = environ; *entry != nullptr; ++entry) {
            const std::string_view variable(*entry);
            if (!variable.starts_with("LISTEN_PID=") && !variable.starts_with("LISTEN_FDS=") &&
                !variable.starts_with("LISTEN_FDNAMES=")) {
                environment_.emplace_back(variable);
            }
        }
        std::string names;
        for (const NamedFd* slot : slots) {
            names += names.empty() ? "" : ":";
            names += slot->name;
        }
        environment_.push_back("LISTEN_PID=" + std::to_string(::getpid()));
        environment_.push_back("LISTEN_FDS=" + std::to_string(slots.size()));
        environment_.push_back("LISTEN_FDNAMES=" + names);
        envp_ = pointers(environment_);
        argv_ = pointers(arguments_);
    }
    ExecVectors(const ExecVectors&) = delete;
    ExecVectors& operator=(const ExecVectors&) = delete;
    char* const* argv() const { return argv_.data(); }
    char* const* envp() const { return envp_.data(); }

  private:
    static std::vector<char*> pointers(std::vector<std::string>& strings) {
        std::vector<char*> out;
        out.reserve(strings.size() + 1);
        for (std::string& text : strings) {
            out.push_back(text.data());
        }
        out.push_back(nullptr);
        return out;
    }
    std::vector<std::string> arguments_;
    std::vector<std::string> environment_;
    std::vector<char*> argv_;
    std::vector<char*> envp_;
};

// What one target held before the move: its flags, and a copy if it had to make room.
struct TargetBefore {
    int flags = -1;  // -1: the target was free
    int copy = -1;
};

// Puts slots[i] at target first+i, in order, saving in `before` what each target held (copies
// go above `end`). Returns how many are in place and, if not all, the error that stopped it.
std::pair<std::size_t, int> move_to_targets(std::span<const NamedFd* const> slots, int end,
                                            std::vector<TargetBefore>& before) {
    for (std::size_t done = 0; done < slots.size(); ++done) {
        const int target = first_passed_fd + static_cast<int>(done);
        TargetBefore& saved = before[done];
        if (slots[done]->fd == target) {
            // dup2 would leave it as it is: clear FD_CLOEXEC by hand. Every descriptor of this
            // process has it (the platform layer and take_inherited_descriptors set it).
            saved.flags = FD_CLOEXEC;
            if (::fcntl(target, F_SETFD, 0) != 0) {
                return {done, errno};
            }
            continue;
        }
        saved.flags = ::fcntl(target, F_GETFD);
        if (saved.flags >= 0) {
            saved.copy = ::fcntl(target, F_DUPFD_CLOEXEC, end);
            if (saved.copy < 0) {
                return {done, errno};
            }
        }
        // dup2 leaves FD_CLOEXEC clear on the target: exactly the passed ones are inherited.
        if (::dup2(slots[done]->fd, target) < 0) {
            const int error = errno;
            if (saved.copy >= 0) {
                ::close(saved.copy);
                saved.copy = -1;
            }
            return {done, error};
        }
    }
    return {slots.size(), 0};
}

// Undoes move_to_targets: targets first..first+done-1, and the one that failed midway.
void restore_targets(std::span<const NamedFd* const> slots, std::size_t done,
                     std::span<const TargetBefore> before) {
    for (std::size_t i = 0; i < std::min(done + 1, slots.size()); ++i) {
        const int target = first_passed_fd + static_cast<int>(i);
        const TargetBefore& saved = before[i];
        if (slots[i]->fd == target) {
            if (saved.flags >= 0) {
                ::fcntl(target, F_SETFD, saved.flags);
            }
        } else if (saved.copy >= 0) {
            ::dup2(saved.copy, target);
            ::fcntl(target, F_SETFD, saved.flags);
            ::close(saved.copy);
        } else if (saved.flags < 0 && i < done) {
            ::close(target);  // it was free
        }
    }
}

}  // namespace

std::string reexec(const ExecImage& image, std::span<const NamedFd> fds) {
    const std::vector<const NamedFd*> slots = assign_targets(fds);
    const ExecVectors vectors(image, slots);
    const int end = first_passed_fd + static_cast<int>(fds.size());
    std::vector<TargetBefore> before(fds.size());
    auto [done, error] = move_to_targets(slots, end, before);
    if (done == slots.size()) {
        platform::set_close_on_exec(end, -1);
        const sigset_t signals = restart_signals();
        sigset_t mask_before;
        ::sigprocmask(SIG_BLOCK, &signals, &mask_before);
        ::execve(image.path.c_str(), vectors.argv(), vectors.envp());
        error = errno;
        ::sigprocmask(SIG_SETMASK, &mask_before, nullptr);
    }
    restore_targets(slots, done, before);
    return done < slots.size() ? "cannot move the descriptors to pass: " + errno_text(error)
                               : errno_text(error);
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

std::string store_in_fd_store([[maybe_unused]] std::span<const int> bundles,
                              [[maybe_unused]] int state_fd) {
#ifdef EPMDX_HAVE_SYSTEMD
    // FDPOLL=0: systemd must not watch a bundle for a hangup (it holds the only reference).
    const std::string bundle_message = "FDSTORE=1\nFDPOLL=0\nFDNAME=" + std::string(bundle_fd_name);
    for (std::size_t first = 0; first < bundles.size(); first += descriptors_per_message) {
        const std::size_t n = std::min(descriptors_per_message, bundles.size() - first);
        const int r = sd_pid_notify_with_fds(0, 0, bundle_message.c_str(), bundles.data() + first,
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
    notify_systemd("FDSTOREREMOVE=1\nFDNAME=" + std::string(bundle_fd_name));
    notify_systemd("FDSTOREREMOVE=1\nFDNAME=" + std::string(state_fd_name));
}

}  // namespace epmdx::server
