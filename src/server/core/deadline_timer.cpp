// SPDX-License-Identifier: Apache-2.0
#include "server/core/deadline_timer.hpp"

namespace epmdx::server {

DeadlineTimer::DeadlineTimer(asio::io_context& io, Admission& admission,
                             std::function<void(Connection&)> on_expired)
    : timer_(io), admission_(admission), on_expired_(std::move(on_expired)) {}

void DeadlineTimer::arm() {
    if (armed_ || stopped_ || admission_.oldest() == nullptr) {
        return;
    }
    armed_ = true;
    timer_.expires_at(admission_.oldest()->deadline);
    timer_.async_wait([this](const std::error_code& error) {
        armed_ = false;
        if (error) {
            return;
        }
        const auto now = Clock::now();
        while (Connection* expired = admission_.expired(now)) {
            on_expired_(*expired);
        }
        arm();
    });
}

void DeadlineTimer::stop() {
    stopped_ = true;
    timer_.cancel();
}

}  // namespace epmdx::server
