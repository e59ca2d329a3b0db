// SPDX-License-Identifier: Apache-2.0
#include "registry/registry.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace epmdx {
namespace {

using namespace std::string_literals;

constexpr std::uint32_t facts_clock = 0x6b025e11;  // gives P-CREATION's example 0x6b025e12

// A registry whose clock the test sets by hand.
struct Fixture {
    explicit Fixture(std::size_t old_capacity = Registry::default_old_capacity)
        : registry(old_capacity, [this] {
              ++clock_reads;
              return clock;
          }) {}

    std::uint32_t clock = facts_clock;
    int clock_reads = 0;
    Registry registry;
};

wire::NodeInfo node(std::string name, std::uint16_t port = 7000,
                    std::uint16_t highest_version = 6) {
    wire::NodeInfo info;
    info.name = std::move(name);
    info.port = port;
    info.highest_version = highest_version;
    info.lowest_version = 5;
    info.extra = std::string("x");  // not `= "x"`: GCC 12 -O3 reports a false -Wrestrict
    return info;
}

// "n" and 3 make "n3". Appended, not `"n" + std::to_string(i)`: GCC 12 at -O3 reports a false
// -Wrestrict inside libstdc++ for a literal prepended to a temporary string.
std::string numbered(std::string_view prefix, int number) {
    std::string name(prefix);
    name += std::to_string(number);
    return name;
}

std::vector<std::string> active_names(const Registry& registry) {
    std::vector<std::string> names;
    registry.for_each_active(
        [&](const Registry::ActiveNode& active) { names.push_back(active.info.name); });
    return names;
}

std::vector<std::string> old_names(const Registry& registry) {
    std::vector<std::string> names;
    registry.for_each_old([&](const Registry::OldNode& old) { names.push_back(old.name); });
    return names;
}

// ---- Creation numbers -----------------------------------------------------------------------

TEST(RegistryCreation, NewNameGetsClockPlusOne) {
    Fixture f;
    EXPECT_EQ(f.registry.add(node("a"), 5, nullptr), 0x6b025e12u);
    EXPECT_EQ(f.registry.find("a")->counter, 0x6b025e12u);
    EXPECT_EQ(f.clock_reads, 1);
}

TEST(RegistryCreation, FactsSheetSequence) {
    Fixture f;
    EXPECT_EQ(f.registry.add(node("a"), 5, nullptr), 0x6b025e12u);
    ASSERT_TRUE(f.registry.remove("a"));
    f.clock = 0x70000000;  // a remembered name ignores the clock
    EXPECT_EQ(f.registry.add(node("a"), 6, nullptr), 0x6b025e13u);
    ASSERT_TRUE(f.registry.remove("a"));
    EXPECT_EQ(f.registry.add(node("a", 7000, 5), 7, nullptr), (0x6b025e14u % 3) + 1);
    EXPECT_EQ(f.registry.find("a")->counter, 0x6b025e14u);
    EXPECT_EQ(f.clock_reads, 1);  // only the first registration of "a"
}

TEST(RegistryCreation, EachReRegistrationIncrements) {
    Fixture f;
    std::uint32_t expected = facts_clock + 1;
    ASSERT_EQ(f.registry.add(node("n"), 1, nullptr), expected);
    for (int i = 0; i < 50; ++i) {
        ASSERT_TRUE(f.registry.remove("n"));
        ASSERT_EQ(f.registry.add(node("n"), 1, nullptr), ++expected);
    }
}

TEST(RegistryCreation, CreationForOldVersionsIsOneToThree) {
    for (std::uint16_t hv = 0; hv < 6; ++hv) {
        EXPECT_EQ(Registry::creation_for(4, hv), 2u);
        EXPECT_EQ(Registry::creation_for(5, hv), 3u);
        EXPECT_EQ(Registry::creation_for(6, hv), 1u);
        EXPECT_EQ(Registry::creation_for(0xFFFFFFFF, hv), 1u);
    }
    EXPECT_EQ(Registry::creation_for(0x6b025e12, 6), 0x6b025e12u);
    EXPECT_EQ(Registry::creation_for(0xFFFFFFFF, 7), 0xFFFFFFFFu);
    EXPECT_EQ(Registry::creation_for(4, 0xFFFF), 4u);
}

TEST(RegistryCreation, BumpNeverGoesBelowFour) {
    EXPECT_EQ(Registry::bump(0), 4u);
    EXPECT_EQ(Registry::bump(1), 4u);
    EXPECT_EQ(Registry::bump(2), 4u);
    EXPECT_EQ(Registry::bump(3), 4u);
    EXPECT_EQ(Registry::bump(4), 5u);
    EXPECT_EQ(Registry::bump(0xFFFFFFFE), 0xFFFFFFFFu);
    EXPECT_EQ(Registry::bump(0xFFFFFFFF), 4u);  // wraps to 0, then clamped
}

TEST(RegistryCreation, ClockValuesAreClamped) {
    const std::vector<std::pair<std::uint32_t, std::uint32_t>> cases = {
        {0, 4}, {1, 4}, {2, 4}, {3, 4}, {4, 5}, {0xFFFFFFFF, 4}};
    for (const auto& [clock, expected] : cases) {
        Fixture f;
        f.clock = clock;
        EXPECT_EQ(f.registry.add(node("a"), 1, nullptr), expected) << "clock " << clock;
        EXPECT_EQ(f.registry.add(node("b", 7000, 5), 1, nullptr), expected % 3 + 1);
    }
}

TEST(RegistryCreation, ReRegistrationWrapsToFour) {
    Fixture f;
    f.clock = 0xFFFFFFFE;
    ASSERT_EQ(f.registry.add(node("a"), 1, nullptr), 0xFFFFFFFFu);
    ASSERT_TRUE(f.registry.remove("a"));
    EXPECT_EQ(f.registry.add(node("a"), 1, nullptr), 4u);
}

// ---- Registration -------------------------------------------------------------------------

TEST(RegistryAdd, DuplicateRefusedWithoutSideEffects) {
    Fixture f;
    // The registry never looks inside a holder: any two distinct addresses do.
    int storage_a = 0;
    int storage_b = 0;
    auto* const owner_a = reinterpret_cast<server::Connection*>(&storage_a);
    auto* const owner_b = reinterpret_cast<server::Connection*>(&storage_b);
    ASSERT_EQ(f.registry.add(node("a", 7000), 5, owner_a), facts_clock + 1);
    ASSERT_TRUE(f.registry.add(node("b", 7001), 6, owner_b));
    const auto names_before = f.registry.names_text();
    const std::string dump_before = f.registry.dump_text();
    const int reads_before = f.clock_reads;

    EXPECT_EQ(f.registry.add(node("a", 9999, 5), 42, owner_b), std::nullopt);

    const Registry::ActiveNode* a = f.registry.find("a");
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->info, node("a", 7000));
    EXPECT_EQ(a->fd, 5);
    EXPECT_EQ(a->holder, owner_a);
    EXPECT_EQ(a->counter, facts_clock + 1);
    EXPECT_EQ(f.registry.active_count(), 2u);
    EXPECT_EQ(active_names(f.registry), (std::vector<std::string>{"b", "a"}));
    EXPECT_EQ(f.registry.names_text(), names_before);  // cache still valid
    EXPECT_EQ(f.registry.dump_text(), dump_before);
    EXPECT_EQ(f.clock_reads, reads_before);

