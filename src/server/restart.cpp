// Registrations that outlive the process (docs/differences.md A-RESTART): taking them back at
// start, handing them to systemd's descriptor store on SIGTERM, and re-executing in place on
// SIGHUP. The blob and the decisions are in handover_state.cpp, the system calls in handover.cpp.
#include <unistd.h>

#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <csignal>

#include "server.hpp"

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
        // The accept loop calls accept4() itself and must never block in it.
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

void Server::hand_over_to_fd_store() {
    std::vector<int> fds;
    const HandoverState state = state_to_hand_over(fds);
    std::string error;
    const int state_fd = seal_state(encode_handover_state(state), error);
    if (state_fd >= 0) {
        error = store_in_fd_store(fds, state_fd);
        ::close(state_fd);
    }
    if (!error.empty()) {
        log_.printf(0, "cannot hand the registrations over to systemd: %s", error.c_str());
        return;
    }
    // Closing ours then sends no FIN: systemd holds a copy of each.
    log_.printf(0, "handed %zu registrations over to systemd's descriptor store", fds.size());
}

void Server::wait_for_reload_signal() {
    reload_signal_.async_wait([this](const std::error_code& error, int) {
        if (error || shutting_down_) {
            return;
        }
        spawn(restart_in_place());
    });
}

asio::awaitable<void> Server::restart_in_place() {
    const ExecImage& image = *exec_image_;
    if (std::string problem = check_exec_image(image); !problem.empty()) {
        log_.printf(0, "got SIGHUP, but cannot re-execute %s: %s; still serving",
                    image.path.c_str(), problem.c_str());
        wait_for_reload_signal();
        co_return;
    }
    log_.printf(0, "got SIGHUP, re-executing %s with %zu registrations", image.path.c_str(),
                registry_.registered_count());
    if (options_.systemd) {
        notify_systemd("RELOADING=1");
    }
    // Stop accepting (new connections wait in the listeners' backlog, which the next process
    // inherits) and give requests already accepted a moment to be answered.
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
    if (shutting_down_) {
        co_return;
    }
    while (Admission::Entry* oldest = admission_.oldest()) {
        drop_pending(static_cast<Connection&>(*oldest), nullptr);
    }

    std::vector<int> registration_fds;
    const HandoverState state = state_to_hand_over(registration_fds);
    std::string error;
    const int state_fd = seal_state(encode_handover_state(state), error);
    if (state_fd >= 0) {
        std::vector<NamedFd> passed;
        passed.reserve(acceptors_.size() + registration_fds.size() + 1);
        for (std::size_t i = 0; i < acceptors_.size(); ++i) {
            passed.push_back({acceptors_[i].native_handle(), listener_names_[i]});
        }
        for (const int fd : registration_fds) {
            passed.push_back({fd, std::string(registration_fd_name), true});
        }
        passed.push_back({state_fd, std::string(state_fd_name)});
        error = reexec(image, passed);  // returns only if it failed
        ::close(state_fd);
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
