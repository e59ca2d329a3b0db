// SPDX-License-Identifier: Apache-2.0
// Registrations that outlive the process (docs/differences.md A-RESTART), through the core's
// restart API (Server: adopt, stop_accepting, drained, close_pending, resume_accepting,
// shutdown_handed_over): taking them back at start, handing them to systemd's descriptor store
// on SIGTERM, and re-executing in place on SIGHUP. The signals that stop or restart the daemon
// are handled here. The blob and what to restore from it are handover_state.hpp's, the system
// calls handover.hpp's.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <optional>
#include <string>
#include <vector>

#include "server/config/options.hpp"
#include "server/core/log.hpp"
#include "server/core/server.hpp"
#include "server/restart/handover.hpp"
#include "server/restart/handover_state.hpp"

namespace epmdx::server {

class Restarter {
  public:
    Restarter(asio::io_context& io, const DaemonOptions& options, Logger& log, Server& server);
    Restarter(const Restarter&) = delete;
    Restarter& operator=(const Restarter&) = delete;

    // Before start(): takes back the registrations the previous process handed over. state is
    // null if none came or it was unusable; every descriptor in registration_fds is then held
    // or closed.
    void adopt(const HandoverState* state, const std::vector<int>& registration_fds);
    // Before start(): SIGHUP re-executes image, passing the listeners under these names (one per
    // listener) along with the registrations and the state.
    void enable_reexec(ExecImage image, std::vector<std::string> listener_names);
    // Before start(), instead: SIGHUP is refused with this reason in the log, and changes nothing.
    void refuse_reexec(std::string reason);
    // Handles SIGTERM and SIGINT (shut down, or hand over to systemd's store) and SIGHUP.
    void start();

  private:
    enum class Path : std::uint8_t { reexec, fd_store };

    void wait_for_reload_signal();
    // SIGHUP: checks the binary, then drains and re-executes; on failure (or if refuse_reexec
    // said why not) serves on.
    void on_reload();
    // Stop accepting, let pending requests finish (up to 100 ms), close the rest, then hand
    // over along path.
    asio::awaitable<void> drain_and_hand_over(Path path);
    void hand_over_to_fd_store();
    void reexec_in_place();
    void stop_signals();

    asio::io_context& io_;
    const DaemonOptions& options_;
    Logger& log_;
    Server& server_;
    asio::signal_set termination_signals_;
    asio::signal_set reload_signal_;
    std::optional<ExecImage> exec_image_;
    std::string no_reexec_reason_;  // why SIGHUP does not re-execute, if exec_image_ is unset
    std::vector<std::string> listener_names_;
    // The hand-over under way, if any: a SIGTERM during a SIGHUP's drain takes it over.
    std::optional<Path> under_way_;
};

}  // namespace epmdx::server
