// SPDX-License-Identifier: Apache-2.0
#include "server/fleet/etcd.hpp"

#include <openssl/evp.h>

#include <array>

#include "server/fleet/curl_library.hpp"

namespace epmdx::server::fleet {
namespace {

using nlohmann::json;

std::string base64(std::string_view bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3), '\0');
    const int length = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                       reinterpret_cast<const unsigned char*>(bytes.data()),
                                       static_cast<int>(bytes.size()));
    out.resize(static_cast<std::size_t>(length));
    return out;
}

// EVP_DecodeBlock counts the bytes the padding stands for; they are taken off here.
std::optional<std::string> from_base64(std::string_view text) {
    if (text.size() % 4 != 0) {
        return std::nullopt;
    }
    std::string out(3 * text.size() / 4, '\0');
    const int length = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                       reinterpret_cast<const unsigned char*>(text.data()),
                                       static_cast<int>(text.size()));
    if (length < 0) {
        return std::nullopt;
    }
    std::size_t size = static_cast<std::size_t>(length);
    for (std::size_t i = text.size(); i > 0 && text[i - 1] == '=' && size > 0; --i) {
        --size;
    }
    out.resize(size);
    return out;
}

// The key just past every key that starts with `prefix` (etcd's range_end for a prefix).
std::string prefix_end(std::string_view prefix) {
    std::string end(prefix);
    while (!end.empty()) {
        if (static_cast<unsigned char>(end.back()) < 0xFF) {
            end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
            return end;
        }
        end.pop_back();
    }
    return std::string(1, '\0');  // every key
}

// etcd's int64 fields: JSON strings from the gateway.
std::int64_t int64_field(const json& object, const char* field) {
    if (!object.contains(field)) {
        return 0;
    }
    const json& value = object[field];
    if (value.is_string()) {
        return std::strtoll(value.get<std::string>().c_str(), nullptr, 10);
    }
    return value.is_number_integer() ? value.get<std::int64_t>() : 0;
}

bool lease_not_found(const json& answer) {
    const std::string message = answer.value("message", std::string());
    return message.find("lease not found") != std::string::npos;
}

// What a /v3/kv/range call found, its keys and values decoded; a failed call passed on as it is.
// endpoint names the one that answered in a message, so it is read after the call.
EtcdResult<Listing> range_answer(const EtcdResult<json>& answer, const std::string& endpoint) {
    if (const auto* failure = std::get_if<EtcdFailure>(&answer)) {
        return *failure;
    }
    const json& result = std::get<json>(answer);
    Listing found;
    if (result.contains("header")) {
        found.revision = int64_field(result["header"], "revision");
    }
    if (!result.contains("kvs") || !result["kvs"].is_array()) {
        return found;  // the gateway leaves out empty fields
    }
    for (const json& entry : result["kvs"]) {
        std::optional<std::string> key = from_base64(entry.value("key", std::string()));
        if (!key) {
            return EtcdFailure{EtcdFailure::Kind::refused, endpoint + ": a key that is not base64"};
        }
        std::optional<std::string> value = from_base64(entry.value("value", std::string()));
        if (!value) {
            return EtcdFailure{EtcdFailure::Kind::refused,
                               endpoint + ": a value that is not base64"};
        }
        found.entries.push_back({std::move(*key), std::move(*value), int64_field(entry, "lease")});
    }
    return found;
}

std::size_t collect(char* data, std::size_t size, std::size_t count, void* sink) {
    static_cast<std::string*>(sink)->append(data, size * count);
    return size * count;
}

}  // namespace

// One easy handle for every call, so that the connection to etcd is kept open between them.
struct Etcd::Handle {
    CURL* curl = nullptr;
    curl_slist* headers = nullptr;
    std::array<char, CURL_ERROR_SIZE> error{};  // curl's words for the last failure
};

Etcd::Etcd(std::vector<std::string> endpoints, std::chrono::milliseconds timeout, FleetTls tls)
    : handle_(std::make_unique<Handle>()),
      endpoints_(std::move(endpoints)),
      timeout_(timeout),
      tls_(std::move(tls)) {
    handle_->curl = libcurl().easy_init();
    handle_->headers = libcurl().slist_append(nullptr, "Content-Type: application/json");
}

Etcd::~Etcd() {
    libcurl().slist_free_all(handle_->headers);
    libcurl().easy_cleanup(handle_->curl);
}

