// SPDX-License-Identifier: Apache-2.0
// A source listing the registry in a tight loop at 10,000 nodes (A-LISTING-RATE): it is held to
// its -listing_rate, another source's lookups keep the rate they had without it, and every node
// stays registered and listed.
#include <atomic>
#include <thread>

#include "scale.hpp"

namespace epmdx::test::scale {
namespace {

constexpr std::size_t node_count = 10'000;
constexpr int rate = 20;  // -listing_rate and -listing_burst of the daemon under test

struct Lookups {
    int answered = 0;
    int failed = 0;
    double seconds = 0;
    double per_second() const { return seconds > 0 ? answered / seconds : 0; }
};

// PORT_PLEASE2 for the registered names from `source`, offered at `per_second` for `duration`:
// each sent on schedule, or at once when the previous answer came late. The rate achieved falls
// below the offer only if the daemon cannot keep up.
Lookups paced_lookups(std::uint16_t port, const std::vector<std::string>& names,
                      const std::string& source, int per_second, std::chrono::seconds duration) {
    Lookups result;
    const auto period = std::chrono::microseconds(1'000'000 / per_second);
    const int count = per_second * static_cast<int>(duration.count());
    const auto start = Clock::now();
    for (int i = 0; i < count; ++i) {
        std::this_thread::sleep_until(start + i * period);
        const std::string& name = names[static_cast<std::size_t>(i) % names.size()];
        const Outcome outcome = ask(port, port_please_request(name), source);
        const bool found =
            outcome.bytes.size() >= 2 && outcome.bytes[0] == 'w' && outcome.bytes[1] == 0;
        (found ? result.answered : result.failed) += 1;
    }
    result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return result;
}

TEST(ListingLoop, IsHeldToItsRateWhileOtherLookupsKeepTheirs) {
    if (raise_own_descriptor_limit() < node_count + 1000) {
        GTEST_SKIP() << "needs " << node_count + 1000 << " descriptors";
    }
    const std::string limit = std::to_string(rate);
    Daemon d = Daemon::start(DaemonKind::epmdx, {"-listing_rate", limit, "-listing_burst", limit});
    const std::vector<std::string> names = numbered_names("listed", node_count);
    const std::vector<Conn> held = register_many(d.port(), names, 10'000);
    ASSERT_EQ(sorted_names(ask(d.port(), names_request(), third_source).bytes).size(), node_count);

    constexpr int offered = 1500;  // lookups per second, from third_source
    const Lookups quiet = paced_lookups(d.port(), names, third_source, offered, 2s);

    std::atomic<bool> stop = false;
    int listed = 0;
    int refused = 0;
    const auto loop_start = Clock::now();
    std::thread loop([&] {
        while (!stop) {
            const Outcome outcome = ask(d.port(), names_request(), second_source);
            (is_names_reply(outcome.bytes, d.port()) ? listed : refused) += 1;
        }
    });
    const Lookups loud = paced_lookups(d.port(), names, third_source, offered, 2s);
    stop = true;
    loop.join();
    const double loop_seconds = std::chrono::duration<double>(Clock::now() - loop_start).count();

    std::cout << "lookups/s without the loop " << quiet.per_second() << ", with it "
              << loud.per_second() << " (ratio " << loud.per_second() / quiet.per_second()
              << "); the loop: " << listed << " listings answered, " << refused << " closed in "
              << loop_seconds << " s\n";
    EXPECT_EQ(quiet.failed, 0);
    EXPECT_EQ(loud.failed, 0);
    EXPECT_GE(loud.per_second(), 0.97 * quiet.per_second());
    // The burst, then one listing per 1/rate s (and one token of slack for the clock reads).
    EXPECT_LE(listed, rate + static_cast<int>(rate * loop_seconds) + 1);
    EXPECT_GE(listed, rate);
    EXPECT_GT(refused, 10 * listed);
    // Refusals cost no registration: every node is still there, listed to another source.
    EXPECT_EQ(sorted_names(ask(d.port(), names_request(), third_source).bytes), [&] {
        std::vector<std::string> sorted = names;
        std::sort(sorted.begin(), sorted.end());
        return sorted;
    }());
}

}  // namespace
}  // namespace epmdx::test::scale
