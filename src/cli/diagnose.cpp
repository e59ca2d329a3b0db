// SPDX-License-Identifier: Apache-2.0
// -check NAME@HOST: the steps a connecting Erlang node takes, each timed, and a verdict naming
// the first that failed. Also the node descriptions -lookup shares.
#include "cli/diagnose.hpp"

#include <cerrno>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "epmdx/client.hpp"
#include "server/config/values.hpp"

namespace epmdx::cli {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

std::chrono::microseconds since(Clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
}

std::string node_type_name(std::uint8_t type) {
    switch (type) {
        case 77:
            return "normal";
        case 72:
            return "hidden";
        default:
            return "unknown";
    }
}

// Printable ASCII as is, the rest as C escapes.
std::string escaped(std::string_view bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string text = "\"";
    for (const char c : bytes) {
        const auto byte = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            text += '\\';
            text += c;
        } else if (byte >= 0x20 && byte < 0x7f) {
            text += c;
        } else {
            text += "\\x";
            text += digits[byte >> 4];
            text += digits[byte & 0xf];
        }
    }
    return text + "\"";
}

// One step of the walk, as printed.
struct Step {
    std::string id;    // "resolve", "port_mapper", "lookup", "node_port"
    std::string what;  // "resolve db1", "reach the port mapper at 10.0.0.5:4369", ...
    bool ok = false;
    std::chrono::microseconds elapsed{0};
    std::string result;  // what it found, or why it failed
    json fields = json::object();
};

struct Walk {
    std::vector<Step> steps;
    std::optional<std::string> failed_step;
    std::string verdict;
};

Step& add(Walk& walk, Step step) {
    walk.steps.push_back(std::move(step));
    return walk.steps.back();
}

void fail(Walk& walk, const std::string& step, std::string verdict) {
    walk.failed_step = step;
    walk.verdict = std::move(verdict);
}

std::string why_no_answer(const client::Error& error, std::uint32_t timeout_ms) {
    if (error.code == client::ErrorCode::timed_out || error.system_error == ETIMEDOUT) {
        return "no answer within " + std::to_string(timeout_ms) + " ms";
    }
    if ((error.code == client::ErrorCode::early_eof ||
         error.code == client::ErrorCode::no_response) &&
        error.received.empty()) {
        return "closed the connection without a reply (an access rule, or a name it does not "
               "accept)";
    }
    return error.cause();
}

// Steps 2 and 3: the port mapper on each address in turn until one accepts the connection,
// then the lookup on that one. Returns the address and the node, once found.
std::optional<std::pair<std::string, wire::NodeInfo>> look_up(
    Walk& walk, const std::vector<std::string>& addresses, const std::string& name,
    const ClientCommand& command) {
    std::vector<std::string> unanswered;  // the addresses where no port mapper answered
    for (const std::string& address : addresses) {
        const client::Client epmd(
            client::Options{command.port, address, std::chrono::milliseconds(command.timeout_ms)});
        client::RequestTiming timing;
        const auto found = epmd.port_please(name, &timing);
        const std::string where = host_and_port(address, command.port);
        const bool connected = found || found.error().code != client::ErrorCode::cannot_connect;
        Step& reach = add(walk, Step{"port_mapper",
                                     "reach the port mapper at " + where,
                                     connected,
                                     timing.connect,
                                     connected ? "" : found.error().cause(),
                                     {{"address", address}, {"port", command.port}}});
        if (!connected) {
            reach.fields["error"] = reach.result;
            unanswered.push_back(where);
            continue;
        }
        Step& lookup =
            add(walk, Step{"lookup", "look up " + name, false, timing.reply, {}, {{"name", name}}});
        if (!found) {
            lookup.result = why_no_answer(found.error(), command.timeout_ms);
            lookup.fields["error"] = lookup.result;
            std::string verdict = "the port mapper at " + where;
            verdict += " did not answer the lookup of " + name + ": " + lookup.result;
            fail(walk, "lookup", std::move(verdict));
            return std::nullopt;
        }
        lookup.fields["found"] = found->has_value();
        if (!found->has_value()) {
            lookup.result = "not registered";
            fail(walk, "lookup", "the port mapper has no node named " + name);
            return std::nullopt;
        }
        lookup.ok = true;
        lookup.result = describe_node(*found.value());
        lookup.fields["node"] = node_json(*found.value());
        return std::pair{address, *found.value()};
    }
    std::string places;
    for (const std::string& where : unanswered) {
        places += (places.empty() ? "" : " or ") + where;
    }
    fail(walk, "port_mapper", "no port mapper answers on " + places);
    return std::nullopt;
}

