// SPDX-License-Identifier: Apache-2.0
// Static entries: the -static file's parser (every bad line named by file and line), reading the
// file, and how the registry keeps the entries (listed after registrations, never removed, their
// names not registrable).
#include "server/config/static_entries.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "registry/registry.hpp"

namespace epmdx::server {
namespace {

using namespace std::string_literals;

// name:port for each entry, in order.
std::vector<std::string> entries_of(const StaticFile& file) {
    std::vector<std::string> entries;
    for (const wire::NodeInfo& node : file.nodes) {
        entries.push_back(node.name + ":" + std::to_string(node.port));
    }
    return entries;
}

StaticFile parsed(std::string_view text) {
    return parse_static_file(text, "nodes.conf");
}

// The error for text, which must not parse.
std::string error_of(std::string_view text) {
    const StaticFile file = parsed(text);
    EXPECT_TRUE(file.nodes.empty()) << text;
    EXPECT_NE(file.error, "") << text;
    return file.error;
}

// ---- Good files ----------------------------------------------------------------------------

TEST(StaticFileParser, ReadsNamePortLinesInOrder) {
    const StaticFile file = parsed("alpha 4370\nbeta 65535\ngamma 1\n");
    EXPECT_EQ(file.error, "");
    EXPECT_EQ(entries_of(file), (std::vector<std::string>{"alpha:4370", "beta:65535", "gamma:1"}));
}

TEST(StaticFileParser, SkipsCommentsAndBlankLines) {
    const StaticFile file = parsed(
        "# nodes that start with -erl_epmd_port\n"
        "\n"
        "   \t \n"
        "  alpha\t 4370   # the first\n"
        "\t# indented comment\n"
        "beta 4371 #\n"
        "gamma 4372");  // no final newline
    EXPECT_EQ(file.error, "");
    EXPECT_EQ(entries_of(file),
              (std::vector<std::string>{"alpha:4370", "beta:4371", "gamma:4372"}));
}

TEST(StaticFileParser, OnlyAHashThatStartsAWordStartsAComment) {
    EXPECT_EQ(error_of("alpha 4370#1\n"),
              "nodes.conf:1: port \"4370#1\" is not a number from 1 to 65535");
    EXPECT_EQ(entries_of(parsed("al#pha 4370\n")), std::vector<std::string>{"al#pha:4370"});
}

TEST(StaticFileParser, AcceptsWindowsLineEndings) {
    const StaticFile file = parsed("alpha 4370\r\n# comment\r\n\r\nbeta 4371\r\n");
    EXPECT_EQ(file.error, "");
    EXPECT_EQ(entries_of(file), (std::vector<std::string>{"alpha:4370", "beta:4371"}));
}

TEST(StaticFileParser, SkipsAByteOrderMark) {
    EXPECT_EQ(entries_of(parsed("\xEF\xBB\xBF"
                                "alpha 4370\n")),
              std::vector<std::string>{"alpha:4370"});
    EXPECT_EQ(entries_of(parsed("\xEF\xBB\xBF# comment\nalpha 4370\n")),
              std::vector<std::string>{"alpha:4370"});
}

TEST(StaticFileParser, EmptyFileHasNoEntries) {
    EXPECT_EQ(parsed("").error, "");
    EXPECT_TRUE(parsed("").nodes.empty());
    EXPECT_EQ(parsed("# nothing yet\n\n").error, "");
}

TEST(StaticFileParser, AcceptsEveryNameAlive2Accepts) {
    // 255 four-byte characters: the longest name ALIVE2 takes.
    std::string longest;
    for (int i = 0; i < 255; ++i) {
        longest += "\xF0\x9F\x98\x88";
    }
    const StaticFile file = parsed(
        "n\xC3\xB8"
        "de 4370\n" +
        longest + " 4371\nx@y 4372\n");
    EXPECT_EQ(file.error, "");
    ASSERT_EQ(file.nodes.size(), 3U);
    EXPECT_EQ(file.nodes[1].name, longest);
}

TEST(StaticFileParser, EntriesReportWhatAnOtp23NodeRegisters) {
    const StaticFile file = parsed("alpha 4370\n");
    ASSERT_EQ(file.nodes.size(), 1U);
    const wire::NodeInfo& node = file.nodes[0];
    EXPECT_EQ(node.port, 4370);
    EXPECT_EQ(node.node_type, 77);  // 'M', a normal node
    EXPECT_EQ(node.protocol, 0);    // TCP/IPv4
    EXPECT_EQ(node.highest_version, 6);
    EXPECT_EQ(node.lowest_version, 5);
    EXPECT_EQ(node.extra, "");
    EXPECT_EQ(node, static_node("alpha", 4370));
}

// ---- Bad lines: each names the file and the line ---------------------------------------------

TEST(StaticFileParser, RefusesAMissingPort) {
    EXPECT_EQ(error_of("alpha 4370\n\nbeta\n"), "nodes.conf:3: expected NAME PORT, found 1 field");
}

TEST(StaticFileParser, RefusesExtraFields) {
    EXPECT_EQ(error_of("alpha 4370 extra\n"), "nodes.conf:1: expected NAME PORT, found 3 fields");
    EXPECT_EQ(error_of("# c\nalpha 4370 77 0 6 5\n"),
              "nodes.conf:2: expected NAME PORT, found 6 fields");
}

TEST(StaticFileParser, RefusesBadPorts) {
    EXPECT_EQ(error_of("alpha 0\n"), "nodes.conf:1: port \"0\" is not a number from 1 to 65535");
    EXPECT_EQ(error_of("a 1\nalpha 65536\n"),
              "nodes.conf:2: port \"65536\" is not a number from 1 to 65535");
    for (const char* port : {"-1", "+80", "80x", "0x50", "port", "99999999999999999999", "4e3"}) {
        EXPECT_EQ(error_of("alpha "s + port),
                  "nodes.conf:1: port \""s + port + "\" is not a number from 1 to 65535")
            << port;
    }
}

TEST(StaticFileParser, RefusesNamesAlive2Refuses) {
    std::string too_many_characters;
    for (int i = 0; i < 256; ++i) {
        too_many_characters += "\xC3\xB8";  // 512 bytes, 256 characters
    }
    EXPECT_EQ(
        error_of(too_many_characters + " 4370"),
        "nodes.conf:1: node name \"" + too_many_characters + "\" has more than 255 characters");
    const std::string too_long(1021, 'a');
    EXPECT_EQ(error_of("a 1\n" + too_long + " 4370"),
              "nodes.conf:2: node name \"" + too_long + "\" is longer than 1020 bytes");
    EXPECT_EQ(error_of("bad\xFF 4370"), "nodes.conf:1: node name \"bad\xFF\" is not valid UTF-8");
    EXPECT_EQ(error_of("bell\a 4370"),
              "nodes.conf:1: node name \"bell\a\" contains a control character");
    EXPECT_EQ(error_of("nul\0byte 4370"s),
              "nodes.conf:1: node name \"nul\0byte\" contains a control character"s);
}

TEST(StaticFileParser, RefusesADuplicateName) {
    EXPECT_EQ(error_of("alpha 4370\nbeta 4371\n# again\nalpha 4372\n"),
              "nodes.conf:4: node name \"alpha\" is already on line 1");
}

TEST(StaticFileParser, ReportsTheFirstBadLine) {
    EXPECT_EQ(error_of("alpha 4370\nbeta 0\ngamma\n"),
              "nodes.conf:2: port \"0\" is not a number from 1 to 65535");
}

// ---- Reading the file ------------------------------------------------------------------------

class StaticFileReading : public ::testing::Test {
  protected:
    void SetUp() override {
        directory_ = std::filesystem::temp_directory_path() /
                     ("epmdx-static-test-" + std::to_string(::getpid()));
        std::filesystem::create_directories(directory_);
    }
    void TearDown() override { std::filesystem::remove_all(directory_); }

