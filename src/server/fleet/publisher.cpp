// SPDX-License-Identifier: Apache-2.0
#include "server/fleet/publisher.hpp"

#include <algorithm>
#include <asio/post.hpp>
#include <set>

namespace epmdx::server::fleet {
namespace {

// etcd's default --max-txn-ops.
constexpr std::size_t ops_per_txn = 128;
// Each call to etcd, per endpoint: well under the lease's TTL.
constexpr std::chrono::milliseconds call_timeout{1000};
constexpr std::chrono::milliseconds first_backoff{100};
// How many of the leases found on this host's keys a new process tries to take over: a restart
// leaves one; more would be a long history of crashes, better served by a new lease.
constexpr std::size_t leases_to_try = 3;

// The token an event gives as the reason (a string literal: it outlives any post).
std::string_view reason_token(EtcdFailure::Kind kind) {
    switch (kind) {
        case EtcdFailure::Kind::unreachable:
            return "unreachable";
        case EtcdFailure::Kind::lease_lost:
            return "lease_lost";
        case EtcdFailure::Kind::refused:
            return "refused";
    }
    return "refused";
}

}  // namespace

FleetPublisher::FleetPublisher(asio::io_context& io, Logger& log, FleetSettings settings)
    : io_(io), log_(log), settings_(std::move(settings)) {}

FleetPublisher::~FleetPublisher() {
    finish(false);
}

void FleetPublisher::hold(const Registry& registry) {
    const auto now = std::chrono::system_clock::now();
    registry.for_each_active([&](const Registry::ActiveNode& node) {
        queue({node.info.name,
               FleetNode{.info = node.info,
                         .host = {},
                         .creation = node.is_static ? 0
                                                    : Registry::creation_for(
                                                          node.counter, node.info.highest_version),
                         .since = now,
                         .is_static = node.is_static},
               std::nullopt});
    });
}

void FleetPublisher::start() {
    worker_ = std::thread([this] { run(); });
}

void FleetPublisher::finish(bool end_lease) {
    {
        const std::lock_guard lock(mutex_);
        stop_ = true;
        end_lease_ = end_lease;
    }
    wake_.notify_one();
    if (worker_.joinable()) {
        worker_.join();
    }
}

FleetCounts FleetPublisher::counts() const {
    FleetCounts counts{.connected = connected_.load(),
                       .published = published_.load(),
                       .deleted = deleted_.load(),
                       .failed = failed_.load()};
    const std::lock_guard lock(lag_mutex_);
    counts.lag_counts = lag_counts_;
    counts.lag_sum_seconds = lag_sum_seconds_;
    return counts;
}

void FleetPublisher::note_written(const Touched& touched) {
    const Clock::time_point now = Clock::now();
    const std::lock_guard lock(lag_mutex_);
    for (const auto& [key, at] : touched) {
        if (!at) {
            continue;
        }
        const double seconds = std::chrono::duration<double>(now - *at).count();
        const auto* bucket =
            std::lower_bound(publish_lag_buckets.begin(), publish_lag_buckets.end(), seconds);
        ++lag_counts_[static_cast<std::size_t>(bucket - publish_lag_buckets.begin())];
        lag_sum_seconds_ += seconds;
    }
}

void FleetPublisher::registered(const NodeEvent& node) {
    if (node.info == nullptr) {
        return;
    }
    queue({std::string(node.name),
           FleetNode{.info = *node.info,
                     .host = {},
                     .creation = node.creation,
                     .since = std::chrono::system_clock::now()},
           Clock::now()});
}

void FleetPublisher::unregistered(const NodeEvent& node, std::string_view /*why*/) {
    queue({std::string(node.name), std::nullopt, Clock::now()});
}

void FleetPublisher::queue(Change change) {
    {
        const std::lock_guard lock(mutex_);
        queued_.push_back(std::move(change));
    }
    wake_.notify_one();
}

void FleetPublisher::report(std::string message, std::optional<bool> reached,
                            std::string_view reason) {
    asio::post(io_, [this, message = std::move(message), reached, reason] {
        log_.printf(0, "-fleet: %s", message.c_str());
        if (reached && on_status_) {
            on_status_(*reached, reason);
        }
    });
}

void FleetPublisher::note_failure(const EtcdFailure& failure) {
    failed_.fetch_add(1);
    if (failure.kind == EtcdFailure::Kind::lease_lost) {
        // Always said: etcd is there, but every key of this daemon went with the lease.
        lease_ = 0;
        report("the lease was lost (" + failure.message +
                   "); granting a new one and publishing every node again",
               false, reason_token(failure.kind));
        reported_down_ = true;
    } else if (!reported_down_) {
        report("cannot reach etcd (" + failure.message + "); serving locally, retrying", false,
               reason_token(failure.kind));
        reported_down_ = true;
    }
    synced_ = false;
    connected_.store(false);
}

std::optional<EtcdFailure> FleetPublisher::write(Etcd& etcd, const std::vector<std::string>& keys) {
    std::vector<EtcdOp> ops;
    std::size_t puts = 0;
    const auto flush = [&]() -> std::optional<EtcdFailure> {
        if (ops.empty()) {
            return std::nullopt;
        }
        if (auto failure = etcd.txn(ops, lease_)) {
            return failure;
        }
        published_.fetch_add(puts);
        deleted_.fetch_add(ops.size() - puts);
        ops.clear();
        puts = 0;
        return std::nullopt;
    };
    for (const std::string& key : keys) {
        const auto found = held_.find(key);
        if (found != held_.end()) {
            ops.push_back({key, found->second});
            ++puts;
        } else {
            ops.push_back({key, std::nullopt});
        }
        if (ops.size() == ops_per_txn) {
            if (auto failure = flush()) {
                return failure;
            }
        }
    }
    return flush();
}

std::optional<EtcdFailure> FleetPublisher::take_lease(Etcd& etcd,
                                                      const std::vector<KeyValue>& present) {
    std::vector<std::int64_t> tried;
    for (const KeyValue& entry : present) {
        if (entry.lease == 0 || !held_.contains(entry.key) ||
            std::find(tried.begin(), tried.end(), entry.lease) != tried.end()) {
            continue;
        }
        if (tried.size() == leases_to_try) {
            break;
        }
        tried.push_back(entry.lease);
        EtcdResult<std::chrono::seconds> renewed = etcd.keep_alive(entry.lease);
        if (const auto* failure = std::get_if<EtcdFailure>(&renewed)) {
            if (failure->kind != EtcdFailure::Kind::lease_lost) {
                return *failure;
            }
        } else if (std::get<std::chrono::seconds>(renewed) == settings_.lease_ttl) {
            // Another TTL would not match this process's keep-alive pace: a new lease then.
            lease_ = entry.lease;
            return std::nullopt;
        }
    }
    EtcdResult<std::int64_t> granted = etcd.grant(settings_.lease_ttl);
    if (const auto* failure = std::get_if<EtcdFailure>(&granted)) {
        return *failure;
    }
    lease_ = std::get<std::int64_t>(granted);
    return std::nullopt;
}

std::optional<EtcdFailure> FleetPublisher::reconcile(Etcd& etcd) {
    if (lease_ != 0) {
        EtcdResult<std::chrono::seconds> renewed = etcd.keep_alive(lease_);
        if (const auto* failure = std::get_if<EtcdFailure>(&renewed)) {
            if (failure->kind != EtcdFailure::Kind::lease_lost) {
                return *failure;
            }
            note_failure(*failure);
        }
    }
    EtcdResult<Listing> present = etcd.range_prefix(host_prefix(settings_.prefix, settings_.host));
    if (const auto* failure = std::get_if<EtcdFailure>(&present)) {
        return *failure;
    }
    const std::vector<KeyValue>& entries = std::get<Listing>(present).entries;
    if (lease_ == 0) {
        if (auto failure = take_lease(etcd, entries)) {
            return failure;
        }
    }
    std::vector<std::string> keys;
    std::set<std::string> already_right;
    for (const KeyValue& entry : entries) {
        const auto held = held_.find(entry.key);
        if (held == held_.end()) {
            keys.push_back(entry.key);  // not ours any more: deleted
        } else if (entry.lease == lease_ && same_node(entry.value, held->second)) {
            held->second = entry.value;  // with the time the node first registered
            already_right.insert(entry.key);
        }
    }
    for (const auto& [key, value] : held_) {
        if (!already_right.contains(key)) {
            keys.push_back(key);
        }
    }
    return write(etcd, keys);
}

void FleetPublisher::run() {
    Etcd etcd(settings_.endpoints, call_timeout, settings_.tls);
    std::chrono::milliseconds backoff = first_backoff;
    Clock::time_point next_attempt = Clock::now();
    Clock::time_point next_keep_alive = Clock::now() + settings_.lease_ttl / 3;
    Touched touched;
    for (;;) {
        std::vector<Change> changes;
        bool stopping = false;
        bool end_lease = false;
        {
            std::unique_lock lock(mutex_);
            const Clock::time_point until = synced_ ? next_keep_alive : next_attempt;
            wake_.wait_until(lock, until, [&] { return stop_ || (!queued_.empty() && synced_); });
            changes.swap(queued_);
            stopping = stop_;
            end_lease = end_lease_;
        }
        for (Change& change : changes) {
            const std::string key = node_key(settings_.prefix, settings_.host, change.name);
            if (change.node) {
                change.node->host = settings_.host;
                held_[key] = encode_node(*change.node);
            } else {
                held_.erase(key);
            }
            touched.emplace(key, change.at);  // a key changed twice keeps its first time
        }
        const Clock::time_point now = Clock::now();
        if (!synced_ && (now >= next_attempt || stopping)) {
            if (auto failure = reconcile(etcd)) {
                note_failure(*failure);
                next_attempt = now + backoff;
                backoff = std::min(backoff * 2, settings_.max_backoff);
            } else {
                synced_ = true;
                reported_down_ = false;
                connected_.store(true);
                note_written(touched);  // all written, an outage's changes with its length
                touched.clear();
                backoff = first_backoff;
                next_keep_alive = now + settings_.lease_ttl / 3;
                report("publishing to etcd at " + etcd.endpoint() + ": " +
                           std::to_string(held_.size()) + " nodes of host " + settings_.host,
                       true);
            }
        } else if (synced_ && !touched.empty()) {
            std::vector<std::string> keys;
            keys.reserve(touched.size());
            for (const auto& [key, at] : touched) {
                keys.push_back(key);
            }
            if (auto failure = write(etcd, keys)) {
                note_failure(*failure);  // kept in `touched`: the next reconcile writes them
                next_attempt = now;
            } else {
                note_written(touched);
                touched.clear();
            }
        }
        if (synced_ && Clock::now() >= next_keep_alive) {
            EtcdResult<std::chrono::seconds> renewed = etcd.keep_alive(lease_);
            if (const auto* failure = std::get_if<EtcdFailure>(&renewed)) {
                note_failure(*failure);
                next_attempt = Clock::now();
            } else {
                next_keep_alive = Clock::now() + settings_.lease_ttl / 3;
            }
        }
        if (stopping) {
            if (synced_ && end_lease && lease_ != 0) {
                (void)etcd.revoke(lease_);
            }
            return;
        }
    }
}

}  // namespace epmdx::server::fleet
