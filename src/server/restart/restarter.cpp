// SPDX-License-Identifier: Apache-2.0
#include "server/restart/restarter.hpp"

#include <unistd.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <csignal>

namespace epmdx::server {
namespace {

// What is handed over, ready to pass: the state in a sealed memfd and the registration sockets
// in bundles. The descriptors made here are closed when it goes; the registrations in them stay
// this process's until the next one has taken them.
class Package {
  public:
    Package(const Registry& registry, Logger& log) {
        const HandoverState state = snapshot(registry);
        state_fd_ = seal_state(encode_handover_state(state), error_);
        if (state_fd_ < 0) {
            return;
        }
        bundles_ = bundle_registrations(registration_fds_);
        if (!bundles_.error.empty()) {
            log.printf(0, "handing over %zu of %zu registrations: %s", bundles_.sent,
                       registration_fds_.size(), bundles_.error.c_str());
        }
    }
    Package(const Package&) = delete;
    Package& operator=(const Package&) = delete;
    ~Package() {
        if (state_fd_ >= 0) {
            ::close(state_fd_);
        }
        for (const int bundle : bundles_.fds) {
            ::close(bundle);
        }
    }

    bool sealed() const { return state_fd_ >= 0; }
    std::string& error() { return error_; }  // why it could not be sealed, or passed
    int state_fd() const { return state_fd_; }
    const std::vector<int>& bundle_fds() const { return bundles_.fds; }
    std::size_t sent() const { return bundles_.sent; }
    bool complete() const { return bundles_.sent == registration_fds_.size(); }

  private:
    // The registry as the next process needs it, and the descriptors holding registrations.
    HandoverState snapshot(const Registry& registry) {
        HandoverState state;
        state.registrations.reserve(registry.registered_count());
        registration_fds_.reserve(registry.registered_count());
        registry.for_each_active([&](const Registry::ActiveNode& node) {
            if (node.holder == nullptr || node.holder->registration_fd() < 0) {
                return;  // a static entry: it comes from the file again
            }
            state.registrations.push_back(
                {node.info, node.counter, node.holder->socket_inode, node.holder->peer});
            registration_fds_.push_back(node.holder->registration_fd());
        });
        registry.for_each_old([&](const Registry::OldNode& node) {
            state.old.push_back({node.name, node.port, node.fd, node.counter});
        });
        return state;
    }

