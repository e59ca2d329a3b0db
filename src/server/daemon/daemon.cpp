// SPDX-License-Identifier: Apache-2.0
#include "server/daemon/daemon.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <asio/io_context.hpp>
#include <csignal>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "platform/platform.hpp"
#include "server/config/static_entries.hpp"
#include "server/core/listeners.hpp"
#include "server/core/log.hpp"
#include "server/core/observer_fan_out.hpp"
#include "server/core/server.hpp"
#ifdef EPMDX_HAVE_FLEET
#include "server/fleet/curl_library.hpp"
#include "server/fleet/publisher.hpp"
#include "server/fleet/record.hpp"
#endif
#include "server/observe/metrics_listener.hpp"
#include "server/observe/observability.hpp"
#include "server/restart/handover.hpp"
#include "server/restart/handover_state.hpp"
#include "server/restart/restarter.hpp"

namespace epmdx::server {
namespace {

// Raises the soft descriptor limit to the hard one, or sets it to what the reactor can watch if
// that is less (select(): the connection cap and EMFILE handling then keep within it); returns
// the limit now in force.
std::size_t raise_descriptor_limit(Logger& log) {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) {
        return 1024;
    }
    // An unlimited hard limit is still capped by the kernel's nr_open; ask for a large value.
    rlim_t wanted = limit.rlim_max == RLIM_INFINITY ? rlim_t{1} << 20 : limit.rlim_max;
    const std::optional<std::uint64_t> most = platform::reactor_descriptor_limit();
    if (most) {
        wanted = std::min<rlim_t>(wanted, *most);
    }
    if (limit.rlim_cur < wanted || (most && limit.rlim_cur > wanted)) {
        rlimit raised = limit;
        raised.rlim_cur = wanted;
        if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) {
            limit = raised;
        } else {
            log.perror(1, errno, "cannot set the open file limit to %llu",
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
        platform::close_from(3);
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

// The listeners: from systemd, from the previous process, or bound here. names: what each is
// called when passed on to the next process.
Listeners take_listeners(asio::io_context& io, const DaemonOptions& options, const ListenPlan& plan,
                         const InheritedDescriptors& inherited, std::vector<std::string>& names,
                         Logger& log) {
    if (options.systemd) {
        std::vector<int> fds;
        for (const NamedFd& fd : inherited.systemd_listeners) {
            fds.push_back(fd.fd);
            names.push_back(fd.name);
        }
        return adopt_listeners(io, fds, "systemd", log);
    }
    const auto bound_here = [&](std::size_t count) {
        names.assign(count, std::string(listener_fd_name));
    };
    if (!inherited.handed_listeners.empty()) {
        Listeners handed = adopt_listeners(io, inherited.handed_listeners, "inherited", log);
        if (!handed.exit_code) {
            bound_here(handed.acceptors.size());
            return handed;
        }
        // Unusable: let go of what came, and bind as at any start.
        for (Acceptor& acceptor : handed.acceptors) {
            std::error_code ignored;
            acceptor.close(ignored);
        }
        for (const int fd : inherited.handed_listeners) {
            ::close(fd);
        }
        log.printf(0, "handover: the inherited listening sockets are unusable; binding anew");
    }
    Listeners opened = open_listeners(io, plan, options.port, log);
    bound_here(opened.acceptors.size());
    return opened;
}

// The state the previous process left: nullopt (with the reason logged) if it is unusable.
std::optional<HandoverState> take_state(const std::vector<int>& fds, Logger& log) {
    std::optional<HandoverState> state;
    for (std::size_t i = 0; i < fds.size(); ++i) {
        if (i > 0) {
            log.printf(0, "handover: dropped state descriptor %d: only one is read", fds[i]);
            continue;
        }
        std::string error;
        const std::optional<std::vector<std::uint8_t>> blob = read_sealed_state(fds[i], error);
        if (blob) {
            DecodedHandoverState decoded = decode_handover_state(*blob);
            state = std::move(decoded.state);
            error = std::move(decoded.error);
        }
        if (!state) {
            log.printf(0, "handover: dropped the state: %s", error.c_str());
        }
    }
    for (const int fd : fds) {
        ::close(fd);
    }
    if (fds.empty()) {
        log.printf(0, "handover: no state came with the registrations");
    }
    return state;
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

#ifdef EPMDX_HAVE_FLEET
// The -fleet publisher, or none (without -fleet, or when no endpoint is usable: the daemon then
// serves locally, as it always does while etcd cannot be reached).
std::unique_ptr<fleet::FleetPublisher> make_fleet_publisher(asio::io_context& io,
                                                            const DaemonOptions& options,
                                                            Logger& log) {
    if (options.fleet_endpoints.empty()) {
        return nullptr;
    }
    fleet::Endpoints endpoints = fleet::parse_endpoints(options.fleet_endpoints);
    for (const std::string& error : endpoints.errors) {
        log.printf(0, "-fleet: ignoring %s", error.c_str());
    }
    if (endpoints.urls.empty()) {
        log.printf(0, "-fleet: no usable etcd endpoint; serving locally, publishing nothing");
        return nullptr;
    }
    fleet::FleetSettings settings{
        .endpoints = std::move(endpoints.urls),
        .tls = options.fleet_tls,
        .prefix = options.fleet_prefix,
        .host = options.fleet_host.empty() ? fleet::short_host_name() : options.fleet_host};
    return std::make_unique<fleet::FleetPublisher>(io, log, std::move(settings));
}

// -fleet's settings that cannot be meant: an endpoint list that mixes http:// and https://, and
// TLS files that do not go together or cannot be read. A URL that is merely unusable is only a
// warning later (make_fleet_publisher). Also where libcurl is loaded, so that a host without it
// hears so at once.
std::optional<std::string> fleet_configuration_error(const DaemonOptions& options) {
    if (options.fleet_endpoints.empty()) {
        return std::nullopt;
    }
    if (std::optional<std::string> error = fleet::curl_load_error()) {
        return error;
    }
    const fleet::Endpoints endpoints = fleet::parse_endpoints(options.fleet_endpoints);
    if (endpoints.mixed) {
        return "-fleet: " + endpoints.errors.front();
    }
    return fleet::tls_error(options.fleet_tls, endpoints);
}
#endif

// What is read before detaching, so that a mistake is reported where it can be seen: the
// addresses to bind, the -static file and -fleet's TLS files. An exit status if any is bad.
std::optional<int> read_configuration(const DaemonOptions& options, ListenPlan& plan,
                                      StaticFile& static_file, Logger& log) {
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
    if (!options.static_file.empty()) {
        static_file = read_static_file(options.static_file);
        if (!static_file.error.empty()) {
            log.printf(0, "bad -static file: %s", static_file.error.c_str());
            return 1;
        }
    }
#ifdef EPMDX_HAVE_FLEET
    if (const std::optional<std::string> error = fleet_configuration_error(options)) {
        log.printf(0, "%s", error->c_str());
        return 1;
    }
#endif
    return std::nullopt;
}

// The registrations and the state a previous process passed, taken over. After raising the
// descriptor limit: each registration takes one here.
void take_over(const InheritedDescriptors& inherited, bool systemd, Restarter& restarter,
               Logger& log) {
    if (inherited.states.empty() && inherited.bundles.empty()) {
        return;
    }
    std::vector<std::string> problems;
    const std::vector<int> registrations = unbundle_registrations(inherited.bundles, problems);
    for (const std::string& problem : problems) {
        log.printf(0, "handover: %s", problem.c_str());
    }
    const std::optional<HandoverState> state = take_state(inherited.states, log);
    restarter.adopt(state ? &*state : nullptr, registrations);
    if (systemd) {
        clear_fd_store();  // the store must never hold stale copies
    }
}

}  // namespace

int run_daemon(const DaemonOptions& options) {
    Logger log(options.debug_level);
    (void)std::signal(SIGPIPE, SIG_IGN);
    // What SIGHUP re-executes: this binary as it was found at start, with the same arguments.
    std::string image_error;
    const std::optional<ExecImage> image = capture_exec_image(image_error);
    InheritedDescriptors inherited = take_inherited_descriptors();
    // A process re-executed by SIGHUP is the same process: it is already detached.
    const bool resumed = inherited.from_previous_process();

    ListenPlan plan;
    StaticFile static_file;
    if (const std::optional<int> status = read_configuration(options, plan, static_file, log)) {
        return *status;
    }
    if (options.daemonize && resumed) {
        log.use_syslog();
    } else if (options.daemonize && !daemonize(log, options.systemd)) {
        return 1;
    }

    const std::size_t descriptor_limit = raise_descriptor_limit(log);
    asio::io_context io(1);
    std::vector<std::string> listener_names;
    Listeners listeners = take_listeners(io, options, plan, inherited, listener_names, log);
    if (listeners.exit_code) {
        if (options.systemd) {
            notify_systemd("STATUS=Exited.\nERRNO=" + std::to_string(*listeners.exit_code));
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

    Observability observability(io, options, log.uses_syslog(), std::move(metrics_acceptor));
    std::optional<ObserverFanOut> fan_out;
#ifdef EPMDX_HAVE_FLEET
    const std::unique_ptr<fleet::FleetPublisher> publisher = make_fleet_publisher(io, options, log);
    if (publisher) {
        fan_out.emplace(std::vector<Observer*>{&observability, publisher.get()});
    }
#endif
    Server server(io, options, log, fan_out ? static_cast<Observer&>(*fan_out) : observability,
                  std::move(listeners.acceptors), max_connections);
    observability.read_counts_from([&server] { return server.counts(); });
    Restarter restarter(io, options, log, server);
    server.add_static_entries(std::move(static_file.nodes));
    take_over(inherited, options.systemd, restarter, log);
    if (image) {
        restarter.enable_reexec(*image, std::move(listener_names));
    } else {
        log.printf(1, "SIGHUP will not re-execute: %s", image_error.c_str());
        restarter.refuse_reexec(image_error);
    }
#ifdef EPMDX_HAVE_FLEET
    if (publisher) {
        observability.read_fleet_from([&publisher = *publisher] {
            const fleet::FleetCounts counts = publisher.counts();
            return FleetGauges{.connected = counts.connected,
                               .published = counts.published,
                               .deleted = counts.deleted,
                               .failed = counts.failed,
                               .lag_bounds = fleet::publish_lag_buckets,
                               .lag_counts = {counts.lag_counts.begin(), counts.lag_counts.end()},
                               .lag_sum_seconds = counts.lag_sum_seconds};
        });
        publisher->on_status([&observability](bool reached, std::string_view reason) {
            observability.fleet_status(reached, reason);
        });
        publisher->hold(server.registry());  // static entries and registrations taken over
        publisher->start();
    }
#endif
    server.start();
    observability.start();
    restarter.start();
    if (options.systemd) {
        notify_systemd("READY=1\nSTATUS=Processing port mapping requests...\nMAINPID=" +
                       std::to_string(::getpid()));
    }
    io.run();
#ifdef EPMDX_HAVE_FLEET
    if (publisher) {
        // Stopped for good: the lease goes, and every key with it. Handed over: they stay.
        publisher->finish(server.phase() == Server::Phase::stopped);
    }
#endif
    if (options.systemd) {
        notify_systemd("STATUS=Exited.\nERRNO=0");
    }
    return 0;
}

}  // namespace epmdx::server
