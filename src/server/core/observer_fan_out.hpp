// SPDX-License-Identifier: Apache-2.0
// Several observers where the core takes one: each call passed on to every one, in order. The
// daemon composes it when more than metrics and events listen (-fleet); the core sees only an
// Observer.
#pragma once

#include <vector>

#include "server/core/observer.hpp"

namespace epmdx::server {

class ObserverFanOut final : public Observer {
  public:
    explicit ObserverFanOut(std::vector<Observer*> observers) : observers_(std::move(observers)) {}

    void request(RequestOutcome outcome, Duration took) override {
        for (Observer* observer : observers_) {
            observer->request(outcome, took);
        }
    }
    void registration_refused(RequestOutcome outcome, Duration took, std::string_view reason,
                              const NodeEvent& node) override {
        for (Observer* observer : observers_) {
            observer->registration_refused(outcome, took, reason, node);
        }
    }
    void listing_refused(RequestOutcome outcome, Duration took,
                         const asio::ip::address& peer) override {
        for (Observer* observer : observers_) {
            observer->listing_refused(outcome, took, peer);
        }
    }
    void closed(CloseReason reason, const asio::ip::address& peer, std::string_view why) override {
        for (Observer* observer : observers_) {
            observer->closed(reason, peer, why);
        }
    }
    void registered(const NodeEvent& node) override {
        for (Observer* observer : observers_) {
            observer->registered(node);
        }
    }
    void unregistered(const NodeEvent& node, std::string_view why) override {
        for (Observer* observer : observers_) {
            observer->unregistered(node, why);
        }
    }
    void stopping() override {
        for (Observer* observer : observers_) {
            observer->stopping();
        }
    }

  private:
    std::vector<Observer*> observers_;
};

}  // namespace epmdx::server
