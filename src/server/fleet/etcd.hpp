// SPDX-License-Identifier: Apache-2.0
// A blocking client of etcd's v3 HTTP/JSON gateway (etcd 3.4: POST /v3/...), through libcurl.
// Keys and values travel base64-encoded; int64 fields come back as JSON strings. https://
// endpoints are verified (peer and host name) against -fleet_cacert or the system's CA store, and
// given -fleet_cert/-fleet_key if etcd asks for a client certificate. Not for the event loop: each
// call waits up to the timeout per endpoint. One instance per thread.
#pragma once

#include <curl/curl.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "server/config/options.hpp"

namespace epmdx::server::fleet {

// Why a call failed.
struct EtcdFailure {
    enum class Kind : std::uint8_t {
        unreachable,  // no endpoint answered: down, partitioned, too slow
        lease_lost,   // the lease named is gone (expired, revoked, compacted away)
        refused,      // etcd answered with an error
    };
    Kind kind = Kind::unreachable;
    std::string message;
};

template <typename T>
using EtcdResult = std::variant<T, EtcdFailure>;

struct KeyValue {
    std::string key;
    std::string value;
    std::int64_t lease = 0;  // 0: none
};

// What a range read found, and the store's revision it was read at (a watch from the next one
// misses nothing and repeats nothing).
struct Listing {
    std::vector<KeyValue> entries;
    std::int64_t revision = 0;
};

// One change a watch reports. A delete carries no value; for a put, create_revision older than
// mod_revision means the key existed already (a re-put).
struct WatchEvent {
    bool deleted = false;
    std::string key;
    std::string value;
    std::int64_t create_revision = 0;
    std::int64_t mod_revision = 0;
};

// One message of a watch stream: its events (none in the first, which says the watch is set
// up), or (compact_revision > 0) the news that the revisions asked for are compacted away, and
// the stream has ended.
struct WatchResponse {
    std::vector<WatchEvent> events;
    std::int64_t compact_revision = 0;
};

// One operation of a transaction: a put (with the lease given to txn) or, without a value, a
// delete.
struct EtcdOp {
    std::string key;
    std::optional<std::string> value;
};

class Etcd {
  public:
    // endpoints: http://HOST:PORT or https://HOST:PORT (checked by parse_endpoints), tried in
    // turn from the last one that answered; tls: the files for https://, checked by tls_error.
    Etcd(std::vector<std::string> endpoints, std::chrono::milliseconds timeout, FleetTls tls);
    Etcd(const Etcd&) = delete;
    Etcd& operator=(const Etcd&) = delete;
    ~Etcd();

    // A new lease's ID.
    EtcdResult<std::int64_t> grant(std::chrono::seconds ttl);
    // One keep-alive round: the TTL the lease was granted with, renewed; lease_lost when etcd no
    // longer knows the lease.
    EtcdResult<std::chrono::seconds> keep_alive(std::int64_t lease);
    std::optional<EtcdFailure> revoke(std::int64_t lease);
    // Every key under the prefix, with its value and lease, in key order.
    EtcdResult<Listing> range_prefix(std::string_view prefix);
    // One key's value; nullopt when there is no such key.
    EtcdResult<std::optional<std::string>> get(std::string_view key);
    // All of them at once, the puts attached to the lease. A key may appear only once.
    std::optional<EtcdFailure> txn(std::span<const EtcdOp> ops, std::int64_t lease);

    // Streams the changes of the keys under the prefix from revision `from` on, calling
    // on_response for each message, until stop() holds (polled at least once a second; then
    // nullopt), the stream reports a compaction (nullopt after that response) or the stream is
    // lost or cannot be opened on any endpoint (a failure; the next watch starts at the endpoint
    // after the one that was lost).
    std::optional<EtcdFailure> watch(std::string_view prefix, std::int64_t from,
                                     const std::function<void(const WatchResponse&)>& on_response,
                                     const std::function<bool()>& stop);

    // The endpoint last used, for messages.
    const std::string& endpoint() const { return endpoints_[current_]; }

  private:
    // Every request's set-up of an easy handle for `url`: headers, no proxy, no signals,
    // timeouts, TLS and the error buffer failure_text reads.
    void prepare(CURL* curl, const std::string& url);
    // Why a request on a prepared handle failed: curl's own words, with a hint when etcd may have
    // dropped us for sending no client certificate.
    std::string failure_text(CURLcode code) const;
    // The JSON answer of POST path, from the first endpoint that answers.
    EtcdResult<nlohmann::json> call(std::string_view path, const nlohmann::json& body);

    struct Handle;
    std::unique_ptr<Handle> handle_;
    std::vector<std::string> endpoints_;
    std::size_t current_ = 0;
    std::chrono::milliseconds timeout_;
    FleetTls tls_;
};

}  // namespace epmdx::server::fleet
