// SPDX-License-Identifier: Apache-2.0
// -fleet -hosts writes each host as a quoted Erlang atom; erl reading the output back is in
// test/fleet/fleet_cli_test.cpp.
#include <gtest/gtest.h>

#include "cli/fleet_actions.hpp"

namespace epmdx::cli {
namespace {

TEST(ErlangAtom, QuotesAndEscapesQuoteAndBackslash) {
    EXPECT_EQ(erlang_atom("db1"), "'db1'");
    EXPECT_EQ(erlang_atom("db1.example.com"), "'db1.example.com'");
    EXPECT_EQ(erlang_atom("it's"), "'it\\'s'");
    EXPECT_EQ(erlang_atom("a\\b"), "'a\\\\b'");
    EXPECT_EQ(erlang_atom("a b\"c"), "'a b\"c'");
    EXPECT_EQ(erlang_atom(""), "''");
}

TEST(ErlangAtom, WritesEveryOtherCharacterAsItsCode) {
    EXPECT_EQ(erlang_atom(std::string("t\tn\n\0z\x7f", 7)), "'t\\x{9}n\\x{A}\\x{0}z\\x{7F}'");
    // UTF-8 as its characters (2, 3 and 4 bytes).
    EXPECT_EQ(erlang_atom("caf\xc3\xa9"), "'caf\\x{E9}'");
    EXPECT_EQ(erlang_atom("\xe2\x82\xac\xf0\x9f\x98\x80"), "'\\x{20AC}\\x{1F600}'");
    // Not UTF-8 as a whole: every byte as the Latin-1 character it is.
    EXPECT_EQ(erlang_atom("\xc3\xa9\xff"), "'\\x{C3}\\x{A9}\\x{FF}'");
}

TEST(ErlangAtom, RefusesMoreThan255Characters) {
    EXPECT_EQ(erlang_atom(std::string(255, 'x')), "'" + std::string(255, 'x') + "'");
    EXPECT_EQ(erlang_atom(std::string(256, 'x')), std::nullopt);
    std::string accents;
    for (int i = 0; i < 255; ++i) {
        accents += "\xc3\xa9";  // 510 bytes, 255 characters
    }
    EXPECT_TRUE(erlang_atom(accents));
    EXPECT_EQ(erlang_atom(accents + "\xc3\xa9"), std::nullopt);
}

}  // namespace
}  // namespace epmdx::cli
