// SPDX-License-Identifier: Apache-2.0
#include "server/observe/observability.hpp"

namespace epmdx::server {

Observability::Observability(asio::io_context& io, const DaemonOptions& options, bool daemonized,
                             std::optional<Acceptor> metrics_acceptor)
    : events_(io, choose_event_sink(options.log_events, options.systemd, daemonized)) {
    if (metrics_acceptor) {
        metrics_listener_ = std::make_unique<MetricsListener>(
            io, std::move(*metrics_acceptor), std::chrono::seconds(options.packet_timeout_s),
            metrics_, [this] { return metrics_text(); });
    }
}

void Observability::start() {
    if (metrics_listener_) {
        metrics_listener_->start();
    }
}

void Observability::request(RequestOutcome outcome, Duration took) {
    metrics_.request(outcome, took);
}

void Observability::registration_refused(RequestOutcome outcome, Duration took,
                                         std::string_view reason, const NodeEvent& node) {
    metrics_.request(outcome, took);
    events_.write({.kind = EventKind::refused,
                   .node = node.name,
                   .port = node.port,
                   .peer = node.peer,
                   .reason = reason});
}

void Observability::listing_refused(RequestOutcome outcome, Duration took,
                                    const asio::ip::address& peer) {
    metrics_.request(outcome, took);
    events_.write({.kind = EventKind::rate_limited,
                   .peer = peer,
                   .reason = outcome == RequestOutcome::names_rate_limited ? "names" : "dump"});
}

void Observability::closed(CloseReason reason, const asio::ip::address& peer,
                           std::string_view why) {
    metrics_.closed(reason);
    if (reason == CloseReason::shed || reason == CloseReason::deadline) {
        events_.write(
            {.kind = reason == CloseReason::deadline ? EventKind::deadline : EventKind::evicted,
             .peer = peer,
             .reason = why});
    }
}

void Observability::registered(const NodeEvent& node) {
    events_.write({.kind = EventKind::registered,
                   .node = node.name,
                   .port = node.port,
                   .creation = node.creation,
                   .peer = node.peer});
}

void Observability::unregistered(const NodeEvent& node, std::string_view why) {
    events_.write({.kind = EventKind::unregistered,
                   .node = node.name,
                   .port = node.port,
                   .creation = node.creation,
                   .peer = node.peer,
                   .reason = why});
}

void Observability::fleet_status(bool reached, std::string_view reason) {
    events_.write(
        {.kind = reached ? EventKind::fleet_reached : EventKind::fleet_lost, .reason = reason});
}

void Observability::stopping() {
    if (metrics_listener_) {
        metrics_listener_->shutdown();
    }
    events_.flush();
}

std::string Observability::metrics_text() const {
    const CoreCounts core = counts_ ? counts_() : CoreCounts{};
    Gauges gauges;
    gauges.registered_nodes = core.registered_nodes;
    gauges.connections_registered = core.registered_nodes;  // one connection per registration
    gauges.connections_waiting = core.connections - core.registered_nodes;
    gauges.metrics_connections = metrics_listener_ ? metrics_listener_->connections() : 0;
    if (fleet_) {
        gauges.fleet = fleet_();
    }
    return render_exposition(metrics_, gauges, platform::process_stats(), EPMDX_VERSION);
}

}  // namespace epmdx::server