void Etcd::prepare(CURL* curl, const std::string& url) {
    libcurl().easy_reset(curl);
    handle_->error.front() = '\0';  // libcurl leaves it as it is when it has nothing to say
    libcurl().easy_setopt(curl, CURLOPT_ERRORBUFFER, handle_->error.data());
    libcurl().easy_setopt(curl, CURLOPT_URL, url.c_str());
    libcurl().easy_setopt(curl, CURLOPT_HTTPHEADER, handle_->headers);
    libcurl().easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_.count()));
    libcurl().easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout_.count()));
    libcurl().easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);  // a worker thread: no SIGALRM for DNS
    libcurl().easy_setopt(curl, CURLOPT_PROXY, "");     // etcd is reached directly
    // https://: the peer's chain and its name are always checked (libcurl's defaults, stated).
    libcurl().easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    libcurl().easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!tls_.cacert.empty()) {
        libcurl().easy_setopt(curl, CURLOPT_CAINFO, tls_.cacert.c_str());
    }
    if (!tls_.cert.empty()) {
        libcurl().easy_setopt(curl, CURLOPT_SSLCERT, tls_.cert.c_str());
        libcurl().easy_setopt(curl, CURLOPT_SSLKEY, tls_.key.c_str());
    }
}

std::string Etcd::failure_text(CURLcode code) const {
    std::string text =
        handle_->error.front() != '\0' ? handle_->error.data() : libcurl().easy_strerror(code);
    // etcd with --client-cert-auth drops a client without a certificate during or right after
    // the handshake: curl then sees a failed handshake, send or receive (an alert, or a reset).
    const bool dropped =
        code == CURLE_SSL_CONNECT_ERROR || code == CURLE_SEND_ERROR || code == CURLE_RECV_ERROR;
    if (dropped && tls_.cert.empty() && endpoints_.front().starts_with("https://")) {
        text += " (etcd may require a client certificate: give -fleet_cert and -fleet_key)";
    }
    return text;
}

EtcdResult<json> Etcd::call(std::string_view path, const json& body) {
    const std::string request = body.dump();
    std::string last_error = "no endpoint";
    for (std::size_t tried = 0; tried < endpoints_.size(); ++tried) {
        const std::size_t at = (current_ + tried) % endpoints_.size();
        std::string response;
        CURL* curl = handle_->curl;
        prepare(curl, endpoints_[at] + std::string(path));
        libcurl().easy_setopt(curl, CURLOPT_POSTFIELDS, request.c_str());
        libcurl().easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(request.size()));
        libcurl().easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
        libcurl().easy_setopt(curl, CURLOPT_WRITEDATA, &response);
        const CURLcode code = libcurl().easy_perform(curl);
        if (code != CURLE_OK) {
            last_error = endpoints_[at] + ": " + failure_text(code);
            continue;
        }
        current_ = at;
        json answer = json::parse(response, nullptr, false);
        long status = 0;
        libcurl().easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        if (answer.is_discarded() || !answer.is_object()) {
            return EtcdFailure{EtcdFailure::Kind::refused,
                               endpoints_[at] + ": HTTP " + std::to_string(status) +
                                   " with a body that is not a JSON object"};
        }
        if (status != 200 || answer.contains("error")) {
            const std::string message = answer.value("message", std::string("HTTP error"));
            return EtcdFailure{lease_not_found(answer) ? EtcdFailure::Kind::lease_lost
                                                       : EtcdFailure::Kind::refused,
                               endpoints_[at] + ": " + message};
        }
        return answer;
    }
    return EtcdFailure{EtcdFailure::Kind::unreachable, last_error};
}

EtcdResult<std::int64_t> Etcd::grant(std::chrono::seconds ttl) {
    EtcdResult<json> answer = call("/v3/lease/grant", {{"TTL", ttl.count()}});
    if (auto* failure = std::get_if<EtcdFailure>(&answer)) {
        return *failure;
    }
    const std::int64_t id = int64_field(std::get<json>(answer), "ID");
    if (id == 0) {
        return EtcdFailure{EtcdFailure::Kind::refused, endpoint() + ": a lease grant without ID"};
    }
    return id;
}