    // The refused attempt did not bump the counter either.
    ASSERT_TRUE(f.registry.remove("a"));
    EXPECT_EQ(f.registry.add(node("a"), 5, nullptr), facts_clock + 2);
}

TEST(RegistryAdd, NamesAreExactBytes) {
    Fixture f;
    ASSERT_TRUE(f.registry.add(node("a"), 1, nullptr));
    EXPECT_TRUE(f.registry.add(node("A"), 2, nullptr));
    EXPECT_TRUE(f.registry.add(node("a "), 3, nullptr));
    EXPECT_TRUE(f.registry.add(node(""), 4, nullptr));  // the reference accepts an empty name
    EXPECT_TRUE(f.registry.add(node("a\0b"s), 5, nullptr));
    EXPECT_FALSE(f.registry.add(node(""), 6, nullptr));
    EXPECT_EQ(f.registry.active_count(), 5u);
    EXPECT_EQ(f.registry.find("a\0b"s)->fd, 5);
    EXPECT_EQ(f.registry.find("")->fd, 4);
}

TEST(RegistryAdd, NewestFirst) {
    Fixture f;
    for (const char* name : {"one", "two", "three", "four"}) {
        ASSERT_TRUE(f.registry.add(node(name), 1, nullptr));
    }
    EXPECT_EQ(active_names(f.registry), (std::vector<std::string>{"four", "three", "two", "one"}));
    ASSERT_TRUE(f.registry.remove("three"));
    ASSERT_TRUE(f.registry.add(node("three"), 1, nullptr));  // back at the front
    EXPECT_EQ(active_names(f.registry), (std::vector<std::string>{"three", "four", "two", "one"}));
}

