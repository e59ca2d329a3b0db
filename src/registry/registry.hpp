// SPDX-License-Identifier: Apache-2.0
// The node table: pure state, no I/O, no clock of its own.
//
// Active nodes are kept newest first (the order NAMES and DUMP report), with O(1) lookup by
// name. Unregistered names move to a capped old/unused FIFO that remembers their creation
// counter, so a node that comes back gets the next creation number. Static entries (-static) are
// active nodes that no connection holds: listed after every registered node, in the order they
// were added, never removed, and their names cannot be registered.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "epmdx/protocol.hpp"

namespace epmdx {

namespace server {
// The server's connection that holds a registration; the registry stores it, never looks inside.
struct Connection;
}  // namespace server

struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
        return std::hash<std::string_view>{}(s);
    }
};

class Registry {
  public:
    // Reference value: entries kept on the old/unused list; 5 when started with -d.
    static constexpr std::size_t default_old_capacity = 1000;
    static constexpr std::size_t debug_old_capacity = 5;

    struct ActiveNode {
        wire::NodeInfo info;
        std::uint32_t counter = 0;             // creation counter; never below 4
        int fd = -1;                           // reported by DUMP
        server::Connection* holder = nullptr;  // whose closing ends the registration
        bool is_static = false;                // from add_static: no holder, no creation
    };
    struct OldNode {
        std::string name;
        std::uint16_t port = 0;
        int fd = -1;
        std::uint32_t counter = 0;
    };

    // unix_now supplies the seed for a new name's counter (seconds since the epoch).
    Registry(std::size_t old_capacity, std::function<std::uint32_t()> unix_now);
    // A copy's index would point into the original's lists; moving keeps list nodes in place.
    Registry(const Registry&) = delete;
    Registry& operator=(const Registry&) = delete;
    Registry(Registry&&) = default;
    Registry& operator=(Registry&&) = default;

    // Registers node under its name. Returns the creation to report to a node speaking
    // request_highest_version, or nullopt if the name is active already (nothing changes).
    // Whether the node may register at all is the caller's business (wire::decode_request).
    std::optional<std::uint32_t> add(wire::NodeInfo node, int fd, server::Connection* holder);

    // A registration handed over by the previous process (docs/differences.md A-RESTART): added
    // as the newest node with the counter it had there. False if the name is active already.
    bool restore(wire::NodeInfo node, std::uint32_t counter, int fd, server::Connection* holder);
    // An old/unused entry handed over, appended as the newest (the capacity still applies).
    // False if the name is active or already on the list.
    bool restore_old(OldNode node);

    // Adds a static entry after every active node. False if the name is active already.
    bool add_static(wire::NodeInfo node);

    // Moves a registered node to the tail of the old list. False if the name is not active or
    // is a static entry (which stays).
    bool remove(std::string_view name);

    const ActiveNode* find(std::string_view name) const;

    // Every node NAMES lists, static entries included.
    std::size_t active_count() const { return active_.size(); }
    // Those held by a connection.
    std::size_t registered_count() const { return active_.size() - static_count_; }
    std::size_t old_count() const { return old_.size(); }

    // The NAMES body (no header): one wire::append_names_line per node, newest first, then the
    // static entries.
    // Cached until the next change; the shared pointer keeps it alive across a pending write.
    std::shared_ptr<const std::string> names_text() const;

    // DUMP body (no header): active nodes as NAMES orders them (a static entry's fd is -1), then
    // old ones oldest first.
    std::string dump_text() const;

    template <typename F>
    void for_each_active(F&& visit) const {
        for (const ActiveNode& node : order_) {
            visit(node);
        }
    }
    template <typename F>
    void for_each_old(F&& visit) const {
        for (const OldNode& node : old_) {
            visit(node);
        }
    }

    // What a node speaking highest_version is told its creation is.
    static std::uint32_t creation_for(std::uint32_t counter, std::uint16_t highest_version);
    // counter + 1, never below 4.
    static std::uint32_t bump(std::uint32_t counter);

  private:
    void remember_old(OldNode node);

    using ActiveList = std::list<ActiveNode>;
    using OldList = std::list<OldNode>;

    std::size_t old_capacity_;
    std::function<std::uint32_t()> unix_now_;
    ActiveList order_;  // newest first
    std::unordered_map<std::string_view, ActiveList::iterator, StringHash, std::equal_to<>>
        active_;   // keys view the names stored in order_
    OldList old_;  // oldest first
    std::unordered_map<std::string_view, OldList::iterator, StringHash, std::equal_to<>> old_index_;
    mutable std::shared_ptr<const std::string> names_cache_;
    std::size_t static_count_ = 0;
};

}  // namespace epmdx
