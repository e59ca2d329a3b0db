// SPDX-License-Identifier: Apache-2.0
// The core's Observer as operators see it: each call counted in the metrics and, with
// -log_events, written as an event. Owns the -metrics listener, which renders what is counted
// here with what the core holds (CoreCounts) at the time of each scrape.
#pragma once

#include <asio/io_context.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "server/config/options.hpp"
#include "server/core/listeners.hpp"
#include "server/core/observer.hpp"
#include "server/observe/events.hpp"
#include "server/observe/metrics.hpp"
#include "server/observe/metrics_listener.hpp"

namespace epmdx::server {

class Observability final : public Observer {
  public:
    // metrics_acceptor: the -metrics listener's socket, if there is one. daemonized: whether
    // the log goes to syslog (events follow it there).
    Observability(asio::io_context& io, const DaemonOptions& options, bool daemonized,
                  std::optional<Acceptor> metrics_acceptor);

    // Before start(): where the core's counts come from.
    void read_counts_from(std::function<CoreCounts()> counts) { counts_ = std::move(counts); }
    // Before start(), with -fleet: where the publisher's state comes from.
    void read_fleet_from(std::function<FleetGauges()> fleet) { fleet_ = std::move(fleet); }
    // Starts the metrics listener, if any.
    void start();

    void request(RequestOutcome outcome, Duration took) override;
    void registration_refused(RequestOutcome outcome, Duration took, std::string_view reason,
                              const NodeEvent& node) override;
    void listing_refused(RequestOutcome outcome, Duration took,
                         const asio::ip::address& peer) override;
    void closed(CloseReason reason, const asio::ip::address& peer, std::string_view why) override;
    void registered(const NodeEvent& node) override;
    void unregistered(const NodeEvent& node, std::string_view why) override;
    void stopping() override;
    // -fleet's etcd lost (reason: unreachable, refused or lease_lost) or reached again: an event.
    void fleet_status(bool reached, std::string_view reason);

    // The exposition as a scrape sees it now.
    std::string metrics_text() const;

  private:
    Metrics metrics_;
    EventLog events_;
    std::function<CoreCounts()> counts_;
    std::function<FleetGauges()> fleet_;
    std::unique_ptr<MetricsListener> metrics_listener_;
};

}  // namespace epmdx::server
