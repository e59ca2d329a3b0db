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
                         .is_static = node.is_static}});
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
    return {connected_.load(), published_.load(), deleted_.load(), failed_.load()};
}

void FleetPublisher::registered(const NodeEvent& node) {
    if (node.info == nullptr) {
        return;
    }
    queue({std::string(node.name), FleetNode{.info = *node.info,
                                             .host = {},
                                             .creation = node.creation,
                                             .since = std::chrono::system_clock::now()}});
}

void FleetPublisher::unregistered(const NodeEvent& node, std::string_view /*why*/) {
    queue({std::string(node.name), std::nullopt});
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

std::optional<EtcdFailure> FleetPublisher::reconcile(Etcd& etcd) {
    if (lease_ != 0) {
        if (auto failure = etcd.keep_alive(lease_)) {
            if (failure->kind != EtcdFailure::Kind::lease_lost) {
                return failure;
            }
            note_failure(*failure);
        }
    }
    if (lease_ == 0) {
        EtcdResult<std::int64_t> granted = etcd.grant(settings_.lease_ttl);
        if (const auto* failure = std::get_if<EtcdFailure>(&granted)) {
            return *failure;
        }
        lease_ = std::get<std::int64_t>(granted);
    }
    EtcdResult<Listing> present = etcd.range_prefix(host_prefix(settings_.prefix, settings_.host));
    if (const auto* failure = std::get_if<EtcdFailure>(&present)) {
        return *failure;
    }
    std::vector<std::string> keys;
    for (const KeyValue& entry : std::get<Listing>(present).entries) {
        if (!held_.contains(entry.key)) {
            keys.push_back(entry.key);  // not ours any more: deleted
        }
    }
    for (const auto& [key, value] : held_) {
        keys.push_back(key);
    }
    return write(etcd, keys);
}

void FleetPublisher::run() {
    Etcd etcd(settings_.endpoints, call_timeout);
    std::chrono::milliseconds backoff = first_backoff;
    Clock::time_point next_attempt = Clock::now();
    Clock::time_point next_keep_alive = Clock::now() + settings_.lease_ttl / 3;
    std::set<std::string> touched;  // keys changed since they were last written
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
            touched.insert(key);
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
                touched.clear();  // all written
                backoff = first_backoff;
                next_keep_alive = now + settings_.lease_ttl / 3;
                report("publishing to etcd at " + etcd.endpoint() + ": " +
                           std::to_string(held_.size()) + " nodes of host " + settings_.host,
                       true);
            }
        } else if (synced_ && !touched.empty()) {
            if (auto failure = write(etcd, {touched.begin(), touched.end()})) {
                note_failure(*failure);
                next_attempt = now;
            }
            touched.clear();  // written, or to be written by the next reconcile
        }
        if (synced_ && Clock::now() >= next_keep_alive) {
            if (auto failure = etcd.keep_alive(lease_)) {
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