Walk walk_to(const std::string& name, const std::string& host, const ClientCommand& command) {
    Walk walk;
    const std::chrono::milliseconds timeout(command.timeout_ms);

    Clock::time_point start = Clock::now();
    const auto addresses = client::resolve_host(host, timeout);
    Step& resolve =
        add(walk, Step{"resolve", "resolve " + host, addresses.ok(), since(start), {}, {}});
    if (!addresses) {
        resolve.result =
            addresses.error().code == client::ErrorCode::timed_out
                ? "no answer from the resolver within " + std::to_string(command.timeout_ms) + " ms"
                : addresses.error().detail;
        resolve.fields["error"] = resolve.result;
        fail(walk, "resolve", "cannot resolve host " + host + " (" + resolve.result + ")");
        return walk;
    }
    for (const std::string& address : addresses.value()) {
        resolve.result += (resolve.result.empty() ? "" : ", ") + address;
    }
    resolve.fields["addresses"] = addresses.value();

    const auto found = look_up(walk, addresses.value(), name, command);
    if (!found) {
        return walk;
    }
    const auto& [address, node] = *found;
    const std::string where = host_and_port(address, node.port);
    start = Clock::now();
    const auto accepted = client::probe_connect(address, node.port, timeout);
    Step& connect = add(walk, Step{"node_port",
                                   "connect to " + name + " at " + where,
                                   accepted.ok(),
                                   since(start),
                                   {},
                                   {{"address", address}, {"port", node.port}}});
    if (!accepted) {
        connect.result = why_no_answer(accepted.error(), command.timeout_ms);
        connect.fields["error"] = connect.result;
        const bool refused = accepted.error().system_error == ECONNREFUSED;
        fail(walk, "node_port",
             "node " + name + " is registered at port " + std::to_string(node.port) +
                 (refused ? " but nothing accepts connections there"
                          : " but connecting to " + where + " failed: " + connect.result));
        return walk;
    }
    walk.verdict = "node " + name + "@" + host + " is reachable: the port mapper knows it and " +
                   where + " accepts connections (no distribution handshake or cookie tried)";
    return walk;
}

}  // namespace

void print_out(const std::string& text) {
    (void)std::fwrite(text.data(), 1, text.size(), stdout);
}

std::string host_and_port(const std::string& host, std::uint16_t port) {
    const bool ipv6 = host.find(':') != std::string::npos;
    return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string milliseconds_text(std::chrono::microseconds elapsed) {
    char text[32];
    (void)std::snprintf(text, sizeof text, "%.1f ms", static_cast<double>(elapsed.count()) / 1000);
    return text;
}

double milliseconds_value(std::chrono::microseconds elapsed) {
    return static_cast<double>(elapsed.count()) / 1000;
}

std::string describe_node(const wire::NodeInfo& node) {
    return "port " + std::to_string(node.port) + ", type " + std::to_string(node.node_type) + " (" +
           node_type_name(node.node_type) + "), protocol " + std::to_string(node.protocol) +
           ", highest version " + std::to_string(node.highest_version) + ", lowest version " +
           std::to_string(node.lowest_version) + ", extra " + escaped(node.extra);
}

json node_json(const wire::NodeInfo& node) {
    return {{"name", node.name},
            {"port", node.port},
            {"type", node.node_type},
            {"type_name", node_type_name(node.node_type)},
            {"protocol", node.protocol},
            {"highest_version", node.highest_version},
            {"lowest_version", node.lowest_version},
            {"extra_hex", server::hex_text(node.extra)}};
}

int run_check(const ClientCommand& command) {
    const std::string& target = command.check_target;
    const std::size_t at = target.find('@');
    if (at == std::string::npos || at == 0 || at + 1 == target.size()) {
        (void)std::fputs(("epmdx: -check needs NAME@HOST, as in mynode@db1.example.com; got \"" +
                          target + "\"\n")
                             .c_str(),
                         stderr);
        return 1;
    }
    const std::string name = target.substr(0, at);
    const std::string host = target.substr(at + 1);
    const Walk walk = walk_to(name, host, command);

    if (command.json) {
        json steps = json::array();
        for (const Step& step : walk.steps) {
            json object = {
                {"step", step.id}, {"ok", step.ok}, {"ms", milliseconds_value(step.elapsed)}};
            object.update(step.fields);
            steps.push_back(std::move(object));
        }
        const json report = {
            {"check", target},
            {"name", name},
            {"host", host},
            {"port", command.port},
            {"ok", !walk.failed_step},
            {"failed_step", walk.failed_step ? json(*walk.failed_step) : json(nullptr)},
            {"verdict", walk.verdict},
            {"steps", std::move(steps)}};
        print_out(report.dump(-1, ' ', false, json::error_handler_t::replace) + "\n");
    } else {
        std::string text = "checking " + target +
                           " as a connecting node would (TCP only: no handshake, no cookie)\n";
        for (const Step& step : walk.steps) {
            std::string line = step.ok ? "ok    " : "FAIL  ";
            line += milliseconds_text(step.elapsed);
            line.resize(std::max<std::size_t>(line.size() + 2, 18), ' ');
            line += step.what;
            if (!step.result.empty()) {
                line += ": " + step.result;
            }
            text += line + "\n";
        }
        text += "verdict: " + walk.verdict + "\n";
        print_out(text);
    }
    return walk.failed_step ? 1 : 0;
}

}  // namespace epmdx::cli
