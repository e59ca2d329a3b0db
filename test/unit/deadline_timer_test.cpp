// SPDX-License-Identifier: Apache-2.0
// The deadline timer without a network: one timer serves every pending connection, fires once
// for each one past its deadline, in deadline order, never for one that left the pending list
// (it registered), and is silent once stopped. The sockets are never connected.
#include "server/core/deadline_timer.hpp"

#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <memory>
#include <vector>

namespace epmdx::server {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::seconds;

const asio::ip::address peer = asio::ip::make_address("192.0.2.1");

class Pending {
  public:
    explicit Pending(Clock::duration packet_timeout) : admission_({100, 0, packet_timeout}) {}

    // A connection accepted at `accepted` joins the pending list, and the timer is armed for it,
    // as the server does.
    std::unique_ptr<Connection> open(Clock::time_point accepted) {
        // Opened (never connected): moving an unopened Asio socket trips GCC's
        // maybe-uninitialized at -O3.
        Socket socket(io_, asio::ip::tcp::v4());
        auto conn = std::make_unique<Connection>(admission_, std::move(socket), peer, accepted);
        timer_.arm();
        return conn;
    }
    // Runs the event loop until `count` connections have expired or `limit` has passed.
    void run_until_expired(std::size_t count, Clock::duration limit) {
        const auto give_up = Clock::now() + limit;
        io_.restart();
        while (expired_.size() < count && Clock::now() < give_up) {
            io_.run_one_until(give_up);
        }
    }
    // Runs what is ready now or becomes ready within `span`.
    void run_for(Clock::duration span) {
        io_.restart();
        io_.run_for(span);
    }

    Admission& admission() { return admission_; }
    DeadlineTimer& timer() { return timer_; }
    const std::vector<const Connection*>& expired() const { return expired_; }

  private:
    asio::io_context io_;
    Admission admission_;
    std::vector<const Connection*> expired_;
    // What the server does with a late connection: takes it off the pending list.
    DeadlineTimer timer_{io_, admission_, [this](Connection& late) {
                             expired_.push_back(&late);
                             admission_.leave_pending(late);
                         }};
};

TEST(DeadlineTimer, ExpiresEachLateConnectionOnceInDeadlineOrder) {
    Pending pending(milliseconds(20));
    const auto now = Clock::now();
    const auto late = pending.open(now - seconds(1));
    const auto soon = pending.open(now);
    const auto later = pending.open(now + hours(1));
    pending.run_until_expired(2, seconds(10));
    ASSERT_EQ(pending.expired().size(), 2u);
    EXPECT_EQ(pending.expired()[0], late.get());
    EXPECT_EQ(pending.expired()[1], soon.get());
    // The timer is set again, for the one left; it is not due for an hour.
    pending.run_for(milliseconds(50));
    EXPECT_EQ(pending.expired().size(), 2u);
    EXPECT_EQ(pending.admission().oldest(), later.get());
}

TEST(DeadlineTimer, NeverExpiresAConnectionThatLeftThePendingList) {
    Pending pending(milliseconds(10));
    const auto registered = pending.open(Clock::now());
    const auto idle = pending.open(Clock::now());
    pending.admission().leave_pending(*registered);
    pending.run_until_expired(1, seconds(10));
    pending.run_for(milliseconds(50));
    ASSERT_EQ(pending.expired().size(), 1u);
    EXPECT_EQ(pending.expired()[0], idle.get());
}

TEST(DeadlineTimer, ArmsOnlyOnceAConnectionIsPending) {
    Pending pending(milliseconds(10));
    pending.timer().arm();  // nothing pending: nothing to wait for
    pending.run_for(milliseconds(20));
    EXPECT_TRUE(pending.expired().empty());
    const auto late = pending.open(Clock::now() - seconds(1));
    pending.run_until_expired(1, seconds(10));
    ASSERT_EQ(pending.expired().size(), 1u);
    EXPECT_EQ(pending.expired()[0], late.get());
}

TEST(DeadlineTimer, ExpiresNothingOnceStopped) {
    Pending pending(milliseconds(1));
    const auto late = pending.open(Clock::now() - seconds(1));
    pending.timer().stop();
    pending.run_for(milliseconds(50));
    const auto later = pending.open(Clock::now() - seconds(1));  // arm() does nothing now
    pending.run_for(milliseconds(50));
    EXPECT_TRUE(pending.expired().empty());
    EXPECT_EQ(pending.admission().oldest(), late.get());
}

}  // namespace
}  // namespace epmdx::server