    std::string write(const std::string& name, const std::string& text) {
        const std::filesystem::path path = directory_ / name;
        std::ofstream(path, std::ios::binary) << text;
        return path.string();
    }

    std::filesystem::path directory_;
};

TEST_F(StaticFileReading, ReadsAGoodFile) {
    const StaticFile file = read_static_file(write("good.conf", "alpha 4370\n"));
    EXPECT_EQ(file.error, "");
    EXPECT_EQ(entries_of(file), std::vector<std::string>{"alpha:4370"});
}

TEST_F(StaticFileReading, NamesThePathInLineErrors) {
    const std::string path = write("bad.conf", "alpha 4370\nbeta 70000\n");
    EXPECT_EQ(read_static_file(path).error,
              path + ":2: port \"70000\" is not a number from 1 to 65535");
}

TEST_F(StaticFileReading, AMissingFileIsAnError) {
    const std::string path = (directory_ / "missing.conf").string();
    const StaticFile file = read_static_file(path);
    EXPECT_TRUE(file.nodes.empty());
    EXPECT_EQ(file.error, "cannot read " + path + ": No such file or directory");
}

TEST_F(StaticFileReading, ADirectoryIsAnError) {
    const StaticFile file = read_static_file(directory_.string());
    EXPECT_TRUE(file.nodes.empty());
    EXPECT_EQ(file.error, "cannot read " + directory_.string() + ": Is a directory");
}

// ---- In the registry -------------------------------------------------------------------------

Registry registry() {
    return Registry(Registry::default_old_capacity, [] { return 1000U; });
}

wire::NodeInfo registered(std::string name, std::uint16_t port) {
    wire::NodeInfo node;
    node.name = std::move(name);
    node.port = port;
    return node;
}

TEST(StaticEntriesInRegistry, FoundListedAfterRegistrationsInFileOrder) {
    Registry nodes = registry();
    ASSERT_TRUE(nodes.add(registered("early", 6000), 7, nullptr));
    ASSERT_TRUE(nodes.add_static(static_node("s1", 5001)));
    ASSERT_TRUE(nodes.add_static(static_node("s2", 5002)));
    ASSERT_TRUE(nodes.add(registered("late", 6001), 8, nullptr));

    const Registry::ActiveNode* found = nodes.find("s2");
    ASSERT_NE(found, nullptr);
    EXPECT_TRUE(found->is_static);
    EXPECT_EQ(found->info, static_node("s2", 5002));
    EXPECT_EQ(found->holder, nullptr);
    EXPECT_FALSE(nodes.find("late")->is_static);

    EXPECT_EQ(*nodes.names_text(),
              "name late at port 6001\nname early at port 6000\n"
              "name s1 at port 5001\nname s2 at port 5002\n");
    EXPECT_EQ(nodes.dump_text(),
              "active name     <late> at port 6001, fd = 8\n\0"
              "active name     <early> at port 6000, fd = 7\n\0"
              "active name     <s1> at port 5001, fd = -1\n\0"
              "active name     <s2> at port 5002, fd = -1\n\0"s);
    EXPECT_EQ(nodes.active_count(), 4U);
    EXPECT_EQ(nodes.registered_count(), 2U);
}

TEST(StaticEntriesInRegistry, NameCannotBeRegisteredOrAddedTwice) {
    Registry nodes = registry();
    ASSERT_TRUE(nodes.add_static(static_node("s1", 5001)));
    EXPECT_FALSE(nodes.add(registered("s1", 6000), 7, nullptr));
    EXPECT_FALSE(nodes.add_static(static_node("s1", 5002)));
    EXPECT_EQ(nodes.find("s1")->info.port, 5001);

    ASSERT_TRUE(nodes.add(registered("taken", 6000), 7, nullptr));
    EXPECT_FALSE(nodes.add_static(static_node("taken", 5003)));
    EXPECT_EQ(nodes.registered_count(), 1U);
    EXPECT_EQ(nodes.active_count(), 2U);
}

TEST(StaticEntriesInRegistry, NeverRemovedNorMovedToTheOldList) {
    Registry nodes = registry();
    ASSERT_TRUE(nodes.add_static(static_node("s1", 5001)));
    EXPECT_FALSE(nodes.remove("s1"));
    EXPECT_NE(nodes.find("s1"), nullptr);
    EXPECT_EQ(nodes.old_count(), 0U);
    EXPECT_EQ(*nodes.names_text(), "name s1 at port 5001\n");
}

}  // namespace
}  // namespace epmdx::server
