#include "arguments.hpp"

namespace epmdx::cli {

std::string usage_text() {
    std::string text =
        "usage: epmdx [daemon options]          run the port mapper\n"
        "       epmdx [-port N] CLIENT_ACTION   ask the running port mapper\n"
        "\n"
        "Arguments are read from left to right; a client action must come last and\n"
        "takes effect as soon as it is read.\n"
        "\n"
        "Client actions (they connect to [::1] or 127.0.0.1):\n"
        "  -names                   list the registered nodes\n"
        "  -dump                    list active and old node entries (local only)\n"
        "  -started                 exit 0 if a port mapper answers, 1 otherwise; prints nothing\n"
        "  -kill                    stop the daemon (refused while nodes are registered,\n"
        "                           unless it runs with -relaxed_command_check)\n"
        "  -stop NAME               unregister node NAME (needs -relaxed_command_check)\n"
        "\n"
        "Options shared with OTP's epmd:\n"
        "  -port N                  TCP port to serve or to ask (default 4369, or ERL_EPMD_PORT)\n"
        "  -address LIST            listen only on these addresses (comma- or space-separated);\n"
        "                           127.0.0.1 and ::1 are always added (or ERL_EPMD_ADDRESS)\n"
        "  -daemon                  detach and run in the background, logging to syslog\n"
        "  -d, -debug               more log output; may be repeated\n"
        "  -relaxed_command_check   allow -kill with live nodes, and -stop\n"
        "                           (also on when ERL_EPMD_RELAXED_COMMAND_CHECK is set)\n"
        "  -packet_timeout SECONDS  deadline for a whole request (default 60)\n"
        "  -delay_accept SECONDS    pause before accepting (for testing)\n"
        "  -delay_write SECONDS     pause before each reply (for testing)\n";
    if (systemd_supported()) {
        text +=
            "  -systemd                 take the listening sockets from systemd and notify it\n";
    }
    text +=
        "\n"
        "Options added by epmdx (each also read from the environment variable in brackets;\n"
        "the option wins):\n"
        "  -max_connections N       most connections held at once; 0 derives it from the\n"
        "                           open-file limit [ERL_EPMD_MAX_CONNECTIONS]\n"
        "  -max_pending_per_address N\n"
        "                           most not-yet-registered connections per source address\n"
        "                           (default 256, 0 = no limit) "
        "[ERL_EPMD_MAX_PENDING_PER_ADDRESS]\n"
        "  -names_access LIST       who may list names: any, loopback, or CIDR blocks such\n"
        "                           as 10.0.0.0/8,fd00::/8 (default any) [ERL_EPMD_NAMES_ACCESS]\n"
        "  -port_please_access LIST who may look up node ports, same LIST form\n"
        "                           (default any) [ERL_EPMD_PORT_PLEASE_ACCESS]\n"
        "\n"
        "Anything else, -h and -help included, prints this text and exits with status 1.\n";
    return text;
}

}  // namespace epmdx::cli