TEST(RegistryFind, ReportsWhatWasRegistered) {
    Fixture f;
    int storage = 0;
    auto* const owner = reinterpret_cast<server::Connection*>(&storage);
    wire::NodeInfo info = node("long-enough-to-defeat-small-string-storage@host", 65535, 7);
    info.node_type = 72;
    info.protocol = 0;
    info.lowest_version = 5;
    info.extra = "\0extra\0"s;
    ASSERT_TRUE(f.registry.add(info, 17, owner));

    // Looked up through a view that is not NUL-terminated.
    const std::string haystack = info.name + "-suffix";
    const Registry::ActiveNode* found =
        f.registry.find(std::string_view(haystack).substr(0, info.name.size()));
    ASSERT_NE(found, nullptr);
    EXPECT_EQ(found->info, info);
    EXPECT_EQ(found->fd, 17);
    EXPECT_EQ(found->holder, owner);
    EXPECT_EQ(found->counter, facts_clock + 1);

    EXPECT_EQ(f.registry.find("long"), nullptr);
    EXPECT_EQ(f.registry.find(haystack), nullptr);
    ASSERT_TRUE(f.registry.remove(info.name));
    EXPECT_EQ(f.registry.find(info.name), nullptr);  // an old entry is not found
}

// ---- Unregistration and the old list -------------------------------------------------------

TEST(RegistryRemove, UnknownOrInactiveNameIsFalse) {
    Fixture f;
    EXPECT_FALSE(f.registry.remove("nobody"));
    ASSERT_TRUE(f.registry.add(node("a"), 1, nullptr));
    ASSERT_TRUE(f.registry.remove("a"));
    EXPECT_FALSE(f.registry.remove("a"));  // already on the old list
    EXPECT_EQ(f.registry.old_count(), 1u);
    EXPECT_EQ(f.registry.active_count(), 0u);
}

TEST(RegistryRemove, AcceptsAViewOfTheNodesOwnName) {
    Fixture f;
    ASSERT_TRUE(f.registry.add(node(std::string(100, 'n')), 1, nullptr));
    ASSERT_TRUE(f.registry.remove(f.registry.find(std::string(100, 'n'))->info.name));
    EXPECT_EQ(old_names(f.registry), (std::vector<std::string>{std::string(100, 'n')}));
}

TEST(RegistryRemove, OldEntryKeepsNamePortFdAndCounter) {
    Fixture f;
    ASSERT_TRUE(f.registry.add(node("a", 7123), 33, nullptr));
    ASSERT_TRUE(f.registry.remove("a"));
    std::vector<Registry::OldNode> olds;
    f.registry.for_each_old([&](const Registry::OldNode& old) { olds.push_back(old); });
    ASSERT_EQ(olds.size(), 1u);
    EXPECT_EQ(olds[0].name, "a");
    EXPECT_EQ(olds[0].port, 7123);
    EXPECT_EQ(olds[0].fd, 33);
    EXPECT_EQ(olds[0].counter, facts_clock + 1);
}

TEST(RegistryRemove, OldListIsFifoAndReRegistrationTakesTheEntryOut) {
    Fixture f;
    for (const char* name : {"a", "b", "c", "d"}) {
        ASSERT_TRUE(f.registry.add(node(name), 1, nullptr));
    }
    for (const char* name : {"c", "a", "d", "b"}) {
        ASSERT_TRUE(f.registry.remove(name));
    }
    EXPECT_EQ(old_names(f.registry), (std::vector<std::string>{"c", "a", "d", "b"}));
    ASSERT_TRUE(f.registry.add(node("d"), 1, nullptr));
    EXPECT_EQ(old_names(f.registry), (std::vector<std::string>{"c", "a", "b"}));
    EXPECT_EQ(f.registry.old_count(), 3u);
    ASSERT_TRUE(f.registry.remove("d"));
    EXPECT_EQ(old_names(f.registry), (std::vector<std::string>{"c", "a", "b", "d"}));
}