EtcdResult<std::chrono::seconds> Etcd::keep_alive(std::int64_t lease) {
    // A stream of one request: the gateway answers {"result": {..., "TTL": ...}}, with no TTL
    // once the lease is gone.
    EtcdResult<json> answer = call("/v3/lease/keepalive", {{"ID", std::to_string(lease)}});
    if (auto* failure = std::get_if<EtcdFailure>(&answer)) {
        return *failure;
    }
    const json& result = std::get<json>(answer);
    const std::int64_t ttl = result.contains("result") ? int64_field(result["result"], "TTL") : 0;
    if (ttl <= 0) {
        return EtcdFailure{EtcdFailure::Kind::lease_lost, endpoint() + ": the lease has expired"};
    }
    return std::chrono::seconds(ttl);
}

std::optional<EtcdFailure> Etcd::revoke(std::int64_t lease) {
    EtcdResult<json> answer = call("/v3/lease/revoke", {{"ID", std::to_string(lease)}});
    if (auto* failure = std::get_if<EtcdFailure>(&answer)) {
        return *failure;
    }
    return std::nullopt;
}

EtcdResult<Listing> Etcd::range_prefix(std::string_view prefix) {
    const EtcdResult<json> answer =
        call("/v3/kv/range", {{"key", base64(prefix)}, {"range_end", base64(prefix_end(prefix))}});
    return range_answer(answer, endpoint());
}

EtcdResult<std::optional<std::string>> Etcd::get(std::string_view key) {
    const EtcdResult<json> answer = call("/v3/kv/range", {{"key", base64(key)}});
    EtcdResult<Listing> found = range_answer(answer, endpoint());
    if (auto* failure = std::get_if<EtcdFailure>(&found)) {
        return *failure;
    }
    std::vector<KeyValue>& entries = std::get<Listing>(found).entries;
    if (entries.empty()) {
        return std::optional<std::string>();
    }
    return std::optional<std::string>(std::move(entries.front().value));
}

namespace {

// A watch stream as libcurl hands it over, in pieces: etcd's gateway writes each message as one
// line of JSON (its streaming marshaller ends each with a newline, and JSON escapes any newline
// inside a string), so a message is complete at each newline.
struct WatchStream {
    const std::function<void(const WatchResponse&)>& on_response;
    const std::function<bool()>& stop;
    std::string pending;
    bool opened = false;     // etcd has answered: a lost stream from here on is not a failed open
    bool compacted = false;  // the last message said the revisions asked for are gone
    std::optional<std::string> error;  // an error etcd reported, or a message unreadable
};

std::optional<WatchEvent> watch_event(const json& event) {
    if (!event.is_object() || !event.contains("kv") || !event["kv"].is_object()) {
        return std::nullopt;
    }
    const json& kv = event["kv"];
    const std::optional<std::string> key = from_base64(kv.value("key", std::string()));
    const std::optional<std::string> value = from_base64(kv.value("value", std::string()));
    if (!key || !value) {
        return std::nullopt;
    }
    // PUT is the enum's default, which the gateway leaves out.
    return WatchEvent{.deleted = event.value("type", std::string()) == "DELETE",
                      .key = *key,
                      .value = *value,
                      .create_revision = int64_field(kv, "create_revision"),
                      .mod_revision = int64_field(kv, "mod_revision")};
}

// false when the stream must end: compacted, or an error.
bool take_message(WatchStream& stream, std::string_view line) {
    const json message = json::parse(line, nullptr, false);
    if (!message.is_object() || message.contains("error") || !message.contains("result")) {
        stream.error = message.is_object() && message.contains("error")
                           ? message["error"].value("message", std::string("an error"))
                           : "a watch message that is not JSON";
        return false;
    }
    const json& result = message["result"];
    WatchResponse response;
    response.compact_revision = int64_field(result, "compact_revision");
    if (result.contains("events") && result["events"].is_array()) {
        for (const json& event : result["events"]) {
            std::optional<WatchEvent> decoded = watch_event(event);
            if (!decoded) {
                stream.error = "a watch event that cannot be read";
                return false;
            }
            response.events.push_back(std::move(*decoded));
        }
    }
    if (response.compact_revision > 0) {
        stream.compacted = true;
        stream.on_response(response);
        return false;
    }
    if (result.value("canceled", false)) {
        stream.error = "the watch was cancelled: " + result.value("cancel_reason", std::string());
        return false;
    }
    stream.on_response(response);  // the first one, without events, says the watch is set up
    return true;
}

std::size_t take_stream(char* data, std::size_t size, std::size_t count, void* sink) {
    auto& stream = *static_cast<WatchStream*>(sink);
    stream.opened = true;
    stream.pending.append(data, size * count);
    std::size_t start = 0;
    for (std::size_t end = stream.pending.find('\n'); end != std::string::npos;
         end = stream.pending.find('\n', start)) {
        const std::string_view line = std::string_view(stream.pending).substr(start, end - start);
        start = end + 1;
        if (!line.empty() && !take_message(stream, line)) {
            return 0;  // ends the transfer
        }
    }
    stream.pending.erase(0, start);
    return size * count;
}

int poll_stop(void* sink, curl_off_t /*dltotal*/, curl_off_t /*dlnow*/, curl_off_t /*ultotal*/,
              curl_off_t /*ulnow*/) {
    return static_cast<WatchStream*>(sink)->stop() ? 1 : 0;
}

}  // namespace