    std::vector<int> registration_fds_;
    int state_fd_ = -1;
    Bundles bundles_;
    std::string error_;
};

}  // namespace

Restarter::Restarter(asio::io_context& io, const DaemonOptions& options, Logger& log,
                     Server& server)
    : io_(io),
      options_(options),
      log_(log),
      server_(server),
      termination_signals_(io, SIGTERM, SIGINT),
      reload_signal_(io) {
    server_.on_shutdown([this] { stop_signals(); });
}

void Restarter::adopt(const HandoverState* state, const std::vector<int>& registration_fds) {
    std::vector<OfferedSocket> offered;
    std::size_t dropped = 0;
    const std::vector<RegistrationSocket> checked = check_registration_sockets(registration_fds);
    for (std::size_t i = 0; i < registration_fds.size(); ++i) {
        const int fd = registration_fds[i];
        const RegistrationSocket& socket = checked[i];
        if (!socket.problem.empty()) {
            log_.printf(0, "handover: dropped descriptor %d: %s", fd, socket.problem.c_str());
            ::close(fd);
            ++dropped;
            continue;
        }
        offered.push_back({fd, socket.inode});
    }
    const RestorePlan plan = plan_restore(state, offered, [this](std::string_view name) {
        const Registry::ActiveNode* node = server_.registry().find(name);
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
        server_.adopt(kept->fd, entry.node, entry.counter, entry.socket_inode, entry.peer);
        log_.printf(1, "handover: kept %s at port %d, creation %u", entry.node.name.c_str(),
                    entry.node.port,
                    Registry::creation_for(entry.counter, entry.node.highest_version));
    }
    std::size_t old_kept = 0;
    for (const std::size_t index : plan.old_kept) {
        const HandoverState::OldEntry& entry = state->old[index];
        old_kept += server_.adopt_old({entry.name, entry.port, entry.fd, entry.counter}) ? 1 : 0;
    }
    log_.printf(0,
                "took over %zu registrations and %zu old/unused entries from the previous "
                "process; dropped %zu",
                server_.registry().registered_count(), old_kept, dropped);
    server_.log_node_table();
}

void Restarter::enable_reexec(ExecImage image, std::vector<std::string> listener_names) {
    exec_image_ = std::move(image);
    listener_names_ = std::move(listener_names);
}

void Restarter::refuse_reexec(std::string reason) {
    no_reexec_reason_ = std::move(reason);
}

void Restarter::start() {
    termination_signals_.async_wait([this](const std::error_code& error, int signal) {
        if (error) {
            return;
        }
        log_.printf(0, "got signal %d, shutting down", signal);
        if (signal == SIGTERM && options_.systemd && systemd_notify_available()) {
            under_way_ = Path::fd_store;
            asio::co_spawn(io_, drain_and_hand_over(Path::fd_store), asio::detached);
            return;
        }
        server_.shutdown();
    });
    // Even where it cannot restart: SIGHUP's default action would end the daemon.
    std::error_code ignored;
    reload_signal_.add(SIGHUP, ignored);
    wait_for_reload_signal();
    unblock_restart_signals();
}

void Restarter::stop_signals() {
    std::error_code ignored;
    termination_signals_.cancel(ignored);
    reload_signal_.cancel(ignored);
}

void Restarter::wait_for_reload_signal() {
    reload_signal_.async_wait([this](const std::error_code& error, int) {
        if (error || server_.phase() == Server::Phase::stopped) {
            return;
        }
        on_reload();
    });
}

void Restarter::on_reload() {
    const std::size_t registered = server_.registry().registered_count();
    if (!exec_image_) {
        log_.printf(0,
                    "got SIGHUP, but will not re-execute: %s; still serving with %zu registrations",
                    no_reexec_reason_.c_str(), registered);
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
                registered);
    if (options_.systemd) {
        notify_systemd("RELOADING=1");
    }
    under_way_ = Path::reexec;
    asio::co_spawn(io_, drain_and_hand_over(Path::reexec), asio::detached);
}

asio::awaitable<void> Restarter::drain_and_hand_over(Path path) {
    // New connections wait in the listeners' backlog, which the next process gets; requests
    // already accepted get a moment to be answered.
    server_.stop_accepting();
    constexpr auto drain_limit = std::chrono::milliseconds(100);
    const auto give_up = Clock::now() + drain_limit;
    asio::steady_timer tick(io_);
    std::error_code ignored;
    // First one turn of the loop, in which the accept loops' cancelled waits complete: with
    // nothing pending, that is the whole drain. Then a millisecond at a time.
    auto pause = std::chrono::milliseconds(0);
    do {
        tick.expires_after(pause);
        co_await tick.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
        pause = std::chrono::milliseconds(1);
    } while (!server_.drained() && Clock::now() < give_up &&
             server_.phase() == Server::Phase::draining);
    // Stopped meanwhile (KILL, SIGINT), or a SIGTERM took a SIGHUP's drain over: not ours.
    if (server_.phase() != Server::Phase::draining || under_way_ != path) {
        co_return;
    }
    server_.close_pending();
    if (path == Path::fd_store) {
        hand_over_to_fd_store();
    } else {
        reexec_in_place();
    }
}

void Restarter::hand_over_to_fd_store() {
    Package package(server_.registry(), log_);
    std::string error = package.error();
    if (package.sealed()) {
        error = store_in_fd_store(package.bundle_fds(), package.state_fd());
    }
    if (!error.empty()) {
        log_.printf(0, "cannot hand the registrations over to systemd: %s", error.c_str());
        server_.shutdown();
        return;
    }
    // Closing ours then sends no FIN: systemd holds a copy of each.
    log_.printf(0, "handed %zu registrations over to systemd's descriptor store", package.sent());
    if (package.complete()) {
        server_.shutdown_handed_over();
    } else {
        server_.shutdown();
    }
}

void Restarter::reexec_in_place() {
    const ExecImage& image = *exec_image_;
    std::string error;
    {
        Package package(server_.registry(), log_);
        error = package.error();
        if (package.sealed()) {
            const std::vector<int> listeners = server_.listener_fds();
            std::vector<NamedFd> passed;
            passed.reserve(listeners.size() + package.bundle_fds().size() + 1);
            for (std::size_t i = 0; i < listeners.size(); ++i) {
                passed.push_back({listeners[i], listener_names_[i]});
            }
            for (const int bundle : package.bundle_fds()) {
                passed.push_back({bundle, std::string(bundle_fd_name)});
            }
            passed.push_back({package.state_fd(), std::string(state_fd_name)});
            error = reexec(image, passed);  // returns only if it failed
        }
    }
    log_.printf(0, "cannot re-execute %s: %s; still serving", image.path.c_str(), error.c_str());
    if (options_.systemd) {
        notify_systemd("READY=1");
    }
    under_way_.reset();
    server_.resume_accepting();
    wait_for_reload_signal();
}

}  // namespace epmdx::server
