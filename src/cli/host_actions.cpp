// SPDX-License-Identifier: Apache-2.0
// -names, -dump, -started and -lookup against one or more port mappers, asked concurrently, each
// answer labelled with its host, as text or JSON.
#include <cstdio>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "cli/diagnose.hpp"
#include "epmdx/client.hpp"
#include "epmdx/protocol.hpp"

namespace epmdx::cli {
namespace {

using nlohmann::json;

// Where one answer came from: an item of -host, or the local port mapper.
struct Target {
    std::string host;  // empty: the local port mapper (::1, then 127.0.0.1)
    std::uint16_t port = 0;
    bool labelled = false;  // given with -host: every line carries the label

    std::string shown_host() const { return host.empty() ? "localhost" : host; }
    std::string label() const { return host_and_port(shown_host(), port); }
};

// One host's answer, rendered; printed in the order the hosts were given. (json's destructor
// may allocate, so its implicit members may in theory throw; out of memory may end a client.)
// NOLINTNEXTLINE(bugprone-exception-escape)
struct Answer {
    bool ok = false;
    std::string out;
    std::string err;
    json object;
};

const char* error_name(client::ErrorCode code) {
    switch (code) {
        case client::ErrorCode::cannot_connect:
            return "cannot_connect";
        case client::ErrorCode::cannot_resolve:
            return "cannot_resolve";
        case client::ErrorCode::timed_out:
            return "timed_out";
        case client::ErrorCode::write_failed:
            return "write_failed";
        case client::ErrorCode::no_response:
            return "no_response";
        case client::ErrorCode::read_failed:
            return "read_failed";
        case client::ErrorCode::early_eof:
            return "early_eof";
        case client::ErrorCode::bad_reply:
            return "bad_reply";
        case client::ErrorCode::name_too_long:
            return "name_too_long";
        case client::ErrorCode::registration_refused:
            return "registration_refused";
    }
    return "error";
}

std::string describe_error(const client::Error& error, const Target& target,
                           const ClientCommand& command) {
    switch (error.code) {
        case client::ErrorCode::cannot_resolve:
            return "cannot resolve " + target.shown_host() + ": " + error.detail;
        case client::ErrorCode::cannot_connect:
            return "no port mapper answers on " + target.label() + ": " + error.cause();
        case client::ErrorCode::timed_out:
            if (!error.detail.empty()) {
                return "cannot resolve " + target.shown_host() + ": " + error.detail;
            }
            return "no answer from " + target.label() + " within " +
                   std::to_string(command.timeout_ms) + " ms";
        case client::ErrorCode::no_response:
        case client::ErrorCode::early_eof:
            if (error.received.empty()) {
                return "the port mapper on " + target.label() +
                       " closed the connection without answering" +
                       (command.action == ClientAction::dump
                            ? " (it answers DUMP to local clients only)"
                            : " (refused by an access rule?)");
            }
            break;
        default:
            break;
    }
    return "the port mapper on " + target.label() + ": " + error.message();
}

void fail(Answer& answer, const client::Error& error, const Target& target,
          const ClientCommand& command) {
    const std::string text = describe_error(error, target, command);
    answer.ok = false;
    answer.err += (target.labelled ? target.label() : std::string("epmdx")) + ": " + text + "\n";
    answer.object["ok"] = false;
    answer.object["error"] = error_name(error.code);
    answer.object["message"] = text;
}

// Each line of `text` with the target's label in front, if it has one. NUL bytes (after each
// DUMP line) are left out.
std::string labelled_lines(std::string_view text, const Target& target) {
    std::string out;
    bool line_start = true;
    for (const char c : text) {
        if (c == '\0') {
            continue;
        }
        if (line_start && target.labelled) {
            out += target.label() + ": ";
        }
        out += c;
        line_start = c == '\n';
    }
    if (!line_start) {
        out += '\n';
    }
    return out;
}

// DUMP's active and old entries, as the protocol layer reads them; other lines are left out.
void add_dump_entries(std::string_view text, json& object) {
    json nodes = json::array();
    json old = json::array();
    for (const wire::DumpEntry& entry : wire::decode_dump_lines(text)) {
        (entry.active ? nodes : old)
            .push_back({{"name", entry.name}, {"port", entry.port}, {"fd", entry.fd}});
    }
    object["nodes"] = std::move(nodes);
    object["old"] = std::move(old);
}

Answer ask(const Target& target, const ClientCommand& command) {
    Answer answer;
    answer.object = {{"host", target.shown_host()}, {"port", target.port}};
    const client::Client epmd(
        client::Options{target.port, target.host, std::chrono::milliseconds(command.timeout_ms)});
    const std::string prefix = target.labelled ? target.label() + ": " : "";
    switch (command.action) {
        case ClientAction::names:
            if (command.json) {
                const auto names = epmd.names();
                if (!names) {
                    fail(answer, names.error(), target, command);
                    return answer;
                }
                json nodes = json::array();
                for (const wire::NameEntry& entry : names->nodes) {
                    nodes.push_back({{"name", entry.name}, {"port", entry.port}});
                }
                answer.object["ok"] = true;
                answer.object["epmd_port"] = names->epmd_port;
                answer.object["nodes"] = std::move(nodes);
                answer.ok = true;
                return answer;
            }
            [[fallthrough]];
        case ClientAction::dump: {
            const auto listing =
                command.action == ClientAction::names ? epmd.names_listing() : epmd.dump();
            if (!listing) {
                fail(answer, listing.error(), target, command);
                return answer;
            }
            answer.ok = true;
            answer.object["ok"] = true;
            answer.object["epmd_port"] = listing->epmd_port;
            if (command.action == ClientAction::dump) {
                add_dump_entries(listing->text, answer.object);
            }
            answer.out = labelled_lines("epmd: up and running on port " +
                                            std::to_string(listing->epmd_port) + " with data:\n" +
                                            listing->text,
                                        target);
            return answer;
        }
        case ClientAction::started: {
            const auto names = epmd.names_listing();
            if (!names) {
                fail(answer, names.error(), target, command);
                return answer;
            }
            answer.ok = true;
            answer.object["ok"] = true;
            answer.out = prefix + "a port mapper answers\n";
            return answer;
        }
        case ClientAction::lookup: {
            const auto found = epmd.port_please(command.lookup_name);
            if (!found) {
                fail(answer, found.error(), target, command);
                return answer;
            }
            answer.object["ok"] = true;
            answer.object["name"] = command.lookup_name;
            answer.object["found"] = found->has_value();
            if (!found->has_value()) {
                answer.err = (target.labelled ? prefix : std::string("epmdx: ")) +
                             "no node named " + command.lookup_name + "\n";
                return answer;
            }
            answer.ok = true;
            answer.object["node"] = node_json(*found.value());
            answer.out = prefix + command.lookup_name + ": " + describe_node(*found.value()) + "\n";
            return answer;
        }
        case ClientAction::kill:
        case ClientAction::stop:
        case ClientAction::check:
        case ClientAction::hosts:
        case ClientAction::watch:
            break;
    }
    return answer;
}

}  // namespace

bool uses_diagnosing_options(const ClientCommand& command) {
    return command.json || !command.hosts.empty() || command.action == ClientAction::lookup ||
           command.action == ClientAction::check;
}

int run_host_action(const ClientCommand& command) {
    std::vector<Target> targets;
    for (const HostItem& item : command.hosts) {
        targets.push_back(Target{item.host, item.port.value_or(command.port), true});
    }
    if (targets.empty()) {
        targets.push_back(Target{{}, command.port, false});
    }
    std::vector<Answer> answers(targets.size());
    {
        // One thread per host: each waits at most the timeout, so all of them together do too.
        // (std::thread: libc++ 14 has no std::jthread.)
        std::vector<std::thread> askers;
        for (std::size_t i = 0; i < targets.size(); ++i) {
            askers.emplace_back(
                [&answers, &targets, &command, i] { answers[i] = ask(targets[i], command); });
        }
        for (std::thread& asker : askers) {
            asker.join();
        }
    }
    bool all_ok = true;
    std::string out;
    for (const Answer& answer : answers) {
        all_ok = all_ok && answer.ok;
        if (command.json) {
            out += answer.object.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
        } else {
            print_out(out + answer.out);
            out.clear();
            (void)std::fflush(stdout);
            (void)std::fputs(answer.err.c_str(), stderr);
        }
    }
    print_out(out);
    return all_ok ? 0 : 1;
}

}  // namespace epmdx::cli
