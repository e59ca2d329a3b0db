// SPDX-License-Identifier: Apache-2.0
// -fleet over TLS against a real etcd that serves https:// and requires client certificates
// (--client-cert-auth), with a CA and certificates that openssl makes for each test: publishing
// and -fleet -names with the TLS options, a client without a certificate, a CA that does not
// sign etcd's certificate or a name it does not carry, and TLS options that cannot be used.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "etcd_server.hpp"
#include "harness.hpp"

namespace epmdx::test {
namespace {

namespace fs = std::filesystem;

struct KeyPair {
    fs::path cert;
    fs::path key;
};

// A certificate authority of its own, in a directory of the test's logs, and what it signs.
class TestCa {
  public:
    TestCa(fs::path dir, const std::string& name) : dir_(std::move(dir)), name_(name) {
        fs::create_directories(dir_);
        self_ = paths(name);
        const RunResult made =
            run({OPENSSL_BINARY, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=" + name,
                 "-keyout", self_.key.string(), "-out", self_.cert.string()});
        EXPECT_EQ(made.exit_code, 0) << made.err;
    }

    const fs::path& cert() const { return self_.cert; }

    // A certificate for `name` signed by this CA, with the X.509v3 `extension` line.
    KeyPair issue(const std::string& name, const std::string& extension) const {
        KeyPair issued = paths(name);
        const fs::path request = dir_ / (name + ".csr");
        const fs::path extensions = dir_ / (name + ".ext");
        std::ofstream(extensions) << extension << "\n";
        RunResult made = run({OPENSSL_BINARY, "req", "-new", "-newkey", "ec", "-pkeyopt",
                              "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=" + name,
                              "-keyout", issued.key.string(), "-out", request.string()});
        EXPECT_EQ(made.exit_code, 0) << made.err;
        made = run({OPENSSL_BINARY, "x509", "-req", "-in", request.string(), "-CA",
                    self_.cert.string(), "-CAkey", self_.key.string(), "-set_serial",
                    std::to_string(++serial_), "-days", "1", "-extfile", extensions.string(),
                    "-out", issued.cert.string()});
        EXPECT_EQ(made.exit_code, 0) << made.err;
        return issued;
    }

  private:
    KeyPair paths(const std::string& name) const {
        return {dir_ / (name_ + "-" + name + ".pem"), dir_ / (name_ + "-" + name + ".key")};
    }

    fs::path dir_;
    std::string name_;
    KeyPair self_;
    mutable int serial_ = 0;
};

// A CA, etcd's certificate for 127.0.0.1 and a client's, and an etcd started with them.
struct TlsFleet {
    TestCa ca{log_path("certs"), "ca"};
    KeyPair server = ca.issue("server", "subjectAltName=IP:127.0.0.1");
    KeyPair client = ca.issue("client", "extendedKeyUsage=clientAuth");
    EtcdServer etcd{EtcdTls{.server_cert = server.cert,
                            .server_key = server.key,
                            .client_ca = ca.cert(),
                            .ca = ca.cert(),
                            .client_cert = client.cert,
                            .client_key = client.key}};