TEST(RegistryRemove, DebugCapOfFiveDropsTheOldest) {
    Fixture f(Registry::debug_old_capacity);
    for (int i = 0; i < 7; ++i) {
        ASSERT_TRUE(f.registry.add(node(numbered("n", i)), i, nullptr));
        ++f.clock;  // every name gets its own counter
    }
    for (int i = 0; i < 5; ++i) {
        ASSERT_TRUE(f.registry.remove(numbered("n", i)));
    }
    EXPECT_EQ(f.registry.old_count(), 5u);
    EXPECT_EQ(old_names(f.registry), (std::vector<std::string>{"n0", "n1", "n2", "n3", "n4"}));
    ASSERT_TRUE(f.registry.remove("n5"));
    EXPECT_EQ(f.registry.old_count(), 5u);
    EXPECT_EQ(old_names(f.registry), (std::vector<std::string>{"n1", "n2", "n3", "n4", "n5"}));
    ASSERT_TRUE(f.registry.remove("n6"));
    EXPECT_EQ(old_names(f.registry), (std::vector<std::string>{"n2", "n3", "n4", "n5", "n6"}));
}

TEST(RegistryRemove, DroppedCounterIsNeverHandedToAnotherName) {
    Fixture f(Registry::debug_old_capacity);
    f.clock = 1000;
    std::vector<std::uint32_t> counters;
    for (int i = 0; i < 6; ++i) {
        counters.push_back(f.registry.add(node(numbered("n", i)), i, nullptr).value());
        f.clock += 1000;
    }
    for (int i = 0; i < 6; ++i) {
        ASSERT_TRUE(f.registry.remove(numbered("n", i)));  // n0 falls off the list
    }
    // OTP would recycle the oldest entry (n1 here, 2001) for a new name; we use the clock.
    f.clock = 50000;
    EXPECT_EQ(f.registry.add(node("newcomer"), 9, nullptr), 50001u);
    EXPECT_EQ(f.registry.old_count(), 5u);  // a new name does not consume an old entry
    // The dropped name is a stranger now: it also starts from the clock, not from 1001.
    f.clock = 60000;
    EXPECT_EQ(f.registry.add(node("n0"), 9, nullptr), 60001u);
    // Remembered names still continue their own sequence.
    EXPECT_EQ(f.registry.add(node("n1"), 9, nullptr), counters[1] + 1);
    EXPECT_EQ(f.registry.add(node("n5"), 9, nullptr), counters[5] + 1);
    EXPECT_EQ(old_names(f.registry), (std::vector<std::string>{"n2", "n3", "n4"}));
}

TEST(RegistryRemove, DefaultCapIsAThousand) {
    Fixture f;
    constexpr int total = 1001;
    for (int i = 0; i < total; ++i) {
        ASSERT_TRUE(f.registry.add(node(numbered("n", i)), i, nullptr));
    }
    for (int i = 0; i < 1000; ++i) {
        ASSERT_TRUE(f.registry.remove(numbered("n", i)));
    }
    EXPECT_EQ(f.registry.old_count(), 1000u);
    EXPECT_EQ(old_names(f.registry).front(), "n0");
    ASSERT_TRUE(f.registry.remove("n1000"));
    EXPECT_EQ(f.registry.old_count(), 1000u);
    const std::vector<std::string> olds = old_names(f.registry);
    EXPECT_EQ(olds.front(), "n1");
    EXPECT_EQ(olds.back(), "n1000");

    f.clock = 0x10000000;
    EXPECT_EQ(f.registry.add(node("n0"), 1, nullptr), 0x10000001u);      // forgotten
    EXPECT_EQ(f.registry.add(node("n1"), 1, nullptr), facts_clock + 2);  // remembered
    EXPECT_EQ(f.registry.old_count(), 999u);
}

