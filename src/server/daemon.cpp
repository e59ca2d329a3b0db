#include "daemon.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <asio/io_context.hpp>
#include <csignal>
#include <cstdlib>
#include <optional>
#include <string>
#include <variant>

#include "listeners.hpp"
#include "log.hpp"
#include "metrics_listener.hpp"
#include "server.hpp"
#include "static_entries.hpp"

#ifdef EPMDX_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

namespace epmdx::server {
namespace {

// Raises the soft descriptor limit to the hard one; returns the limit now in force.
std::size_t raise_descriptor_limit(Logger& log) {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) {
        return 1024;
    }
    // An unlimited hard limit is still capped by the kernel's nr_open; ask for a large value.
    const rlim_t wanted = limit.rlim_max == RLIM_INFINITY ? rlim_t{1} << 20 : limit.rlim_max;
    if (limit.rlim_cur < wanted) {
        rlimit raised = limit;
        raised.rlim_cur = wanted;
        if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) {
            limit = raised;
        } else {
            log.perror(1, errno, "cannot raise the open file limit to %llu",
                       static_cast<unsigned long long>(wanted));
        }
    }
    return static_cast<std::size_t>(limit.rlim_cur);
}

// Descriptors kept back from connections: stdio, listeners, the event loop's own, syslog.
std::size_t default_max_connections(std::size_t descriptor_limit) {
    const std::size_t reserve = std::max<std::size_t>(32, descriptor_limit / 100);
    return descriptor_limit > reserve * 2 ? descriptor_limit - reserve : descriptor_limit / 2;
}

// Forks; the parent exits at once with status 0, the child returns true.
bool fork_and_leave_parent(Logger& log) {
    const pid_t pid = ::fork();
    if (pid < 0) {
        log.perror(0, errno, "fork");
        return false;
    }
    if (pid > 0) {
        std::_Exit(0);
    }
    return true;
}

// The reference's daemonizing: double fork, new session, no inherited descriptors, stdio on
// /dev/null. With socket activation the descriptors from 3 on are the listeners: keep them.
bool daemonize(Logger& log, bool keep_inherited_descriptors) {
    if (!fork_and_leave_parent(log)) {
        return false;
    }
    if (::setsid() < 0) {
        log.perror(0, errno, "setsid");
        return false;
    }
    (void)std::signal(SIGHUP, SIG_IGN);
    if (!fork_and_leave_parent(log)) {
        return false;
    }
    if (::chdir("/") != 0) {
        log.perror(0, errno, "chdir");
        return false;
    }
    ::umask(0);
    if (!keep_inherited_descriptors) {
        ::close_range(3, ~0U, 0);
    }
    const int null_fd = ::open("/dev/null", O_RDWR);
    if (null_fd >= 0) {
        ::dup2(null_fd, 0);
        ::dup2(null_fd, 1);
        ::dup2(null_fd, 2);
        if (null_fd > 2) {
            ::close(null_fd);
        }
    }
    log.use_syslog();
    return true;
}

// The -metrics listener, or a message when it cannot be opened.
std::variant<Acceptor, std::string> open_metrics_listener(asio::io_context& io,
                                                          const std::string& value) {
    const auto parsed = parse_metrics_endpoint(value);
    if (const auto* error = std::get_if<std::string>(&parsed)) {
        return "-metrics: " + *error;
    }
    const auto& endpoint = std::get<asio::ip::tcp::endpoint>(parsed);
    Acceptor acceptor(io);
    std::error_code error;
    acceptor.open(endpoint.protocol(), error);
    if (!error) {
        acceptor.set_option(Acceptor::reuse_address(true), error);
    }
    if (!error && endpoint.address().is_v6()) {
        acceptor.set_option(asio::ip::v6_only(true), error);
    }
    if (!error) {
        acceptor.bind(endpoint, error);
    }
    if (!error) {
        acceptor.listen(asio::socket_base::max_listen_connections, error);
    }
    if (error) {
        return "-metrics: cannot listen on " + value + ": " + error.message();
    }
    return acceptor;
}

void notify_systemd([[maybe_unused]] const char* state) {
#ifdef EPMDX_HAVE_SYSTEMD
    sd_notify(0, state);
#endif
}

}  // namespace

int run_daemon(const DaemonOptions& options) {
    Logger log(options.debug_level);
    (void)std::signal(SIGPIPE, SIG_IGN);

    ListenPlan plan;
    if (!options.systemd) {
        if (options.port == 0) {
            // Only a garbled ERL_EPMD_PORT gets here (-port 0 is a usage error): a random port
            // would be a daemon that no node can find.
            log.printf(0, "invalid port 0 (check ERL_EPMD_PORT)");
            return 1;
        }
        plan = plan_listen_addresses(options.address_list);
        if (!plan.error.empty()) {
            log.printf(0, "%s", plan.error.c_str());
            return 1;
        }
    }
    // Read before detaching, so that a bad file is reported where it can be seen.
    StaticFile static_file;
    if (!options.static_file.empty()) {
        static_file = read_static_file(options.static_file);
        if (!static_file.error.empty()) {
            log.printf(0, "bad -static file: %s", static_file.error.c_str());
            return 1;
        }
    }
    if (options.daemonize && !daemonize(log, options.systemd)) {
        return 1;
    }

    const std::size_t descriptor_limit = raise_descriptor_limit(log);
    asio::io_context io(1);
    Listeners listeners = options.systemd ? adopt_systemd_listeners(io, log)
                                          : open_listeners(io, plan, options.port, log);
    if (listeners.exit_code) {
        if (options.systemd) {
            notify_systemd(
                ("STATUS=Exited.\nERRNO=" + std::to_string(*listeners.exit_code)).c_str());
        }
        return *listeners.exit_code;
    }
    std::optional<Acceptor> metrics_acceptor;
    if (!options.metrics_address.empty()) {
        auto opened = open_metrics_listener(io, options.metrics_address);
        if (const auto* error = std::get_if<std::string>(&opened)) {
            log.printf(0, "%s", error->c_str());
            return 1;
        }
        metrics_acceptor.emplace(std::move(std::get<Acceptor>(opened)));
    }
    const std::size_t max_connections = options.max_connections != 0
                                            ? options.max_connections
                                            : default_max_connections(descriptor_limit);
    log.printf(1, "epmdx running on port %d, up to %zu connections (open file limit %zu)",
               options.port, max_connections, descriptor_limit);

    Server server(io, options, log, std::move(listeners.acceptors), max_connections,
                  std::move(metrics_acceptor));
    server.add_static_entries(std::move(static_file.nodes));
    server.start();
    if (options.systemd) {
        notify_systemd(("READY=1\nSTATUS=Processing port mapping requests...\nMAINPID=" +
                        std::to_string(::getpid()))
                           .c_str());
    }
    io.run();
    if (options.systemd) {
        notify_systemd("STATUS=Exited.\nERRNO=0");
    }
    return 0;
}

}  // namespace epmdx::server
