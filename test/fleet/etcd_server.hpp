// SPDX-License-Identifier: Apache-2.0
// A real etcd for the fleet tests: one member from Debian's etcd-server on test ports of
// 127.0.0.1, started and stopped by the test, read back with Debian's etcdctl; over TLS with
// client certificates required when given EtcdTls.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"

namespace epmdx::test {

using Store = std::map<std::string, std::string>;

// Polls `done` every 50 ms until it holds or the timeout passes.
inline bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (done()) {
            return true;
        }
        if (std::chrono::steady_clock::now() >= until) {
            return false;
        }
        std::this_thread::sleep_for(50ms);
    }
}

// PEM files for an etcd that serves its clients over TLS and requires their certificates
// (--client-cert-auth), and the ones etcdctl presents to it.
struct EtcdTls {
    std::filesystem::path server_cert;
    std::filesystem::path server_key;
    std::filesystem::path client_ca;  // signs the client certificates etcd accepts
    std::filesystem::path ca;         // signs server_cert: what etcdctl verifies etcd with
    std::filesystem::path client_cert;
    std::filesystem::path client_key;
};

// One etcd member on test ports of 127.0.0.1, its data in a directory of its own that outlives
// a stop (so that a restart finds its keys and leases again).
class EtcdServer {
  public:
    explicit EtcdServer(std::optional<EtcdTls> tls = std::nullopt)
        : tls_(std::move(tls)),
          client_port_(free_port()),
          peer_port_(free_port()),
          data_(std::filesystem::temp_directory_path() /
                ("epmdx-fleet-etcd-" + std::to_string(::getpid()) + "-" +
                 std::to_string(client_port_))) {}
    EtcdServer(const EtcdServer&) = delete;
    EtcdServer& operator=(const EtcdServer&) = delete;
    ~EtcdServer() {
        stop();
        std::error_code ignored;
        std::filesystem::remove_all(data_, ignored);
    }

    std::string url() const {
        return (tls_ ? "https" : "http") + std::string("://127.0.0.1:") +
               std::to_string(client_port_);
    }

    void start() {
        const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
        std::vector<std::string> argv = {ETCD_BINARY,
                                         "--name",
                                         "fleet-test",
                                         "--data-dir",
                                         data_.string(),
                                         "--listen-client-urls",
                                         url(),
                                         "--advertise-client-urls",
                                         url(),
                                         "--listen-peer-urls",
                                         peer,
                                         "--initial-advertise-peer-urls",
                                         peer,
                                         "--initial-cluster",
                                         "fleet-test=" + peer};
        if (tls_) {
            argv.insert(argv.end(), {"--cert-file", tls_->server_cert.string(), "--key-file",
                                     tls_->server_key.string(), "--trusted-ca-file",
                                     tls_->client_ca.string(), "--client-cert-auth"});
        }
        process_ = Process::spawn(argv, {}, {}, log_path("etcd"));
        ASSERT_TRUE(wait_for_port(client_port_, process_, 15s)) << "etcd did not start";
        ASSERT_TRUE(eventually([this] { return ctl({"endpoint", "health"}).exit_code == 0; }, 15s));
    }
    // As a crash or a power cut would: no goodbye to anyone.
    void stop() {
        if (process_.pid() > 0 && process_.running()) {
            process_.kill();
            (void)process_.wait(5s);
        }
    }

    RunResult ctl(const std::vector<std::string>& args) const {
        std::vector<std::string> argv = {ETCDCTL_BINARY, "--endpoints", url(), "--dial-timeout",
                                         "2s"};
        if (tls_) {
            argv.insert(argv.end(),
                        {"--cacert", tls_->ca.string(), "--cert", tls_->client_cert.string(),
                         "--key", tls_->client_key.string()});
        }
        argv.insert(argv.end(), args.begin(), args.end());
        return run(argv, {{"ETCDCTL_API", "3"}});
    }
    void put(const std::string& key, const std::string& value) const {
        EXPECT_EQ(ctl({"put", key, value}).exit_code, 0);
    }
    // Every key under the prefix with its value (values are single lines here).
    Store get(const std::string& prefix) const {
        const RunResult listed = ctl({"get", "--prefix", prefix});
        EXPECT_EQ(listed.exit_code, 0) << listed.err;
        Store store;
        std::istringstream lines(listed.out);
        std::string key;
        std::string value;
        while (std::getline(lines, key) && std::getline(lines, value)) {
            store[key] = value;
        }
        return store;
    }
    // Waits until the keys under the prefix are exactly `keys`.
    bool holds_exactly(const std::string& prefix, const std::vector<std::string>& keys,
                       std::chrono::milliseconds timeout = 5s) const {
        return eventually(
            [&] {
                std::vector<std::string> present;
                for (const auto& [key, value] : get(prefix)) {
                    present.push_back(key);
                }
                return present == keys;
            },
            timeout);
    }

  private:
    std::optional<EtcdTls> tls_;
    std::uint16_t client_port_;
    std::uint16_t peer_port_;
    std::filesystem::path data_;
    Process process_;
};

// A daemon's options for publishing to `etcd` under `prefix` as `host`.
inline std::vector<std::string> fleet_args(const EtcdServer& etcd, const std::string& prefix,
                                           const std::string& host) {
    return {"-fleet", etcd.url(), "-fleet_prefix", prefix, "-fleet_host", host};
}

}  // namespace epmdx::test
