// SPDX-License-Identifier: Apache-2.0
// One timer for every pending connection's deadline: always set for the oldest one on the
// admission's pending list (the list is in deadline order), so a thousand waiting connections
// cost one timer, not a thousand.
#pragma once

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <functional>

#include "server/core/admission.hpp"
#include "server/core/connection.hpp"

namespace epmdx::server {

class DeadlineTimer {
  public:
    // on_expired gets each connection past its deadline; it must take it off the pending list.
    DeadlineTimer(asio::io_context& io, Admission& admission,
                  std::function<void(Connection&)> on_expired);

    // After a connection joins the pending list: sets the timer if it is not set already.
    void arm();
    // At shutdown: cancels the timer, and arm() does nothing from then on.
    void stop();

  private:
    asio::steady_timer timer_;
    Admission& admission_;
    std::function<void(Connection&)> on_expired_;
    bool armed_ = false;
    bool stopped_ = false;
};

}  // namespace epmdx::server
