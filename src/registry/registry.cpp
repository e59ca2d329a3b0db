// SPDX-License-Identifier: Apache-2.0
#include "registry/registry.hpp"

#include <iterator>
#include <utility>

namespace epmdx {
namespace {

const std::string& name_of(const Registry::ActiveNode& node) {
    return node.info.name;
}
const std::string& name_of(const Registry::OldNode& node) {
    return node.name;
}

// Growing a multi-megabyte text by doubling costs more than walking the list twice.
template <typename List>
std::size_t text_capacity(const List& nodes, std::size_t (*line_max_bytes)(std::size_t)) {
    std::size_t bytes = 0;
    for (const auto& node : nodes) {
        bytes += line_max_bytes(name_of(node).size());
    }
    return bytes;
}

}  // namespace

Registry::Registry(std::size_t old_capacity, std::function<std::uint32_t()> unix_now)
    : old_capacity_(old_capacity), unix_now_(std::move(unix_now)) {}

std::uint32_t Registry::bump(std::uint32_t counter) {
    // Unsigned arithmetic: 0xFFFFFFFF wraps to 0 and is clamped like any value below 4.
    const std::uint32_t next = counter + 1;
    return next < 4 ? 4 : next;
}

std::uint32_t Registry::creation_for(std::uint32_t counter, std::uint16_t highest_version) {
    if (highest_version >= wire::extended_creation_version) {
        return counter;
    }
    return counter % 3 + 1;
}

std::optional<std::uint32_t> Registry::add(wire::NodeInfo node, int fd,
                                           server::Connection* holder) {
    if (active_.contains(node.name)) {
        return std::nullopt;
    }
    const auto old = old_index_.find(node.name);
    const std::uint32_t counter =
        old != old_index_.end() ? bump(old->second->counter) : bump(unix_now_());
    const std::uint16_t highest_version = node.highest_version;

    order_.push_front(
        ActiveNode{.info = std::move(node), .counter = counter, .fd = fd, .holder = holder});
    try {
        active_.emplace(order_.front().info.name, order_.begin());
    } catch (...) {
        order_.pop_front();  // keep order_ and active_ in step if the index cannot grow
        throw;
    }
    // Only now that the node is in: a failure above leaves the remembered counter in place.
    if (old != old_index_.end()) {
        const OldList::iterator entry = old->second;
        old_index_.erase(old);  // its key views entry->name
        old_.erase(entry);
    }
    names_cache_.reset();
    return creation_for(counter, highest_version);
}

bool Registry::restore(wire::NodeInfo node, std::uint32_t counter, int fd,
                       server::Connection* holder) {
    if (active_.contains(node.name)) {
        return false;
    }
    order_.push_front(
        ActiveNode{.info = std::move(node), .counter = counter, .fd = fd, .holder = holder});
    try {
        active_.emplace(order_.front().info.name, order_.begin());
    } catch (...) {
        order_.pop_front();
        throw;
    }
    if (const auto old = old_index_.find(order_.front().info.name); old != old_index_.end()) {
        const OldList::iterator entry = old->second;
        old_index_.erase(old);
        old_.erase(entry);
    }
    names_cache_.reset();
    return true;
}

bool Registry::restore_old(OldNode node) {
    if (old_capacity_ == 0 || active_.contains(node.name) || old_index_.contains(node.name)) {
        return false;
    }
    remember_old(std::move(node));
    return true;
}

void Registry::remember_old(OldNode node) {
    if (old_.size() >= old_capacity_) {
        // Forget the oldest entry entirely, counter included, so no other name inherits it.
        old_index_.erase(std::string_view{old_.front().name});
        old_.pop_front();
    }
    old_.push_back(std::move(node));
    old_index_.emplace(old_.back().name, std::prev(old_.end()));
}

bool Registry::add_static(wire::NodeInfo node) {
    if (active_.contains(node.name)) {
        return false;
    }
    order_.push_back(ActiveNode{.info = std::move(node), .is_static = true});
    try {
        active_.emplace(order_.back().info.name, std::prev(order_.end()));
    } catch (...) {
        order_.pop_back();
        throw;
    }
    ++static_count_;
    names_cache_.reset();
    return true;
}

bool Registry::remove(std::string_view name) {
    const auto found = active_.find(name);
    if (found == active_.end() || found->second->is_static) {
        return false;
    }
    // name may view the node's own string: do not touch it after this point.
    const ActiveList::iterator node = found->second;
    active_.erase(found);  // its key views node->info.name, which is about to move
    names_cache_.reset();

    if (old_capacity_ > 0) {
        remember_old(OldNode{std::move(node->info.name), node->info.port, node->fd, node->counter});
    }
    order_.erase(node);
    return true;
}

const Registry::ActiveNode* Registry::find(std::string_view name) const {
    const auto found = active_.find(name);
    return found != active_.end() ? &*found->second : nullptr;
}

std::shared_ptr<const std::string> Registry::names_text() const {
    if (!names_cache_) {
        std::string text;
        text.reserve(text_capacity(order_, wire::names_line_max_bytes));
        for (const ActiveNode& node : order_) {
            wire::append_names_line(text, node.info.name, node.info.port);
        }
        names_cache_ = std::make_shared<const std::string>(std::move(text));
    }
    return names_cache_;
}

std::string Registry::dump_text() const {
    std::string text;
    text.reserve(text_capacity(order_, wire::dump_line_max_bytes) +
                 text_capacity(old_, wire::dump_line_max_bytes));
    for (const ActiveNode& node : order_) {
        wire::append_dump_active_line(text, node.info.name, node.info.port, node.fd);
    }
    for (const OldNode& node : old_) {
        wire::append_dump_old_line(text, node.name, node.port, node.fd);
    }
    return text;
}

}  // namespace epmdx