TEST(RegistryRemove, CapacityZeroRemembersNothing) {
    Fixture f(0);
    ASSERT_TRUE(f.registry.add(node("a"), 1, nullptr));
    ASSERT_TRUE(f.registry.remove("a"));
    EXPECT_EQ(f.registry.old_count(), 0u);
    EXPECT_EQ(f.registry.dump_text(), "");
    f.clock = 100;
    EXPECT_EQ(f.registry.add(node("a"), 1, nullptr), 101u);
}

// ---- NAMES and DUMP text ------------------------------------------------------------------

TEST(RegistryText, NamesTextNewestFirst) {
    Fixture f;
    EXPECT_EQ(*f.registry.names_text(), "");
    ASSERT_TRUE(f.registry.add(node("alpha", 7001), 1, nullptr));
    ASSERT_TRUE(f.registry.add(node("beta", 65535), 2, nullptr));
    EXPECT_EQ(*f.registry.names_text(),
              "name beta at port 65535\n"
              "name alpha at port 7001\n");
}

TEST(RegistryText, NamesCacheIsInvalidatedByChangesOnly) {
    Fixture f;
    ASSERT_TRUE(f.registry.add(node("a", 1), 1, nullptr));
    const auto first = f.registry.names_text();
    EXPECT_EQ(f.registry.names_text(), first);  // same object while nothing changes
    EXPECT_FALSE(f.registry.remove("nobody"));
    EXPECT_EQ(f.registry.names_text(), first);

    ASSERT_TRUE(f.registry.add(node("b", 2), 2, nullptr));
    const auto second = f.registry.names_text();
    EXPECT_NE(second, first);
    EXPECT_EQ(*second, "name b at port 2\nname a at port 1\n");
    EXPECT_EQ(*first, "name a at port 1\n");  // a pending write keeps its text

    ASSERT_TRUE(f.registry.remove("a"));
    const auto third = f.registry.names_text();
    EXPECT_EQ(*third, "name b at port 2\n");
    EXPECT_EQ(*second, "name b at port 2\nname a at port 1\n");
    EXPECT_EQ(*first, "name a at port 1\n");
}

TEST(RegistryText, DumpTextExactBytes) {
    Fixture f;
    ASSERT_TRUE(f.registry.add(node("gone1", 7001), 10, nullptr));
    ASSERT_TRUE(f.registry.add(node("live1", 7002), 11, nullptr));
    ASSERT_TRUE(f.registry.add(node("gone2", 7003), 12, nullptr));
    ASSERT_TRUE(f.registry.add(node("live2", 7004), 13, nullptr));
    ASSERT_TRUE(f.registry.remove("gone2"));
    ASSERT_TRUE(f.registry.remove("gone1"));
    EXPECT_EQ(f.registry.dump_text(),
              "active name     <live2> at port 7004, fd = 13\n\0"
              "active name     <live1> at port 7002, fd = 11\n\0"
              "old/unused name <gone2>, port = 7003, fd = 12 \n\0"
              "old/unused name <gone1>, port = 7001, fd = 10 \n\0"s);
}

// ---- Scale and consistency -----------------------------------------------------------------

TEST(RegistryScale, HundredThousandRegistrationsAndRemovals) {
    Fixture f;
    constexpr int total = 100000;
    std::vector<std::string> names;
    names.reserve(total);
    for (int i = 0; i < total; ++i) {
        names.push_back("node" + std::to_string(i) + "@host");
        ASSERT_TRUE(f.registry.add(node(names.back(), i % 65536), i, nullptr));
    }
    EXPECT_EQ(f.registry.active_count(), static_cast<std::size_t>(total));
    for (int i = 0; i < total; i += 997) {
        const Registry::ActiveNode* found = f.registry.find(names[i]);
        ASSERT_NE(found, nullptr);
        EXPECT_EQ(found->fd, i);
    }
    const auto text = f.registry.names_text();
    EXPECT_EQ(std::count(text->begin(), text->end(), '\n'), total);
    EXPECT_TRUE(text->starts_with("name node99999@host at port "));

    for (int i = 0; i < total; i += 2) {
        ASSERT_TRUE(f.registry.remove(names[i]));
    }
    EXPECT_EQ(f.registry.active_count(), static_cast<std::size_t>(total / 2));
    EXPECT_EQ(f.registry.old_count(), Registry::default_old_capacity);
    for (int i = 0; i < total; ++i) {
        ASSERT_EQ(f.registry.find(names[i]) != nullptr, i % 2 == 1) << names[i];
    }
    for (int i = 1; i < total; i += 2) {
        ASSERT_TRUE(f.registry.remove(names[i]));
    }
    EXPECT_EQ(f.registry.active_count(), 0u);
    EXPECT_EQ(*f.registry.names_text(), "");
    const std::vector<std::string> olds = old_names(f.registry);
    EXPECT_EQ(olds.front(), names[total - 1999]);
    EXPECT_EQ(olds.back(), names[total - 1]);
}

