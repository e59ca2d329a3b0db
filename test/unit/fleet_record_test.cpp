// SPDX-License-Identifier: Apache-2.0
// The fleet view's layout in etcd: keys, escaping, the JSON value, the endpoint list and the TLS
// files.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "server/fleet/record.hpp"

namespace epmdx::server::fleet {
namespace {

FleetNode sample_node() {
    FleetNode node;
    node.info.name = "we/ird%\xc3\xa9";
    node.info.port = 40123;
    node.info.node_type = 72;
    node.info.protocol = 0;
    node.info.highest_version = 6;
    node.info.lowest_version = 5;
    node.info.extra = std::string("\x01\xff", 2);
    node.host = "db1";
    node.creation = 1234567;
    node.since = std::chrono::system_clock::from_time_t(1'700'000'000);
    return node;
}

TEST(FleetKey, EscapesEveryUnsafeByteAndKeepsTheRest) {
    EXPECT_EQ(escape_key_part("node_1.a-b"), "node_1.a-b");
    EXPECT_EQ(escape_key_part("we/ird%\xc3\xa9 x"), "we%2Fird%25%C3%A9%20x");
    const std::string long_name(255, 'n');
    EXPECT_EQ(escape_key_part(long_name), long_name);  // never truncated
}

TEST(FleetKey, IsPrefixNodesHostName) {
    EXPECT_EQ(nodes_prefix("/epmdx/"), "/epmdx/nodes/");
    EXPECT_EQ(host_prefix("/epmdx/", "db/1"), "/epmdx/nodes/db%2F1/");
    EXPECT_EQ(node_key("/epmdx/", "db1", "a/b"), "/epmdx/nodes/db1/a%2Fb");
}

TEST(FleetKey, UnescapesWhatItEscapedAndNothingElse) {
    std::string every_byte;
    for (int byte = 0; byte < 256; ++byte) {
        every_byte += static_cast<char>(byte);
    }
    for (const std::string& bytes :
         {std::string("node_1.a-b"), std::string("we/ird%\xc3\xa9 x"), every_byte, std::string()}) {
        EXPECT_EQ(unescape_key_part(escape_key_part(bytes)), bytes);
    }
    // Text escape_key_part cannot have written.
    for (const std::string_view text : {"a/b", "a%2", "a%", "%2f", "%41", "a b", "%G0", "%%"}) {
        EXPECT_EQ(unescape_key_part(text), std::nullopt) << text;
    }
}

TEST(FleetKey, ParsesBackToHostAndName) {
    const std::optional<NodeKey> parsed =
        parse_node_key("/epmdx/", node_key("/epmdx/", "db/1", "we/ird%\xc3\xa9"));
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->host, "db/1");
    EXPECT_EQ(parsed->name, "we/ird%\xc3\xa9");
    for (const std::string_view key :
         {"/other/nodes/db1/a", "/epmdx/nodes/db1", "/epmdx/nodes/db1/a/b", "/epmdx/nodes//a",
          "/epmdx/nodes/db1/", "/epmdx/nodes/db%2f1/a", "/epmdx/leases/x"}) {
        EXPECT_EQ(parse_node_key("/epmdx/", key).has_value(), false) << key;
    }
}

TEST(FleetValue, CarriesEveryFieldAndReadsBack) {
    const std::optional<nlohmann::json> value = decode_node(encode_node(sample_node()));
    ASSERT_TRUE(value);
    EXPECT_EQ((*value)["name"], "we/ird%\xc3\xa9");
    EXPECT_EQ((*value)["host"], "db1");
    EXPECT_EQ((*value)["port"], 40123);
    EXPECT_EQ((*value)["type"], 72);
    EXPECT_EQ((*value)["protocol"], 0);
    EXPECT_EQ((*value)["highest_version"], 6);
    EXPECT_EQ((*value)["lowest_version"], 5);
    EXPECT_EQ((*value)["extra_hex"], "01ff");
    EXPECT_EQ((*value)["creation"], 1234567);
    EXPECT_EQ((*value)["registered_since"], "2023-11-14T22:13:20Z");
    EXPECT_EQ((*value)["static"], false);
}

TEST(FleetValue, GivesTheNodeBack) {
    const FleetNode node = sample_node();
    EXPECT_EQ(node_info(*decode_node(encode_node(node))), node.info);
}

TEST(FleetValue, MarksStaticEntries) {
    FleetNode node = sample_node();
    node.is_static = true;
    EXPECT_EQ((*decode_node(encode_node(node)))["static"], true);
}

TEST(FleetValue, TheSameNodeWhateverItsRegistrationTime) {
    const FleetNode node = sample_node();
    FleetNode later = node;
    later.since += std::chrono::hours(1);
    EXPECT_TRUE(same_node(encode_node(node), encode_node(later)));
    FleetNode moved = node;
    moved.info.port = 40124;
    EXPECT_FALSE(same_node(encode_node(node), encode_node(moved)));
    FleetNode reborn = node;
    reborn.creation += 1;
    EXPECT_FALSE(same_node(encode_node(node), encode_node(reborn)));
    EXPECT_FALSE(same_node("not ours", encode_node(node)));
}

TEST(FleetValue, RefusesValuesThatAreNotOurs) {
    EXPECT_FALSE(decode_node("x"));
    EXPECT_FALSE(decode_node("[]"));
    EXPECT_FALSE(decode_node(R"({"name":"a","port":1})"));
    nlohmann::json ours = nlohmann::json::parse(encode_node(sample_node()));
    nlohmann::json bad_port = ours;
    bad_port["port"] = 70000;
    EXPECT_FALSE(decode_node(bad_port.dump()));
    nlohmann::json other_format = ours;
    other_format["epmdx_fleet"] = 2;
    EXPECT_FALSE(decode_node(other_format.dump()));
    nlohmann::json missing = ours;
    missing.erase("static");
    EXPECT_FALSE(decode_node(missing.dump()));
}

TEST(FleetEndpoints, KeepsHttpUrlsAndNamesTheOthers) {
    const Endpoints parsed = parse_endpoints(
        "http://127.0.0.1:2379,http://[::1]:2379/,nonsense,http://a:1/v3,ftp://a,https://a:1/x");
    EXPECT_EQ(parsed.urls,
              (std::vector<std::string>{"http://127.0.0.1:2379", "http://[::1]:2379"}));
    EXPECT_FALSE(parsed.https);
    EXPECT_FALSE(parsed.mixed);
    ASSERT_EQ(parsed.errors.size(), 4U);
    EXPECT_NE(parsed.errors[0].find("\"nonsense\" is not a URL"), std::string::npos);
    EXPECT_NE(parsed.errors[1].find("an endpoint is http://HOST:PORT, with nothing after it"),
              std::string::npos);
    EXPECT_NE(parsed.errors[2].find("only http:// and https://"), std::string::npos);
    EXPECT_NE(parsed.errors[3].find("an endpoint is https://HOST:PORT, with nothing after it"),
              std::string::npos);
    EXPECT_TRUE(parse_endpoints("").urls.empty());
}

TEST(FleetEndpoints, KeepsHttpsUrls) {
    const Endpoints parsed = parse_endpoints("https://127.0.0.1:2379/,https://etcd2:2379");
    EXPECT_EQ(parsed.urls,
              (std::vector<std::string>{"https://127.0.0.1:2379", "https://etcd2:2379"}));
    EXPECT_TRUE(parsed.https);
    EXPECT_TRUE(parsed.errors.empty());
}

TEST(FleetEndpoints, RefusesAListThatMixesHttpAndHttps) {
    const Endpoints parsed = parse_endpoints("https://a:2379,http://b:2379");
    EXPECT_TRUE(parsed.mixed);
    EXPECT_TRUE(parsed.urls.empty());
    EXPECT_EQ(parsed.errors,
              (std::vector<std::string>{"\"https://a:2379,http://b:2379\" mixes http:// and "
                                        "https:// endpoints; use https:// for every one (or "
                                        "http:// for every one)"}));
    // A refused item does not count as a scheme.
    EXPECT_FALSE(parse_endpoints("https://a:2379,http://b:2379/v3").mixed);
}

TEST(FleetTlsFiles, WantACertificateWithItsKeyAndReadableFiles) {
    const std::string file = ::testing::TempDir() + "fleet-tls-unit.pem";
    std::ofstream(file) << "PEM\n";  // read, never parsed: libcurl reads it when it connects
    const Endpoints https = parse_endpoints("https://a:2379");
    EXPECT_EQ(tls_error({}, https), std::nullopt);
    EXPECT_EQ(tls_error({.cacert = file, .cert = file, .key = file}, https), std::nullopt);
    EXPECT_EQ(tls_error({.cacert = {}, .cert = file, .key = {}}, https),
              "-fleet_cert " + file + " needs -fleet_key, its private key");
    EXPECT_EQ(tls_error({.cacert = {}, .cert = {}, .key = file}, https),
              "-fleet_key " + file + " needs -fleet_cert, the certificate it is the key of");
    EXPECT_EQ(tls_error({.cacert = "/nonexistent/ca.pem", .cert = {}, .key = {}}, https),
              "-fleet_cacert: cannot read /nonexistent/ca.pem: No such file or directory");
    EXPECT_EQ(tls_error({.cacert = {}, .cert = file, .key = "/"}, https),
              "-fleet_key: cannot read /: Is a directory");
    EXPECT_EQ(tls_error({.cacert = file, .cert = {}, .key = {}}, parse_endpoints("http://a:2379")),
              "-fleet_cacert, -fleet_cert and -fleet_key are for https:// endpoints; these are "
              "http://");
    // No usable endpoint: the daemon warns about the list; the files are still checked.
    EXPECT_EQ(tls_error({.cacert = file, .cert = {}, .key = {}}, parse_endpoints("nonsense")),
              std::nullopt);
    std::filesystem::remove(file);
}

TEST(FleetHost, IsTheShortName) {
    const std::string host = short_host_name();
    EXPECT_FALSE(host.empty());
    EXPECT_EQ(host.find('.'), std::string::npos);
}

}  // namespace
}  // namespace epmdx::server::fleet
