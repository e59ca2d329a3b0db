// SPDX-License-Identifier: Apache-2.0
// The fleet view's layout in etcd: keys, escaping, the JSON value and the endpoint list.
#include <gtest/gtest.h>

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
        "http://127.0.0.1:2379,http://[::1]:2379/,nonsense,https://a:1,"
        "http://a:1/v3,ftp://a");
    EXPECT_EQ(parsed.urls,
              (std::vector<std::string>{"http://127.0.0.1:2379", "http://[::1]:2379"}));
    ASSERT_EQ(parsed.errors.size(), 4U);
    EXPECT_NE(parsed.errors[0].find("\"nonsense\" is not a URL"), std::string::npos);
    EXPECT_NE(parsed.errors[1].find("only http://"), std::string::npos);
    EXPECT_NE(parsed.errors[2].find("nothing after it"), std::string::npos);
    EXPECT_TRUE(parse_endpoints("").urls.empty());
}

TEST(FleetHost, IsTheShortName) {
    const std::string host = short_host_name();
    EXPECT_FALSE(host.empty());
    EXPECT_EQ(host.find('.'), std::string::npos);
}

}  // namespace
}  // namespace epmdx::server::fleet
