// SPDX-License-Identifier: Apache-2.0
#include "cli/client_commands.hpp"

#include <cstdio>
#include <string>
#include <string_view>

#include "cli/diagnose.hpp"
#ifdef EPMDX_HAVE_FLEET
#include "cli/fleet_actions.hpp"
#endif
#include "epmdx/client.hpp"

namespace epmdx::cli {
namespace {

using client::Error;
using client::ErrorCode;

// OTP's CLI prints through stdio, so a pipe receives the whole output in one piece at exit.
// Output errors are ignored, as there.
void print(std::string_view text) {
    (void)std::fwrite(text.data(), 1, text.size(), stdout);
}

// The messages OTP's CLI prints when a request fails. Only "cannot connect" goes to stderr.
int report(const Error& error) {
    switch (error.code) {
        case ErrorCode::cannot_connect:
        case ErrorCode::cannot_resolve:  // never: OTP's actions ask loopback addresses only
            (void)std::fputs("epmd: Cannot connect to local epmd\n", stderr);
            break;
        case ErrorCode::write_failed:
            print("epmd: Can't write to epmd\n");
            break;
        case ErrorCode::no_response:
        case ErrorCode::timed_out:
            print("epmd: no response from local epmd\n");
            break;
        case ErrorCode::read_failed:
            print("epmd: failed to read answer from local epmd\n");
            break;
        case ErrorCode::early_eof:
        case ErrorCode::bad_reply:
        case ErrorCode::registration_refused:
            // OTP's read loop returns 0 on EOF, so the partial reply is never shown.
            print("epmd: local epmd responded with <>\n");
            break;
        case ErrorCode::name_too_long:
            print("epmd: Name too long!");
            break;
    }
    return 1;
}

// Like printf("%s"): C strings stop at the first NUL.
std::string_view up_to_nul(std::string_view bytes) {
    return bytes.substr(0, bytes.find('\0'));
}

}  // namespace

int run_client(const ClientCommand& command) {
#ifdef EPMDX_HAVE_FLEET
    if (!command.fleet_endpoints.empty()) {
        return run_fleet_action(command);
    }
#endif
    if (command.action == ClientAction::check) {
        return run_check(command);
    }
    if (uses_diagnosing_options(command)) {
        return run_host_action(command);
    }
    // No timeout, as in OTP: a slow daemon (-delay_write) is waited for.
    const client::Client epmd(client::Options{command.port, {}, std::chrono::milliseconds(0)});
    switch (command.action) {
        case ClientAction::names:
        case ClientAction::dump: {
            const auto listing =
                command.action == ClientAction::names ? epmd.names_listing() : epmd.dump();
            if (!listing) {
                return report(listing.error());
            }
            print("epmd: up and running on port " + std::to_string(listing->epmd_port) +
                  " with data:\n");
            print(listing->text);
            return 0;
        }
        case ClientAction::started:
            // Silent: the exit code is the answer.
            return epmd.names_listing().ok() ? 0 : 1;
        case ClientAction::kill: {
            const auto outcome = epmd.kill();
            if (!outcome) {
                return report(outcome.error());
            }
            if (outcome.value() == client::KillOutcome::killed) {
                print("Killed\n");
                return 0;
            }
            print("Killing not allowed - living nodes in database.\n");
            return 1;
        }
        case ClientAction::lookup:
        case ClientAction::check:
        case ClientAction::hosts:
        case ClientAction::watch:
            break;  // handled above
        case ClientAction::stop: {
            const auto reply = epmd.stop(command.stop_name);
            if (!reply) {
                return report(reply.error());
            }
            // Any 7 bytes count as an answer, NOEXIST included: exit 0.
            print(std::string(up_to_nul(reply.value())) + "\n");
            return 0;
        }
    }
    return 1;
}

}  // namespace epmdx::cli
