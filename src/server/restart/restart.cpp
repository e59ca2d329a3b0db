// SPDX-License-Identifier: Apache-2.0
// Registrations that outlive the process (docs/differences.md A-RESTART): taking them back at
// start, handing them to systemd's descriptor store on SIGTERM, and re-executing in place on
// SIGHUP. The blob and the decisions are in handover_state.cpp, the system calls in handover.cpp.
#include <unistd.h>

#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <csignal>

#include "server/core/server.hpp"

namespace epmdx::server {

void Server::restore(const HandoverState* state, const std::vector<int>& registration_fds) {
    std::vector<OfferedSocket> offered;
    std::size_t dropped = 0;
    for (const int fd : registration_fds) {
        RegistrationSocket socket = check_registration_socket(fd);
        if (!socket.problem.empty()) {
            log_.printf(0, "handover: dropped descriptor %d: %s", fd, socket.problem.c_str());
            ::close(fd);
            ++dropped;
            continue;
        }
        offered.push_back({fd, socket.inode});
    }
    const RestorePlan plan = plan_restore(state, offered, [this](std::string_view name) {
        const Registry::ActiveNode* node = registry_.find(name);
        return node != nullptr && node->is_static;
    });
    for (const std::string& line : plan.dropped) {
        log_.printf(0, "handover: dropped %s", line.c_str());
    }
    dropped += plan.dropped.size();
    for (const int fd : plan.to_close) {
        ::close(fd);
    }
    // Oldest first, so that the newest ends up first, as it was.
    for (auto kept = plan.kept.rbegin(); kept != plan.kept.rend(); ++kept) {
        const HandoverState::Registration& entry = state->registrations[kept->registration];
        std::unique_ptr<Connection> conn = make_connection(kept->fd, entry.peer);
        if (!conn) {
            log_.printf(0, "handover: dropped registration %s: its socket cannot be used",
                        entry.node.name.c_str());
            ++dropped;
            continue;
        }
        admission_.leave_pending(*conn);
        conn->socket_inode = entry.socket_inode;
        const std::string& name = entry.node.name;
        registry_.restore(entry.node, entry.counter, kept->fd, conn.get());
        metrics_.registered();
        log_.printf(1, "handover: kept %s at port %d, creation %u", name.c_str(), entry.node.port,
                    Registry::creation_for(entry.counter, entry.node.highest_version));
        unwatched_.push_back({std::move(conn), name});
    }
    std::size_t old_kept = 0;
    for (const std::size_t index : plan.old_kept) {
        const HandoverState::OldEntry& entry = state->old[index];
        old_kept +=
            registry_.restore_old({entry.name, entry.port, entry.fd, entry.counter}) ? 1 : 0;
    }
    log_.printf(0,
                "took over %zu registrations and %zu old/unused entries from the previous "
                "process; dropped %zu",
                registry_.registered_count(), old_kept, dropped);
    log_node_table();
    // Serve first, watch later: starting a wait costs two system calls per socket (non-blocking
    // mode, re-arming), tens of milliseconds for tens of thousands of registrations. Until its
    // wait starts, a registration is served and can be stopped, probed by a new ALIVE2 for its
    // name, shut down or handed over like any other: its socket is open and already with the
    // event loop (assign added it), and a wait started on a socket that became readable or was
    // closed meanwhile completes at once.
    asio::post(io_, [this] { watch_restored(); });
}

void Server::watch_restored() {
    constexpr std::size_t restored_watch_chunk = 256;
    for (std::size_t i = 0; i < restored_watch_chunk && !unwatched_.empty(); ++i) {
        UnwatchedRegistration next = std::move(unwatched_.back());
        unwatched_.pop_back();
        hold_registration(std::move(next.conn), std::move(next.name));
    }
    if (!unwatched_.empty()) {
        asio::post(io_, [this] { watch_restored(); });
    }
}

void Server::start_accepting() {
    for (Acceptor& acceptor : acceptors_) {
        // The accept loop calls accept itself and must never block in it.
        std::error_code ignored;
        acceptor.non_blocking(true, ignored);
        spawn(accept_loop(acceptor));
    }
}

void Server::enable_reexec(ExecImage image, std::vector<std::string> listener_names) {
    exec_image_ = std::move(image);
    listener_names_ = std::move(listener_names);
}

HandoverState Server::state_to_hand_over(std::vector<int>& registration_fds) const {
    HandoverState state;
    state.registrations.reserve(registry_.registered_count());
    registration_fds.reserve(registry_.registered_count());
    registry_.for_each_active([&](const Registry::ActiveNode& node) {
        if (node.holder == nullptr || !node.holder->socket.is_open()) {
            return;  // a static entry: it comes from the file again
        }
        state.registrations.push_back(
            {node.info, node.counter, node.holder->socket_inode, node.holder->peer});
        registration_fds.push_back(node.holder->socket.native_handle());
    });
    registry_.for_each_old([&](const Registry::OldNode& node) {
        state.old.push_back({node.name, node.port, node.fd, node.counter});
    });
    return state;
}

asio::awaitable<void> Server::drain_and_hand_over(HandoverPath path) {
    // New connections wait in the listeners' backlog, which the next process gets; requests
    // already accepted get a moment to be answered.
    restarting_ = true;
    std::error_code ignored;
    for (Acceptor& acceptor : acceptors_) {
        acceptor.cancel(ignored);
    }
    constexpr auto drain_limit = std::chrono::milliseconds(100);
    const auto give_up = Clock::now() + drain_limit;
    asio::steady_timer tick(io_);
    do {
        tick.expires_after(std::chrono::milliseconds(1));
        co_await tick.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    } while ((accept_loops_ > 0 || admission_.oldest() != nullptr) && Clock::now() < give_up &&
             !shutting_down_);
    // A SIGTERM during a SIGHUP's drain decides: it hands over (or shuts down) itself.
    if (shutting_down_ || (path == HandoverPath::reexec && terminating_)) {
        co_return;
    }
    while (Admission::Entry* oldest = admission_.oldest()) {
        drop_pending(static_cast<Connection&>(*oldest), nullptr);
    }
    if (path == HandoverPath::fd_store) {
        hand_over_to_fd_store();
        shutdown();
    } else {
        reexec_in_place();
    }
}

void Server::hand_over_to_fd_store() {
    std::vector<int> fds;
    const HandoverState state = state_to_hand_over(fds);
    std::string error;
    const int state_fd = seal_state(encode_handover_state(state), error);
    Bundles bundles;
    if (state_fd >= 0) {
        bundles = bundle_registrations(fds);
        if (!bundles.error.empty()) {
            log_.printf(0, "handing over %zu of %zu registrations: %s", bundles.sent, fds.size(),
                        bundles.error.c_str());
        }
        error = store_in_fd_store(bundles.fds, state_fd);
        ::close(state_fd);
        for (const int bundle : bundles.fds) {
            ::close(bundle);
        }
    }
    if (!error.empty()) {
        log_.printf(0, "cannot hand the registrations over to systemd: %s", error.c_str());
    } else {
        // Closing ours then sends no FIN: systemd holds a copy of each.
        log_.printf(0, "handed %zu registrations over to systemd's descriptor store", bundles.sent);
        handed_over_ = bundles.sent == fds.size();
    }
}

void Server::wait_for_reload_signal() {
    reload_signal_.async_wait([this](const std::error_code& error, int) {
        if (error || shutting_down_) {
            return;
        }
        restart_in_place();
    });
}

void Server::refuse_reexec(std::string reason) {
    no_reexec_reason_ = std::move(reason);
}

void Server::restart_in_place() {
    if (!exec_image_) {
        log_.printf(0,
                    "got SIGHUP, but will not re-execute: %s; still serving with %zu registrations",
                    no_reexec_reason_.c_str(), registry_.registered_count());
        wait_for_reload_signal();
        return;
    }
    const ExecImage& image = *exec_image_;
    if (std::string problem = check_exec_image(image); !problem.empty()) {
        log_.printf(0, "got SIGHUP, but cannot re-execute %s: %s; still serving",
                    image.path.c_str(), problem.c_str());
        wait_for_reload_signal();
        return;
    }
    log_.printf(0, "got SIGHUP, re-executing %s with %zu registrations", image.path.c_str(),
                registry_.registered_count());
    if (options_.systemd) {
        notify_systemd("RELOADING=1");
    }
    spawn(drain_and_hand_over(HandoverPath::reexec));
}

void Server::reexec_in_place() {
    const ExecImage& image = *exec_image_;
    std::vector<int> registration_fds;
    const HandoverState state = state_to_hand_over(registration_fds);
    std::string error;
    const int state_fd = seal_state(encode_handover_state(state), error);
    if (state_fd >= 0) {
        const Bundles bundles = bundle_registrations(registration_fds);
        if (!bundles.error.empty()) {
            log_.printf(0, "handing over %zu of %zu registrations: %s", bundles.sent,
                        registration_fds.size(), bundles.error.c_str());
        }
        std::vector<NamedFd> passed;
        passed.reserve(acceptors_.size() + bundles.fds.size() + 1);
        for (std::size_t i = 0; i < acceptors_.size(); ++i) {
            passed.push_back({acceptors_[i].native_handle(), listener_names_[i]});
        }
        for (const int bundle : bundles.fds) {
            passed.push_back({bundle, std::string(bundle_fd_name)});
        }
        passed.push_back({state_fd, std::string(state_fd_name)});
        error = reexec(image, passed);  // returns only if it failed
        ::close(state_fd);
        for (const int bundle : bundles.fds) {
            ::close(bundle);  // the registrations in them are ours still
        }
    }
    log_.printf(0, "cannot re-execute %s: %s; still serving", image.path.c_str(), error.c_str());
    if (options_.systemd) {
        notify_systemd("READY=1");
    }
    restarting_ = false;
    start_accepting();
    wait_for_reload_signal();
}

}  // namespace epmdx::server