    std::vector<std::string> tls_args() const {
        return {"-fleet_cacert",      ca.cert().string(), "-fleet_cert",
                client.cert.string(), "-fleet_key",       client.key.string()};
    }
    // epmdx -fleet URL (the TLS arguments) -fleet_prefix PREFIX -names
    RunResult names(const std::vector<std::string>& tls, const std::string& prefix,
                    const std::string& url = {}) const {
        std::vector<std::string> argv = {epmdx_binary(), "-fleet", url.empty() ? etcd.url() : url};
        argv.insert(argv.end(), tls.begin(), tls.end());
        argv.insert(argv.end(), {"-fleet_prefix", prefix, "-names"});
        return run(argv);
    }
};

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

TEST(FleetTls, PublishesOverTlsAndListsWithTheOptions) {
    TlsFleet fleet;
    fleet.etcd.start();
    // The daemon from the variables, the command line from the flags.
    Daemon daemon =
        Daemon::start(DaemonKind::epmdx, {"-fleet_prefix", "/s1/", "-fleet_host", "hostT"},
                      {{"ERL_EPMD_FLEET", fleet.etcd.url()},
                       {"ERL_EPMD_FLEET_CACERT", fleet.ca.cert().string()},
                       {"ERL_EPMD_FLEET_CERT", fleet.client.cert.string()},
                       {"ERL_EPMD_FLEET_KEY", fleet.client.key.string()}});
    Registration alpha = register_node(daemon.port(), "alpha", 5101);
    ASSERT_TRUE(fleet.etcd.holds_exactly("/s1/", {"/s1/nodes/hostT/alpha"})) << daemon.log();
    EXPECT_TRUE(contains(daemon.log(), "-fleet: publishing to etcd at " + fleet.etcd.url()));

    const RunResult listed = fleet.names(fleet.tls_args(), "/s1/");
    EXPECT_EQ(listed.exit_code, 0) << listed.err;
    EXPECT_EQ(listed.out, "hostT: name alpha at port 5101\n");
    EXPECT_EQ(listed.err, "");

    alpha.conn.close();
    EXPECT_TRUE(fleet.etcd.holds_exactly("/s1/", {})) << daemon.log();
}

TEST(FleetTls, AClientWithoutACertificateIsRefusedAndTheDaemonServesLocally) {
    TlsFleet fleet;
    fleet.etcd.start();
    Daemon daemon = Daemon::start(
        DaemonKind::epmdx, {"-fleet", fleet.etcd.url(), "-fleet_cacert", fleet.ca.cert().string(),
                            "-fleet_prefix", "/s2/", "-fleet_host", "hostN"});
    Registration local = register_node(daemon.port(), "local", 5102);
    EXPECT_TRUE(wait_for_names(daemon.port(), [](const std::vector<NameEntry>& entries) {
        return entries == std::vector<NameEntry>{{"local", 5102}};
    }));
    const std::string hint =
        "(etcd may require a client certificate: give -fleet_cert and -fleet_key)";
    EXPECT_TRUE(eventually([&] { return contains(daemon.log(), hint); }, 5s)) << daemon.log();
    const std::string log = daemon.log();
    EXPECT_TRUE(contains(log, "-fleet: cannot reach etcd (" + fleet.etcd.url() + ": ")) << log;
    EXPECT_TRUE(fleet.etcd.holds_exactly("/s2/", {}, 0ms));

    const RunResult listed = fleet.names({"-fleet_cacert", fleet.ca.cert().string()}, "/s2/");
    EXPECT_EQ(listed.exit_code, 1);
    EXPECT_TRUE(contains(listed.err,
                         "epmdx: -fleet: cannot read the fleet view: " + fleet.etcd.url() + ": "))
        << listed.err;
    EXPECT_TRUE(contains(listed.err, hint)) << listed.err;

    // The variables are the daemon's: the command line does not read them.
    const RunResult without_flags =
        run({epmdx_binary(), "-fleet", fleet.etcd.url(), "-fleet_prefix", "/s2/", "-names"},
            {{"ERL_EPMD_FLEET_CACERT", fleet.ca.cert().string()},
             {"ERL_EPMD_FLEET_CERT", fleet.client.cert.string()},
             {"ERL_EPMD_FLEET_KEY", fleet.client.key.string()}});
    EXPECT_EQ(without_flags.exit_code, 1);
    EXPECT_TRUE(contains(without_flags.err, "SSL certificate problem")) << without_flags.err;
}

TEST(FleetTls, EtcdIsVerifiedByCaAndByName) {
    TlsFleet fleet;
    fleet.etcd.start();
    const TestCa stranger(log_path("stranger"), "stranger");
    std::vector<std::string> wrong_ca = fleet.tls_args();
    wrong_ca[1] = stranger.cert().string();
    Daemon daemon = Daemon::start(DaemonKind::epmdx, {"-fleet", fleet.etcd.url(), "-fleet_prefix",
                                                      "/s3/", "-fleet_host", "hostV"});
    Daemon refused = Daemon::start(DaemonKind::epmdx, [&] {
        std::vector<std::string> args = {"-fleet", fleet.etcd.url(), "-fleet_prefix",
                                         "/s3/",   "-fleet_host",    "hostW"};
        args.insert(args.end(), wrong_ca.begin(), wrong_ca.end());
        return args;
    }());
    const std::string unverified =
        "SSL certificate problem: unable to get local issuer certificate";
    EXPECT_TRUE(eventually([&] { return contains(refused.log(), unverified); }, 5s))
        << refused.log();
    // Without -fleet_cacert: the system's store, which does not know the test's CA either.
    EXPECT_TRUE(eventually([&] { return contains(daemon.log(), unverified); }, 5s)) << daemon.log();
    Registration node = register_node(refused.port(), "kept", 5103);
    EXPECT_TRUE(fleet.etcd.holds_exactly("/s3/", {}, 0ms));

    const RunResult listed = fleet.names(wrong_ca, "/s3/");
    EXPECT_EQ(listed.exit_code, 1);
    EXPECT_TRUE(contains(listed.err, unverified)) << listed.err;
    EXPECT_FALSE(contains(listed.err, "client certificate")) << listed.err;
    // The right CA, but a name etcd's certificate does not carry (it has IP:127.0.0.1 only).
    const std::string by_name =
        "https://localhost:" + fleet.etcd.url().substr(fleet.etcd.url().rfind(':') + 1);
    const RunResult misnamed = fleet.names(fleet.tls_args(), "/s3/", by_name);
    EXPECT_EQ(misnamed.exit_code, 1);
    EXPECT_TRUE(contains(misnamed.err, "'localhost'")) << misnamed.err;
    // And all right with both.
    EXPECT_EQ(fleet.names(fleet.tls_args(), "/s3/").exit_code, 0);
}

TEST(FleetTls, UnusableTlsOptionsExitOneNamingTheOptionAndTheFile) {
    const fs::path certs = log_path("certs");
    const TestCa ca(certs, "ca");
    const KeyPair client = ca.issue("client", "extendedKeyUsage=clientAuth");
    const std::string missing = (certs / "no-such.pem").string();
    const std::string tls_url = "https://127.0.0.1:" + std::to_string(free_port());
    struct Case {
        std::vector<std::string> args;
        Env env;
        std::string message;
    };
    const std::vector<Case> cases = {
        {{"-fleet", tls_url, "-fleet_cert", client.cert.string()},
         {},
         "-fleet_cert " + client.cert.string() + " needs -fleet_key, its private key"},
        {{"-fleet", tls_url},
         {{"ERL_EPMD_FLEET_KEY", client.key.string()}},
         "-fleet_key " + client.key.string() +
             " needs -fleet_cert, the certificate it is the key of"},
        {{"-fleet", tls_url, "-fleet_cacert", missing},
         {},
         "-fleet_cacert: cannot read " + missing + ": No such file or directory"},
        {{"-fleet", tls_url, "-fleet_cert", client.cert.string(), "-fleet_key", certs.string()},
         {},
         "-fleet_key: cannot read " + certs.string() + ": Is a directory"},
        {{"-fleet", "http://127.0.0.1:1," + tls_url},
         {},
         "\"http://127.0.0.1:1," + tls_url + "\" mixes http:// and https:// endpoints"},
        {{"-fleet", "http://127.0.0.1:1", "-fleet_cacert", ca.cert().string()},
         {},
         "-fleet_cacert, -fleet_cert and -fleet_key are for https:// endpoints; these are "
         "http://"},
    };
    for (const Case& bad : cases) {
        // The daemon says so and exits 1 before it listens.
        std::vector<std::string> daemon = {epmdx_binary(), "-port", std::to_string(free_port()),
                                           "-address", "127.0.0.1"};
        daemon.insert(daemon.end(), bad.args.begin(), bad.args.end());
        const RunResult started = run(daemon, bad.env);
        EXPECT_EQ(started.exit_code, 1) << bad.message;
        EXPECT_TRUE(contains(started.err, bad.message)) << started.err;
        if (!bad.env.empty()) {
            continue;  // the variables are the daemon's only
        }
        // The command line refuses the same before asking etcd.
        std::vector<std::string> cli = {epmdx_binary()};
        cli.insert(cli.end(), bad.args.begin(), bad.args.end());
        cli.push_back("-names");
        const RunResult listed = run(cli);
        EXPECT_EQ(listed.exit_code, 1) << bad.message;
        EXPECT_TRUE(contains(listed.err, "epmdx: ")) << listed.err;
        EXPECT_TRUE(contains(listed.err, bad.message)) << listed.err;
    }
    const RunResult empty = run({epmdx_binary(), "-fleet", tls_url, "-fleet_cacert", "", "-names"});
    EXPECT_EQ(empty.exit_code, 1);
    EXPECT_EQ(empty.err, "epmdx: -fleet_cacert needs a file name\n");
}

}  // namespace
}  // namespace epmdx::test
