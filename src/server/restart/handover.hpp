// SPDX-License-Identifier: Apache-2.0
// The I/O of handing registrations over to the next process (docs/differences.md A-RESTART):
// descriptors inherited the systemd way (LISTEN_FDS), the state blob in a sealed memfd, checks
// of a handed-over socket, systemd's descriptor store, and re-executing the binary in place.
// What the blob holds and what is restored from it is decided in handover_state.hpp. The
// Linux-only calls are the platform layer's (src/platform/): where it falls back to POSIX, the
// state cannot be sealed or read and the binary to re-execute is not known, so SIGHUP is
// refused and a handed-over state dropped.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace epmdx::server {

// LISTEN_FDNAMES names. Any other name is a listening socket from systemd's socket unit.
inline constexpr std::string_view state_fd_name = "epmdx-state";
// A Unix socket with the registration sockets queued in it (bundle_registrations).
inline constexpr std::string_view bundle_fd_name = "epmdx-registrations";
inline constexpr std::string_view listener_fd_name = "epmdx-listen";
// The kernel's limit on descriptors in one message (SCM_MAX_FD).
inline constexpr std::size_t descriptors_per_message = 253;

struct NamedFd {
    int fd = -1;
    std::string name;
};

// What LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES pass to this process, sorted by name. Each
// descriptor gets FD_CLOEXEC, and the variables are removed from the environment.
struct InheritedDescriptors {
    std::vector<NamedFd> systemd_listeners;  // from the socket unit, in order
    std::vector<int> handed_listeners;       // epmdx-listen
    std::vector<int> bundles;                // epmdx-registrations
    std::vector<int> states;                 // epmdx-state: one, normally

    // Something a previous epmdx process handed over.
    bool from_previous_process() const {
        return !handed_listeners.empty() || !bundles.empty() || !states.empty();
    }
};
InheritedDescriptors take_inherited_descriptors();

// The blob in a memfd sealed against any change; -1 and error set on failure.
int seal_state(std::string_view blob, std::string& error);
// The contents of a sealed memfd; nullopt and error set if fd is not one or cannot be read.
std::optional<std::vector<std::uint8_t>> read_sealed_state(int fd, std::string& error);

// A handed-over registration socket: its identity if it is a connected TCP socket.
struct RegistrationSocket {
    std::uint64_t inode = 0;
    std::string problem;  // empty if usable
};
RegistrationSocket check_registration_socket(int fd);
// check_registration_socket for each of fds, the answers in the same order: on several threads
// when there are thousands.
std::vector<RegistrationSocket> check_registration_sockets(std::span<const int> fds);

// The binary to re-execute on SIGHUP, fixed at start: the path /proc/self/exe resolves to then
// (an upgrade replaces that file) and the arguments the process was started with.
struct ExecImage {
    std::string path;
    std::vector<std::string> argv;
    unsigned char elf_class = 0;  // this process's own, from its binary at start
    std::uint16_t elf_machine = 0;
};
// nullopt and error set if this process's own binary or arguments cannot be read, or this build
// cannot re-execute (the error then says so).
std::optional<ExecImage> capture_exec_image(std::string& error);
// Why the binary now at image.path cannot replace this process, or "" if it can.
std::string check_exec_image(const ExecImage& image);
// Signals are blocked from just before execve until the new image handles them (a SIGHUP or
// SIGTERM in between would otherwise end it): this unblocks them, once it does.
void unblock_restart_signals();
// Re-executes image with fds passed as LISTEN_FDS (moved to 3, 4, ... in order) and named in
// LISTEN_FDNAMES; nothing else is inherited. Returns only if that failed, with the reason; every
// descriptor is then as it was before.
std::string reexec(const ExecImage& image, std::span<const NamedFd> fds);

// The registration sockets queued in Unix sockets, so that they pass as a few descriptors
// whatever their number: LISTEN_FDNAMES stays short, and systemd's store (which compares each
// descriptor it takes with every one it holds) gets a handful. Never blocks.
struct Bundles {
    std::vector<int> fds;  // the receiving ends, close-on-exec
    std::size_t sent = 0;  // registrations in them: the first `sent`
    std::string error;     // why the others are not, if any are not
};
Bundles bundle_registrations(std::span<const int> registrations);
// The registration sockets queued in bundles, which are closed. problems: what went wrong, one
// line each (what it cost is seen when the state's entries are matched with the sockets).
std::vector<int> unbundle_registrations(std::span<const int> bundles,
                                        std::vector<std::string>& problems);

// Under systemd (NOTIFY_SOCKET set): whether there is a manager to notify at all.
bool systemd_notify_available();
void notify_systemd(const std::string& state);
// Stores the bundles (FDNAME=epmdx-registrations) and then the state memfd (FDNAME=epmdx-state)
// in systemd's descriptor store and waits until systemd has read them. Returns "" or why not.
std::string store_in_fd_store(std::span<const int> bundles, int state_fd);
// Empties the store of every name it may hold: what it held has been taken back.
void clear_fd_store();

}  // namespace epmdx::server