std::optional<EtcdFailure> Etcd::watch(std::string_view prefix, std::int64_t from,
                                       const std::function<void(const WatchResponse&)>& on_response,
                                       const std::function<bool()>& stop) {
    const std::string request = json{{"create_request",
                                      {{"key", base64(prefix)},
                                       {"range_end", base64(prefix_end(prefix))},
                                       {"start_revision", std::to_string(from)}}}}
                                    .dump();
    std::string last_error = "no endpoint";
    const std::size_t first = current_;
    for (std::size_t tried = 0; tried < endpoints_.size(); ++tried) {
        const std::size_t at = (first + tried) % endpoints_.size();
        current_ = at;  // endpoint() names it while the stream lasts
        WatchStream stream{.on_response = on_response, .stop = stop, .pending = {}, .error = {}};
        CURL* curl = handle_->curl;
        prepare(curl, endpoints_[at] + "/v3/watch");
        libcurl().easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                              0L);  // the stream lasts: only connecting is bounded
        // Without traffic for a long while a peer that vanished is noticed by TCP's keep-alive.
        libcurl().easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
        libcurl().easy_setopt(curl, CURLOPT_TCP_KEEPIDLE, 5L);
        libcurl().easy_setopt(curl, CURLOPT_TCP_KEEPINTVL, 5L);
        libcurl().easy_setopt(curl, CURLOPT_POSTFIELDS, request.c_str());
        libcurl().easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(request.size()));
        libcurl().easy_setopt(curl, CURLOPT_WRITEFUNCTION, take_stream);
        libcurl().easy_setopt(curl, CURLOPT_WRITEDATA, &stream);
        libcurl().easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
        libcurl().easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, poll_stop);
        libcurl().easy_setopt(curl, CURLOPT_XFERINFODATA, &stream);
        const CURLcode code = libcurl().easy_perform(curl);
        if (code == CURLE_ABORTED_BY_CALLBACK || stream.compacted) {
            return std::nullopt;
        }
        if (stream.error) {
            return EtcdFailure{EtcdFailure::Kind::refused, endpoints_[at] + ": " + *stream.error};
        }
        last_error =
            endpoints_[at] + ": " + (code == CURLE_OK ? "the stream ended" : failure_text(code));
        if (stream.opened) {
            current_ = (at + 1) % endpoints_.size();  // lost: resumed on the next endpoint
            return EtcdFailure{EtcdFailure::Kind::unreachable, "lost the watch on " + last_error};
        }
    }
    current_ = first;
    return EtcdFailure{EtcdFailure::Kind::unreachable, last_error};
}

std::optional<EtcdFailure> Etcd::txn(std::span<const EtcdOp> ops, std::int64_t lease) {
    json success = json::array();
    for (const EtcdOp& op : ops) {
        if (op.value) {
            success.push_back({{"request_put",
                                {{"key", base64(op.key)},
                                 {"value", base64(*op.value)},
                                 {"lease", std::to_string(lease)}}}});
        } else {
            success.push_back({{"request_delete_range", {{"key", base64(op.key)}}}});
        }
    }
    EtcdResult<json> answer = call("/v3/kv/txn", {{"success", std::move(success)}});
    if (auto* failure = std::get_if<EtcdFailure>(&answer)) {
        return *failure;
    }
    return std::nullopt;
}

}  // namespace epmdx::server::fleet
