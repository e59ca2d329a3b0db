// SPDX-License-Identifier: Apache-2.0
// -fleet: every registration this daemon holds, written to etcd under one lease. The core's
// calls arrive on the event loop thread and only queue a change there; a worker thread of its
// own writes them, batched, to etcd, so that a slow, partitioned or stopped etcd never delays
// a request. The worker keeps the whole picture (what etcd should hold for this host): at start,
// after etcd comes back and after a lost lease it reconciles this host's keys with it.
#pragma once

#include <array>
#include <asio/io_context.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "registry/registry.hpp"
#include "server/core/log.hpp"
#include "server/core/observer.hpp"
#include "server/fleet/etcd.hpp"
#include "server/fleet/record.hpp"

namespace epmdx::server::fleet {

struct FleetSettings {
    std::vector<std::string> endpoints;  // checked by parse_endpoints
    FleetTls tls;                        // checked by tls_error
    std::string prefix;
    std::string host;
    std::chrono::seconds lease_ttl{10};
    // The longest wait between attempts while etcd cannot be reached.
    std::chrono::milliseconds max_backoff{2000};
};

// Upper bounds, in seconds, of the publish-lag histogram's buckets: from a registration (or its
// end) to etcd acknowledging the write. A few milliseconds while etcd is there; an outage counts
// in full, up to the top bucket.
inline constexpr std::array<double, 12> publish_lag_buckets = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0};

// What the worker has done so far, readable from any thread.
struct FleetCounts {
    bool connected = false;
    std::uint64_t published = 0;  // keys put
    std::uint64_t deleted = 0;    // keys deleted
    std::uint64_t failed = 0;     // etcd calls that failed
    // Changes written, per publish_lag_buckets bucket (not cumulative; the last is above the
    // highest bound), and their lags' sum.
    std::array<std::uint64_t, publish_lag_buckets.size() + 1> lag_counts{};
    double lag_sum_seconds = 0;
};

class FleetPublisher final : public Observer {
  public:
    // Messages about etcd (lost, reached again) go to `log` on the loop thread.
    FleetPublisher(asio::io_context& io, Logger& log, FleetSettings settings);
    FleetPublisher(const FleetPublisher&) = delete;
    FleetPublisher& operator=(const FleetPublisher&) = delete;
    ~FleetPublisher() override;

    // Before start(): told on the loop thread each time etcd is lost (reason: unreachable,
    // refused or lease_lost) or reached again.
    using StatusCallback = std::function<void(bool reached, std::string_view reason)>;
    void on_status(StatusCallback callback) { on_status_ = std::move(callback); }
    // Before start(): what the registry already holds (static entries, registrations taken
    // over from the previous process).
    void hold(const Registry& registry);
    void start();
    // At exit: writes what is queued (one attempt), and if end_lease revokes the lease, which
    // removes every key of this daemon at once. Not after a hand-over: the next process holds
    // the nodes, and re-publishes them under its own lease.
    void finish(bool end_lease);

    FleetCounts counts() const;

    void registered(const NodeEvent& node) override;
    void unregistered(const NodeEvent& node, std::string_view why) override;
    void request(RequestOutcome /*outcome*/, Duration /*took*/) override {}
    void registration_refused(RequestOutcome /*outcome*/, Duration /*took*/,
                              std::string_view /*reason*/, const NodeEvent& /*node*/) override {}
    void listing_refused(RequestOutcome /*outcome*/, Duration /*took*/,
                         const asio::ip::address& /*peer*/) override {}
    void closed(CloseReason /*reason*/, const asio::ip::address& /*peer*/,
                std::string_view /*why*/) override {}
    void stopping() override {}

  private:
    using Clock = std::chrono::steady_clock;
    // A node come (node set) or gone, as queued on the loop thread; `at` when it happened (none
    // for what hold() passes on: nothing changed there).
    struct Change {
        std::string name;
        std::optional<FleetNode> node;
        std::optional<Clock::time_point> at;
    };
    // Keys changed since they were last written, each with the time of its first such change.
    using Touched = std::map<std::string, std::optional<Clock::time_point>>;

    void queue(Change change);
    void run();
    // Lease checked, taken over or granted, this host's stray keys deleted and every held one
    // put that etcd does not already hold, alike and under that lease.
    std::optional<EtcdFailure> reconcile(Etcd& etcd);
    // With no lease yet: the lease a previous process of this host left on keys this one holds,
    // if etcd still keeps it alive (a restart then rewrites nothing), else a new one.
    std::optional<EtcdFailure> take_lease(Etcd& etcd, const std::vector<KeyValue>& present);
    // The given keys as `held_` has them now (put, or deleted if absent), in transactions of
    // etcd's default most operations.
    std::optional<EtcdFailure> write(Etcd& etcd, const std::vector<std::string>& keys);
    void note_failure(const EtcdFailure& failure);
    // The changes etcd has just acknowledged, into the lag histogram.
    void note_written(const Touched& touched);
    // A log line on the loop thread; with `reached`, a status change for on_status too.
    void report(std::string message, std::optional<bool> reached = std::nullopt,
                std::string_view reason = {});

    asio::io_context& io_;
    Logger& log_;
    const FleetSettings settings_;
    StatusCallback on_status_;

    std::mutex mutex_;
    std::condition_variable wake_;
    std::vector<Change> queued_;  // guarded by mutex_
    bool stop_ = false;           // guarded by mutex_
    bool end_lease_ = false;      // guarded by mutex_

    // The worker's own.
    std::map<std::string, std::string> held_;  // key -> value: what etcd should hold
    std::int64_t lease_ = 0;
    bool synced_ = false;
    bool reported_down_ = false;  // since the last time etcd was reached

    std::atomic<bool> connected_{false};
    std::atomic<std::uint64_t> published_{0};
    std::atomic<std::uint64_t> deleted_{0};
    std::atomic<std::uint64_t> failed_{0};
    mutable std::mutex lag_mutex_;
    std::array<std::uint64_t, publish_lag_buckets.size() + 1> lag_counts_{};  // by lag_mutex_
    double lag_sum_seconds_ = 0;                                              // by lag_mutex_
    std::thread worker_;
};

}  // namespace epmdx::server::fleet