// A naive reference implementation of the spec, to compare with after every operation.
class Model {
  public:
    explicit Model(std::size_t capacity) : capacity_(capacity) {}

    std::optional<std::uint32_t> add(const std::string& name, std::uint16_t hv,
                                     std::uint32_t clock) {
        // Iterator algorithms, not std::ranges: libc++ 14 lacks those.
        const auto named = [&name](const auto& e) { return e.first == name; };
        if (std::any_of(active_.begin(), active_.end(), named)) {
            return std::nullopt;
        }
        auto old = std::find_if(old_.begin(), old_.end(), named);
        std::uint32_t counter = 0;
        if (old != old_.end()) {
            counter = Registry::bump(old->second);
            old_.erase(old);
        } else {
            counter = Registry::bump(clock);
        }
        active_.insert(active_.begin(), {name, counter});
        return hv >= 6 ? counter : counter % 3 + 1;
    }

    bool remove(const std::string& name) {
        auto found = std::find_if(active_.begin(), active_.end(),
                                  [&name](const auto& e) { return e.first == name; });
        if (found == active_.end()) {
            return false;
        }
        old_.push_back(*found);
        active_.erase(found);
        while (old_.size() > capacity_) {
            old_.pop_front();
        }
        return true;
    }

    std::vector<std::pair<std::string, std::uint32_t>> active_;
    std::deque<std::pair<std::string, std::uint32_t>> old_;

  private:
    std::size_t capacity_;
};

class RegistryModel : public ::testing::TestWithParam<std::size_t> {};

TEST_P(RegistryModel, RandomOperationsMatchTheModel) {
    const std::size_t capacity = GetParam();
    Fixture f(capacity);
    Model model(capacity);
    std::mt19937 rng(static_cast<std::uint32_t>(capacity) + 12345);
    std::uniform_int_distribution<int> pick_name(0, 39);
    std::uniform_int_distribution<int> pick_op(0, 99);

    for (int step = 0; step < 20000; ++step) {
        const std::string name = numbered("n", pick_name(rng));
        const int op = pick_op(rng);
        if (op < 5) {
            f.clock = static_cast<std::uint32_t>(pick_op(rng)) - 50;  // near 0 and the wrap
        } else {
            f.clock += static_cast<std::uint32_t>(op);
        }
        if (op < 55) {
            const std::uint16_t hv = op % 2 == 0 ? 6 : 5;
            ASSERT_EQ(f.registry.add(node(name, 7000, hv), step, nullptr),
                      model.add(name, hv, f.clock))
                << "step " << step;
        } else {
            ASSERT_EQ(f.registry.remove(name), model.remove(name)) << "step " << step;
        }

        std::vector<std::pair<std::string, std::uint32_t>> active;
        f.registry.for_each_active(
            [&](const Registry::ActiveNode& n) { active.emplace_back(n.info.name, n.counter); });
        ASSERT_EQ(active, model.active_);
        std::deque<std::pair<std::string, std::uint32_t>> old;
        f.registry.for_each_old(
            [&](const Registry::OldNode& n) { old.emplace_back(n.name, n.counter); });
        ASSERT_EQ(old, model.old_);
        ASSERT_EQ(f.registry.active_count(), model.active_.size());
        ASSERT_EQ(f.registry.old_count(), model.old_.size());
        for (const auto& [active_name, counter] : model.active_) {
            ASSERT_NE(f.registry.find(active_name), nullptr);
        }
        if (step % 100 == 0) {
            std::string names;
            for (const auto& [active_name, counter] : model.active_) {
                names += "name " + active_name + " at port 7000\n";
            }
            ASSERT_EQ(*f.registry.names_text(), names);
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Capacities, RegistryModel, ::testing::Values(0, 1, 5, 17));

}  // namespace
}  // namespace epmdx
