// SPDX-License-Identifier: Apache-2.0
// epmdx-loadgen: measures one benchmark scenario against an epmd-compatible daemon on
// loopback and prints the result as one line of key=value pairs (bench/run.sh parses them).
//
//   epmdx-loadgen SCENARIO --port P [options]
//   scenarios: lookups names churn storm capacity flood restart-lookups reexec fleet-lag ping
//              free-port
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include "request_loop.hpp"

namespace epmdx::bench {
namespace {

using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::milliseconds;

class Args {
  public:
    Args(int argc, char** argv) {
        for (int i = 2; i < argc; i += 2) {
            std::string key = argv[i];
            if (key.rfind("--", 0) != 0 || i + 1 >= argc) {
                throw std::invalid_argument("expected --option value, got " + key);
            }
            values_[key.substr(2)] = argv[i + 1];
        }
    }
    std::string text(const std::string& key, const std::string& fallback) const {
        auto it = values_.find(key);
        return it == values_.end() ? fallback : it->second;
    }
    double number(const std::string& key, double fallback) const {
        auto it = values_.find(key);
        return it == values_.end() ? fallback : std::stod(it->second);
    }
    std::size_t count(const std::string& key, std::size_t fallback) const {
        // Not through number(): SIZE_MAX does not survive the round trip through a double.
        auto it = values_.find(key);
        return it == values_.end() ? fallback : static_cast<std::size_t>(std::stod(it->second));
    }

  private:
    std::map<std::string, std::string> values_;
};

// One result line: "key=value key=value ...".
class Line {
  public:
    template <typename T>
    Line& add(const std::string& key, const T& value) {
        out_ << (first_ ? "" : " ") << key << '=' << value;
        first_ = false;
        return *this;
    }
    ~Line() { std::cout << out_.str() << std::endl; }

  private:
    std::ostringstream out_;
    bool first_ = true;
};

// ---- Wire encoding (requests are a handful of fixed bytes) -----------------------------------

void put16(std::string& out, std::size_t value) {
    out.push_back(static_cast<char>((value >> 8) & 0xff));
    out.push_back(static_cast<char>(value & 0xff));
}

std::string frame(const std::string& body) {
    std::string out;
    put16(out, body.size());
    return out + body;
}

// ALIVE2_REQ as an OTP 23+ node sends it: type 'M', protocol 0, versions 6..5, no extra.
std::string alive2_request(const std::string& name, std::uint16_t port) {
    std::string body = "x";
    put16(body, port);
    body += "M";
    body.push_back('\0');
    put16(body, 6);
    put16(body, 5);
    put16(body, name.size());
    body += name;
    put16(body, 0);
    return frame(body);
}

std::string port_please2_request(const std::string& name) {
    return frame("z" + name);
}

const std::string names_request = frame("n");

// ALIVE2_X_RESP: 'v', result, 4-byte creation.
constexpr std::size_t alive2_reply_size = 6;

bool registered(std::string_view reply) {
    return reply.size() == alive2_reply_size && reply[0] == 'v' && reply[1] == 0;
}

bool port2_found(std::string_view reply) {
    return reply.size() >= 2 && reply[0] == 'w' && reply[1] == 0;
}

// The node names in a NAMES reply ("name <N> at port <P>\n" lines after a 4-byte header).
std::unordered_set<std::string> parse_names(std::string_view reply) {
    std::unordered_set<std::string> names;
    if (reply.size() < 4) {
        return names;
    }
    reply.remove_prefix(4);
    while (!reply.empty()) {
        const std::size_t end = reply.find('\n');
        const std::string_view line = reply.substr(0, end);
        const std::size_t at = line.rfind(" at port ");
        if (line.rfind("name ", 0) == 0 && at != std::string_view::npos) {
            names.emplace(line.substr(5, at - 5));
        }
        if (end == std::string_view::npos) {
            break;
        }
        reply.remove_prefix(end + 1);
    }
    return names;
}

// Why a registration failed. A complete reply that is not a success is an ALIVE2 error reply.
const char* describe_failure(Status status) {
    switch (status) {
        case Status::ok:
            return "error-reply";
        case Status::closed:
            return "closed";
        case Status::timed_out:
            return "timeout";
    }
    return "?";
}

// ---- Building blocks --------------------------------------------------------------------------

struct Registrations {
    std::vector<int> fds;
    std::vector<std::string> names;
    std::string failure = "none";  // why registering stopped early
    double seconds = 0;

    Registrations() = default;
    Registrations(const Registrations&) = delete;
    Registrations& operator=(const Registrations&) = delete;
    ~Registrations() { close_all(fds); }
};

// Registers up to count nodes, at most 64 unanswered at once (epmdx caps connections that have
// not registered yet per source address). Stops at the first refusal: OTP's epmd closes every
// connection beyond its ~1,017 slots.
void register_nodes(const Endpoint& endpoint, const std::string& prefix, std::size_t count,
                    Registrations& out) {
    const Clock::time_point begin = Clock::now();
    RequestLoop loop(endpoint, 64, milliseconds(3000));
    std::size_t issued = 0;
    bool failed = false;
    std::vector<std::string> requested;
    loop.run(
        [&](Request& request) {
            if (failed || issued == count) {
                return false;
            }
            requested.push_back(prefix + std::to_string(issued));
            request.bytes = alive2_request(requested.back(), 20000 + issued % 40000);
            request.reply_size = alive2_reply_size;
            request.tag = issued++;
            return true;
        },
        [&](const Response& response) {
            if (response.status == Status::ok && registered(response.reply)) {
                out.fds.push_back(response.fd);
                out.names.push_back(requested[response.tag]);
                return;
            }
            if (response.fd >= 0) {
                ::close(response.fd);
            }
            if (!failed) {
                out.failure = describe_failure(response.status);
            }
            failed = true;
        },
        Clock::now() + std::chrono::minutes(5));
    out.seconds = std::chrono::duration<double>(Clock::now() - begin).count();
}

struct Measurement {
    std::size_t ok = 0;
    std::size_t failed = 0;
    double seconds = 0;
    std::vector<std::uint32_t> micros;  // latency of every successful request
};

// What a timed phase sends, and which replies count as successes.
struct Workload {
    std::function<void(std::size_t, Request&)> make;
    std::function<bool(std::string_view)> valid;
};

// Keeps `concurrency` one-shot requests in flight for `duration`. A registration's connection
// is closed as soon as its reply is in (which unregisters the node: churn).
Measurement measure(const Endpoint& endpoint, std::size_t concurrency, milliseconds timeout,
                    std::chrono::duration<double> duration, const Workload& workload) {
    Measurement result;
    RequestLoop loop(endpoint, concurrency, timeout);
    std::size_t issued = 0;
    const Clock::time_point begin = Clock::now();
    loop.run(
        [&](Request& request) {
            workload.make(issued++, request);
            return true;
        },
        [&](const Response& response) {
            if (response.fd >= 0) {
                ::close(response.fd);
            }
            if (response.status == Status::ok && workload.valid(response.reply)) {
                ++result.ok;
                result.micros.push_back(static_cast<std::uint32_t>(
                    duration_cast<microseconds>(response.latency).count()));
            } else {
                ++result.failed;
            }
        },
        begin + duration_cast<Clock::duration>(duration));
    result.seconds = std::chrono::duration<double>(Clock::now() - begin).count();
    return result;
}

std::uint32_t percentile(std::vector<std::uint32_t>& values, double fraction) {
    if (values.empty()) {
        return 0;
    }
    const auto rank = static_cast<std::size_t>(std::ceil(fraction * values.size()));
    const std::size_t index = std::clamp<std::size_t>(rank, 1, values.size()) - 1;
    std::nth_element(values.begin(), values.begin() + index, values.end());
    return values[index];
}

std::string fixed(double value, int decimals) {
    std::ostringstream text;
    text.setf(std::ios::fixed);
    text.precision(decimals);
    text << value;
    return text.str();
}

// A daemon under test in a timed scenario; workload is unset if it could not be prepared.
struct Target {
    Endpoint endpoint;
    std::uint16_t port = 0;
    // The kernel floor (bench/floor_server.cpp): it answers every name without registrations.
    bool floor = false;
    std::optional<Workload> workload;
    std::vector<double> rates;
    std::vector<std::uint32_t> micros;
    std::size_t ok = 0;
    std::size_t failed = 0;
};

// Warms every target up for 0.3 s, then runs `reps` timed phases on each, taking turns so that
// a change in the machine's load hits every daemon alike (phase i of every target falls in the
// same round, so per-phase ratios compare like with like). Each round starts with the next
// target, so that none always follows the same one. Fills in each target's figures.
void measure_interleaved(const Args& args, std::vector<Target>& targets) {
    const std::size_t concurrency = args.count("concurrency", 16);
    const milliseconds timeout(args.count("timeout-ms", 1000));
    const std::chrono::duration<double> duration(args.number("duration", 3));
    const std::size_t reps = std::max<std::size_t>(1, args.count("reps", 3));
    for (Target& target : targets) {
        if (target.workload) {
            measure(target.endpoint, concurrency, timeout, std::chrono::duration<double>(0.3),
                    *target.workload);
        }
    }
    for (std::size_t i = 0; i < reps; ++i) {
        for (std::size_t k = 0; k < targets.size(); ++k) {
            Target& target = targets[(i + k) % targets.size()];
            if (!target.workload) {
                continue;
            }
            Measurement m =
                measure(target.endpoint, concurrency, timeout, duration, *target.workload);
            target.rates.push_back(static_cast<double>(m.ok) / m.seconds);
            target.ok += m.ok;
            target.failed += m.failed;
            target.micros.insert(target.micros.end(), m.micros.begin(), m.micros.end());
        }
    }
}

// The median rate of a target's phases and the p50/p99 latency over all of them.
void add_phase_rates(Line& line, Target& target) {
    std::string rate_list;
    for (const double rate : target.rates) {
        rate_list += rate_list.empty() ? "" : ",";
        rate_list += fixed(rate, 0);
    }
    std::vector<double> sorted = target.rates;
    std::sort(sorted.begin(), sorted.end());
    line.add("rate", fixed(sorted[sorted.size() / 2], 0))
        .add("rates", rate_list)
        .add("p50_us", percentile(target.micros, 0.50))
        .add("p99_us", percentile(target.micros, 0.99))
        .add("ok", target.ok)
        .add("failed", target.failed)
        .add("reps", target.rates.size());
}

// A timed scenario's result: its phases' rates, and what they kept in flight for how long.
void add_rates(const Args& args, Line& line, Target& target) {
    line.add("status", "ok");
    add_phase_rates(line, target);
    line.add("concurrency", args.count("concurrency", 16))
        .add("duration_s", args.number("duration", 3));
}

Endpoint endpoint_to(const Args& args, std::uint16_t port) {
    Endpoint endpoint;
    endpoint.target.sin_family = AF_INET;
    endpoint.target.sin_port = htons(port);
    const std::string host = args.text("host", "127.0.0.1");
    if (::inet_pton(AF_INET, host.c_str(), &endpoint.target.sin_addr) != 1) {
        throw std::invalid_argument("bad --host " + host);
    }
    return endpoint;
}

Endpoint endpoint_from(const Args& args) {
    return endpoint_to(args, static_cast<std::uint16_t>(args.count("port", 0)));
}

// --port P1,P2,...: the daemons a timed scenario compares; --floor-port P: a floor server to
// measure alongside them.
std::vector<Target> targets_from(const Args& args) {
    std::vector<Target> targets;
    const auto add = [&](const std::string& list, bool floor) {
        std::istringstream ports(list);
        std::string port;
        while (std::getline(ports, port, ',')) {
            Target target;
            target.port = static_cast<std::uint16_t>(std::stoul(port));
            target.endpoint = endpoint_to(args, target.port);
            target.floor = floor;
            targets.push_back(std::move(target));
        }
    };
    add(args.text("port", ""), false);
    add(args.text("floor-port", ""), true);
    if (targets.empty()) {
        throw std::invalid_argument("--port is required");
    }
    return targets;
}

std::string default_prefix() {
    return "b" + std::to_string(::getpid()) + "_";
}

// One NAMES request; the names it lists (empty if the daemon did not answer).
std::unordered_set<std::string> fetch_names(const Endpoint& endpoint, milliseconds timeout) {
    std::unordered_set<std::string> names;
    RequestLoop loop(endpoint, 1, timeout);
    bool sent = false;
    loop.run(
        [&](Request& request) {
            request.bytes = names_request;
            return !std::exchange(sent, true);
        },
        [&](const Response& response) {
            if (response.status == Status::ok) {
                names = parse_names(response.reply);
            }
        },
        Clock::now() + timeout + milliseconds(100));
    return names;
}

std::size_t count_listed(const std::unordered_set<std::string>& listed,
                         const std::vector<std::string>& names) {
    return static_cast<std::size_t>(
        std::count_if(names.begin(), names.end(),
                      [&](const std::string& name) { return listed.contains(name); }));
}

// How many of names PORT_PLEASE2 finds.
std::size_t count_found(const Endpoint& endpoint, const std::vector<std::string>& names) {
    RequestLoop loop(endpoint, 16, milliseconds(2000));
    std::size_t issued = 0;
    std::size_t found = 0;
    loop.run(
        [&](Request& request) {
            if (issued == names.size()) {
                return false;
            }
            request.bytes = port_please2_request(names[issued++]);
            return true;
        },
        [&](const Response& response) {
            found += response.status == Status::ok && port2_found(response.reply) ? 1 : 0;
        },
        Clock::now() + std::chrono::minutes(2));
    return found;
}

std::size_t proc_field_kib(int pid, const std::string& field) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string key;
    std::size_t value = 0;
    while (status >> key) {
        if (key == field + ":") {
            status >> value;
            return value;
        }
    }
    return 0;
}

// The daemon's soft RLIMIT_NOFILE, from /proc/PID/limits.
std::size_t fd_limit_of(int pid) {
    std::ifstream limits("/proc/" + std::to_string(pid) + "/limits");
    std::string text;
    while (std::getline(limits, text)) {
        if (text.rfind("Max open files", 0) == 0) {
            std::istringstream fields(text.substr(14));
            std::size_t soft = 0;
            fields >> soft;
            return soft;
        }
    }
    return 0;
}

// ---- Scenarios --------------------------------------------------------------------------------

// Lookups (or NAMES requests) per second with `nodes` registered nodes, on each daemon of
// --port and each floor of --floor-port; one result line per target. Every target gets the same
// sequence of requests.
int scenario_requests(const Args& args, bool names) {
    const std::size_t nodes = args.count("nodes", 1);
    const std::string prefix = args.text("prefix", default_prefix());
    std::vector<Target> targets = targets_from(args);
    std::vector<std::unique_ptr<Registrations>> registrations;
    // Spread the lookups over every registered name.
    std::vector<std::string> requests;
    for (std::size_t i = 0; i < nodes; ++i) {
        requests.push_back(port_please2_request(prefix + std::to_string(i)));
    }
    for (Target& target : targets) {
        auto& regs = *registrations.emplace_back(std::make_unique<Registrations>());
        if (!target.floor) {
            register_nodes(target.endpoint, prefix, nodes, regs);
            if (regs.fds.size() < nodes) {
                close_all(regs.fds);  // the daemon is full: let it serve the others' checks
                continue;
            }
        }
        if (names) {
            target.workload = Workload{
                [](std::size_t, Request& request) { request.bytes = names_request; },
                [nodes](std::string_view reply) {
                    return reply.size() >= 4 && static_cast<std::size_t>(std::count(
                                                    reply.begin(), reply.end(), '\n')) >= nodes;
                }};
            continue;
        }
        target.workload = Workload{[&requests](std::size_t i, Request& request) {
                                       request.bytes = requests[(i * 7919) % requests.size()];
                                   },
                                   port2_found};
    }
    measure_interleaved(args, targets);
    for (std::size_t t = 0; t < targets.size(); ++t) {
        Line line;
        line.add("port", targets[t].port)
            .add("scenario", names ? "names" : "lookups")
            .add("floor", targets[t].floor ? "yes" : "no")
            .add("nodes", nodes)
            .add("held", registrations[t]->names.size());
        if (targets[t].workload) {
            add_rates(args, line, targets[t]);
        } else {
            line.add("status", "unsupported").add("why", registrations[t]->failure);
        }
    }
    return 0;
}

// Registration churn on each daemon of --port: register a fresh name, read the reply, close
// (which unregisters it).
int scenario_churn(const Args& args) {
    std::vector<Target> targets = targets_from(args);
    const std::string prefix = args.text("prefix", default_prefix());
    for (Target& target : targets) {
        target.workload =
            Workload{[&prefix, counter = std::size_t{0}](std::size_t, Request& request) mutable {
                         request.bytes = alive2_request(prefix + std::to_string(counter++), 20000);
                         request.reply_size = alive2_reply_size;
                     },
                     registered};
    }
    measure_interleaved(args, targets);
    for (Target& target : targets) {
        Line line;
        line.add("port", target.port).add("scenario", "churn");
        add_rates(args, line, target);
    }
    return 0;
}

// ---- Registration storm ----------------------------------------------------------------------

// Opens count connections spread over the endpoint's sources, in batches that the server has
// time to accept (a full accept queue drops connection attempts, which are retried only a second
// later), and keeps those that are connected and not closed by the server.
std::vector<int> open_connected(const Endpoint& endpoint, std::size_t count) {
    constexpr std::size_t batch = 500;
    std::vector<int> fds = open_idle_connections(endpoint, count);
    std::vector<int> connected;
    connected.reserve(fds.size());
    for (std::size_t first = 0; first < fds.size(); first += batch) {
        const std::size_t n = std::min(batch, fds.size() - first);
        std::vector<pollfd> polls(n);
        for (std::size_t i = 0; i < n; ++i) {
            polls[i] = pollfd{fds[first + i], POLLOUT, 0};
        }
        // Every connect has finished (or failed) within a few retries.
        const Clock::time_point give_up = Clock::now() + std::chrono::seconds(10);
        std::size_t pending = n;
        while (pending > 0 && Clock::now() < give_up) {
            ::poll(polls.data(), polls.size(), 100);
            pending = static_cast<std::size_t>(std::count_if(
                polls.begin(), polls.end(), [](const pollfd& p) { return p.revents == 0; }));
        }
        for (const pollfd& p : polls) {
            if (p.revents == POLLOUT) {
                connected.push_back(p.fd);
            } else {
                ::close(p.fd);
            }
        }
        std::this_thread::sleep_for(milliseconds(10));
    }
    // Let the server accept the last batch and close what it will not hold.
    std::this_thread::sleep_for(milliseconds(200));
    std::erase_if(connected, [](int fd) {
        pollfd p{fd, POLLIN | POLLRDHUP, 0};
        if (::poll(&p, 1, 0) == 0) {
            return false;
        }
        ::close(fd);
        return true;
    });
    return connected;
}

struct Storm {
    Registrations regs;
    std::size_t failed = 0;  // connections refused, closed or not answered
    std::vector<std::uint32_t> micros;
    Clock::time_point first_send;
};

// A registration storm: count connections opened beforehand (untimed), then an ALIVE2 on every
// one of them at once, and the replies read as they come. The clock runs from the first send to
// the last reply.
void storm(const Endpoint& endpoint, const std::string& prefix, std::size_t count,
           milliseconds timeout, Storm& out) {
    std::vector<int> fds = open_connected(endpoint, count);
    out.failed = count - fds.size();
    std::vector<std::string> requests;
    requests.reserve(fds.size());
    const int epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd < 0) {
        throw std::system_error(errno, std::generic_category(), "epoll_create1");
    }
    for (std::size_t i = 0; i < fds.size(); ++i) {
        requests.push_back(alive2_request(prefix + std::to_string(i), 20000 + i % 40000));
        // Edge-triggered: one wake-up for the reply, none for the registration held after it.
        epoll_event event{};
        event.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
        event.data.u64 = i;
        ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fds[i], &event);
    }
    std::vector<Clock::time_point> sent(fds.size());
    std::vector<std::uint8_t> done(fds.size(), 0);
    std::size_t open = fds.size();
    std::array<epoll_event, 512> events{};
    std::array<char, 64> reply{};
    // Reads what replies are in; wait_ms: how long to wait for the first.
    const auto collect = [&](int wait_ms) {
        const int n = ::epoll_wait(epoll_fd, events.data(), events.size(), wait_ms);
        for (int e = 0; e < n; ++e) {
            const std::size_t i = events[e].data.u64;
            if (done[i] != 0) {
                continue;
            }
            const ssize_t got = ::recv(fds[i], reply.data(), reply.size(), MSG_DONTWAIT);
            if (got < 0 && errno == EAGAIN) {
                continue;
            }
            done[i] = 1;
            --open;
            // The 6-byte reply comes in one segment on loopback.
            if (got > 0 && registered({reply.data(), static_cast<std::size_t>(got)})) {
                out.micros.push_back(static_cast<std::uint32_t>(
                    duration_cast<microseconds>(Clock::now() - sent[i]).count()));
                out.regs.fds.push_back(fds[i]);
                out.regs.names.push_back(prefix + std::to_string(i));
            } else {
                ++out.failed;
                ::close(fds[i]);
            }
        }
    };
    const Clock::time_point begin = Clock::now();
    out.first_send = begin;
    for (std::size_t i = 0; i < fds.size(); ++i) {
        sent[i] = Clock::now();
        const std::string& request = requests[i];
        if (::send(fds[i], request.data(), request.size(), MSG_NOSIGNAL | MSG_DONTWAIT) !=
            static_cast<ssize_t>(request.size())) {
            done[i] = 1;
            --open;
            ++out.failed;
            ::close(fds[i]);
        }
        if (i % 256 == 255) {
            collect(0);
        }
    }
    const Clock::time_point give_up = Clock::now() + timeout;
    while (open > 0 && Clock::now() < give_up) {
        collect(10);
    }
    out.regs.seconds = std::chrono::duration<double>(Clock::now() - begin).count();
    for (std::size_t i = 0; i < fds.size(); ++i) {
        if (done[i] == 0) {
            ++out.failed;
            ::close(fds[i]);
        }
    }
    out.regs.failure = open > 0 ? "timeout" : out.failed > 0 ? "closed" : "none";
    ::close(epoll_fd);
}

// Waits until a daemon lists none of names (their connections closed, it has unregistered
// them), at most timeout.
void wait_unregistered(const Endpoint& endpoint, const std::vector<std::string>& names,
                       milliseconds timeout) {
    const Clock::time_point give_up = Clock::now() + timeout;
    while (Clock::now() < give_up &&
           count_listed(fetch_names(endpoint, milliseconds(2000)), names) != 0) {
        std::this_thread::sleep_for(milliseconds(20));
    }
}

// --nodes ALIVE2 at once on each daemon of --port and each floor of --floor-port, --reps rounds
// taking turns as the timed scenarios do; the connections come from --sources consecutive
// addresses from --from (the daemon caps the connections that have not registered yet per
// source). A rate: registrations answered / seconds from the first ALIVE2 to the last reply.
int scenario_storm(const Args& args) {
    std::vector<Target> targets = targets_from(args);
    const std::size_t nodes = args.count("nodes", 10000);
    const std::size_t reps = std::max<std::size_t>(1, args.count("reps", 3));
    const milliseconds timeout(args.count("timeout-ms", 30000));
    const std::string prefix = args.text("prefix", default_prefix());
    in_addr source{};
    const std::string from = args.text("from", "127.2.0.1");
    if (::inet_pton(AF_INET, from.c_str(), &source) != 1) {
        throw std::invalid_argument("bad --from " + from);
    }
    std::vector<std::size_t> fewest(targets.size(), nodes);  // registered in the worst round
    std::vector<std::string> why(targets.size(), "none");
    for (Target& target : targets) {
        target.endpoint.source = source;
        target.endpoint.sources = static_cast<std::uint32_t>(args.count("sources", 100));
    }
    for (std::size_t round = 0; round < reps; ++round) {
        for (std::size_t k = 0; k < targets.size(); ++k) {
            const std::size_t t = (round + k) % targets.size();
            Target& target = targets[t];
            Storm result;
            storm(target.endpoint, prefix + std::to_string(round) + "_", nodes, timeout, result);
            const std::size_t held = result.regs.fds.size();
            target.rates.push_back(static_cast<double>(held) / result.regs.seconds);
            target.ok += held;
            target.failed += result.failed;
            target.micros.insert(target.micros.end(), result.micros.begin(), result.micros.end());
            if (held < fewest[t]) {
                fewest[t] = held;
                why[t] = result.regs.failure;
            }
            close_all(result.regs.fds);
            if (!target.floor) {
                wait_unregistered(target.endpoint, result.regs.names, milliseconds(10000));
            }
            // Let the server finish closing before the next one is measured.
            std::this_thread::sleep_for(milliseconds(100));
        }
    }
    for (std::size_t t = 0; t < targets.size(); ++t) {
        Line line;
        line.add("port", targets[t].port)
            .add("scenario", "storm")
            .add("floor", targets[t].floor ? "yes" : "no")
            .add("nodes", nodes)
            .add("held", fewest[t])
            // Not every ALIVE2 was answered: the rate is that of a smaller storm.
            .add("status", fewest[t] < nodes ? "partial" : "ok")
            .add("why", why[t]);
        add_phase_rates(line, targets[t]);
    }
    return 0;
}

// ---- The fleet view's lag --------------------------------------------------------------------

// `epmdx -fleet URL -watch -json` as a subprocess, as an operator runs it: each joined line's
// node name and the time it was read.
class FleetWatcher {
  public:
    FleetWatcher(const std::string& epmdx, const std::string& etcd, const std::string& prefix) {
        int out[2];
        if (::pipe2(out, O_CLOEXEC) != 0) {
            throw std::system_error(errno, std::generic_category(), "pipe2");
        }
        // Built before fork: the child only duplicates descriptors and executes.
        std::vector<std::string> argv = {epmdx,  "-fleet", etcd,    "-fleet_prefix",
                                         prefix, "-json",  "-watch"};
        std::vector<char*> args;
        args.reserve(argv.size() + 1);
        for (std::string& arg : argv) {
            args.push_back(arg.data());
        }
        args.push_back(nullptr);
        pid_ = ::fork();
        if (pid_ < 0) {
            throw std::system_error(errno, std::generic_category(), "fork");
        }
        if (pid_ == 0) {
            ::dup2(out[1], STDOUT_FILENO);
            const int devnull = ::open("/dev/null", O_WRONLY);
            ::dup2(devnull, STDERR_FILENO);
            ::execv(args[0], args.data());
            ::_exit(127);
        }
        ::close(out[1]);
        reader_ = std::thread([this, fd = out[0]] { read_lines(fd); });
    }
    FleetWatcher(const FleetWatcher&) = delete;
    FleetWatcher& operator=(const FleetWatcher&) = delete;
    ~FleetWatcher() {
        ::kill(pid_, SIGTERM);
        ::waitpid(pid_, nullptr, 0);
        reader_.join();  // the pipe's end: the child is gone
    }

    // When the watcher printed name's join, waiting for it until `until`.
    std::optional<Clock::time_point> joined(const std::string& name, Clock::time_point until) {
        std::unique_lock lock(mutex_);
        if (!seen_.wait_until(lock, until, [&] { return joined_.contains(name); })) {
            return std::nullopt;
        }
        return joined_.at(name);
    }

  private:
    void read_lines(int fd) {
        std::string pending;
        std::array<char, 65536> buffer{};
        for (;;) {
            const ssize_t got = ::read(fd, buffer.data(), buffer.size());
            if (got <= 0) {
                break;
            }
            const Clock::time_point now = Clock::now();
            pending.append(buffer.data(), static_cast<std::size_t>(got));
            std::size_t start = 0;
            const std::lock_guard lock(mutex_);
            for (std::size_t end = pending.find('\n'); end != std::string::npos;
                 end = pending.find('\n', start)) {
                const nlohmann::json line =
                    nlohmann::json::parse(pending.substr(start, end - start), nullptr, false);
                if (line.is_object() && line.value("event", "") == "joined") {
                    joined_.emplace(line.value("name", ""), now);
                }
                start = end + 1;
            }
            pending.erase(0, start);
            seen_.notify_all();
        }
        ::close(fd);
    }

    pid_t pid_ = -1;
    std::thread reader_;
    std::mutex mutex_;
    std::condition_variable seen_;
    std::map<std::string, Clock::time_point> joined_;  // guarded by mutex_
};

// -fleet: --singles registrations one at a time, --gap-ms apart, each timed from its ALIVE2 to
// the watcher's joined line (`--watcher` is the epmdx binary, reading `--etcd`); then a burst
// of --burst ALIVE2 at once (from --sources addresses, as the storm), timed from its first send
// to the watcher's line for the last node of it.
int scenario_fleet_lag(const Args& args) {
    Endpoint endpoint = endpoint_from(args);
    const std::string prefix = default_prefix();
    FleetWatcher watcher(args.text("watcher", ""), args.text("etcd", ""),
                         args.text("fleet-prefix", "/epmdx/"));
    Line line;
    line.add("port", args.count("port", 0)).add("scenario", "fleet-lag");
    // The watch is known to be live once it has shown a node that registered after it began.
    const auto ready_by = Clock::now() + std::chrono::seconds(15);
    bool watching = false;
    for (std::size_t probe = 0; !watching && Clock::now() < ready_by; ++probe) {
        Registrations regs;
        register_nodes(endpoint, prefix + "probe" + std::to_string(probe) + "_", 1, regs);
        watching = !regs.names.empty() &&
                   watcher.joined(regs.names.front(), Clock::now() + milliseconds(1000));
    }
    if (!watching) {
        line.add("status", "failed").add("why", "the watcher saw no registration");
        return 1;
    }
    const std::size_t singles = args.count("singles", 200);
    const milliseconds gap(args.count("gap-ms", 10));
    std::vector<std::uint32_t> lags;
    std::vector<int> held;
    for (std::size_t i = 0; i < singles; ++i) {
        const std::string name = prefix + "single" + std::to_string(i);
        Registrations regs;
        const Clock::time_point sent = Clock::now();
        register_nodes(endpoint, name, 1, regs);  // the node's name: name + "0"
        if (regs.names.empty()) {
            continue;
        }
        if (const auto seen = watcher.joined(regs.names.front(), sent + std::chrono::seconds(5))) {
            lags.push_back(
                static_cast<std::uint32_t>(duration_cast<microseconds>(*seen - sent).count()));
        }
        held.insert(held.end(), regs.fds.begin(), regs.fds.end());
        regs.fds.clear();
        std::this_thread::sleep_for(gap);
    }
    in_addr source{};
    ::inet_pton(AF_INET, args.text("from", "127.2.0.1").c_str(), &source);
    endpoint.source = source;
    endpoint.sources = static_cast<std::uint32_t>(args.count("sources", 100));
    Storm burst;
    storm(endpoint, prefix + "burst_", args.count("burst", 10000), milliseconds(30000), burst);
    bool burst_seen = !burst.regs.names.empty();
    Clock::time_point last_seen = burst.first_send;
    const Clock::time_point give_up = Clock::now() + std::chrono::seconds(30);
    for (const std::string& name : burst.regs.names) {
        const auto seen = watcher.joined(name, give_up);
        if (!seen) {
            burst_seen = false;
            break;
        }
        last_seen = std::max(last_seen, *seen);
    }
    const auto ms = [](double micros) { return fixed(micros / 1000.0, 2); };
    std::vector<std::uint32_t> sorted = lags;
    line.add("status", lags.size() == singles && burst_seen ? "ok" : "partial")
        .add("singles", singles)
        .add("seen", lags.size())
        .add("lag_p50_ms", lags.empty() ? std::string("none") : ms(percentile(sorted, 0.50)))
        .add("lag_p99_ms", lags.empty() ? std::string("none") : ms(percentile(sorted, 0.99)))
        .add("lag_max_ms", lags.empty() ? std::string("none") : ms(percentile(sorted, 1.0)))
        .add("burst", burst.regs.names.size())
        .add("burst_ms",
             burst_seen
                 ? fixed(std::chrono::duration<double, std::milli>(last_seen - burst.first_send)
                             .count(),
                         0)
                 : std::string("none"));
    close_all(held);
    return 0;
}

// Registers until a refusal or the daemon's descriptor limit minus 2%, measures the daemon's
// resident memory per registration, then checks every node with NAMES and PORT_PLEASE2.
int scenario_capacity(const Args& args, std::size_t own_fd_limit) {
    const Endpoint endpoint = endpoint_from(args);
    const int pid = static_cast<int>(args.count("pid", 0));
    const std::size_t daemon_limit = fd_limit_of(pid);
    std::size_t target = args.count("target", daemon_limit - daemon_limit / 50);
    // Room for the verification lookups and the in-flight registrations in this process.
    const std::size_t own_room = own_fd_limit > 200 ? own_fd_limit - 200 : 0;
    const bool capped = target > own_room;
    target = std::min(target, own_room);
    const std::size_t rss_before = proc_field_kib(pid, "VmRSS");
    Registrations regs;
    register_nodes(endpoint, args.text("prefix", default_prefix()), target, regs);
    const std::size_t rss_after = proc_field_kib(pid, "VmRSS");
    const std::size_t held = regs.fds.size();
    const auto listed = count_listed(fetch_names(endpoint, milliseconds(5000)), regs.names);
    const std::size_t found = count_found(endpoint, regs.names);
    const double per_registration =
        held == 0 ? 0.0
                  : (static_cast<double>(rss_after) - static_cast<double>(rss_before)) * 1024.0 /
                        static_cast<double>(held);
    Line line;
    line.add("port", args.count("port", 0))
        .add("scenario", "capacity")
        .add("status", "ok")
        .add("daemon_fd_limit", daemon_limit)
        .add("target", target)
        .add("target_capped_by_loadgen", capped ? "yes" : "no")
        .add("held", held)
        .add("stopped_by", regs.failure)
        .add("register_s", fixed(regs.seconds, 2))
        .add("listed", listed)
        .add("found", found)
        .add("rss_before_kib", rss_before)
        .add("rss_after_kib", rss_after)
        .add("bytes_per_registration", fixed(per_registration, 0));
    return 0;
}

// Lookups from 127.0.0.1 while another local address holds `flood` idle connections.
int scenario_flood(const Args& args) {
    const Endpoint endpoint = endpoint_from(args);
    const std::size_t nodes = args.count("nodes", 100);
    Registrations regs;
    register_nodes(endpoint, args.text("prefix", default_prefix()), nodes, regs);
    Line line;
    line.add("port", args.count("port", 0))
        .add("scenario", "flood")
        .add("nodes", nodes)
        .add("held", regs.fds.size());
    if (regs.fds.empty()) {
        line.add("status", "unsupported").add("why", regs.failure);
        return 0;
    }
    Endpoint flooder = endpoint;
    in_addr source{};
    const std::string from = args.text("from", "127.0.0.2");
    if (::inet_pton(AF_INET, from.c_str(), &source) != 1) {
        throw std::invalid_argument("bad --from " + from);
    }
    flooder.source = source;
    std::vector<int> flood = open_idle_connections(flooder, args.count("flood", 15000));
    const std::size_t flood_opened = flood.size();
    // Let the handshakes complete and the daemon react before measuring.
    std::this_thread::sleep_for(milliseconds(args.count("settle-ms", 500)));

    std::vector<std::string> requests;
    for (const std::string& name : regs.names) {
        requests.push_back(port_please2_request(name));
    }
    Measurement m = measure(endpoint, args.count("concurrency", 16),
                            milliseconds(args.count("timeout-ms", 1000)),
                            std::chrono::duration<double>(args.number("duration", 3)),
                            Workload{[&](std::size_t i, Request& request) {
                                         request.bytes = requests[(i * 7919) % requests.size()];
                                     },
                                     port2_found});
    const std::size_t flood_open = count_open(flood);
    const std::size_t registrations_open = count_open(regs.fds);
    close_all(flood);
    std::this_thread::sleep_for(milliseconds(300));
    const std::size_t listed = count_listed(fetch_names(endpoint, milliseconds(3000)), regs.names);
    const std::size_t total = m.ok + m.failed;
    line.add("status", "ok")
        .add("success_pct", fixed(total ? 100.0 * m.ok / total : 0.0, 2))
        .add("rate", fixed(m.ok / m.seconds, 0))
        .add("p50_us", percentile(m.micros, 0.50))
        .add("p99_us", percentile(m.micros, 0.99))
        .add("ok", m.ok)
        .add("failed", m.failed)
        .add("flood_opened", flood_opened)
        .add("flood_open_at_end", flood_open)
        .add("registrations_open", registrations_open)
        .add("listed_after", listed);
    return 0;
}

// One PORT_PLEASE2 lookup of --name every --interval-ms (one connection each, 1 s to answer)
// for --duration seconds, while bench/run.sh restarts the daemon under it: how many failed,
// from the first failure's start to the last one's end, and the slowest answer.
int scenario_restart_lookups(const Args& args) {
    const Endpoint endpoint = endpoint_from(args);
    const std::string request = port_please2_request(args.text("name", ""));
    const milliseconds interval(args.count("interval-ms", 10));
    const auto duration =
        duration_cast<Clock::duration>(std::chrono::duration<double>(args.number("duration", 5)));
    const Clock::time_point begin = Clock::now();
    std::size_t ok = 0;
    std::size_t failed = 0;
    std::optional<Clock::time_point> first_failure;
    Clock::time_point last_failure{};
    Clock::duration slowest{};
    for (Clock::time_point next = begin; next < begin + duration; next += interval) {
        std::this_thread::sleep_until(next);
        const Clock::time_point sent = Clock::now();
        bool found = false;
        bool issued = false;
        RequestLoop loop(endpoint, 1, milliseconds(1000));
        loop.run(
            [&](Request& r) {
                r.bytes = request;
                return !std::exchange(issued, true);
            },
            [&](const Response& r) { found = r.status == Status::ok && port2_found(r.reply); },
            sent + milliseconds(1100));
        const Clock::time_point answered = Clock::now();
        if (found) {
            ++ok;
            slowest = std::max(slowest, answered - sent);
        } else {
            ++failed;
            first_failure = first_failure.value_or(sent);
            last_failure = answered;
        }
        // After a slow lookup, go on at the interval instead of catching up in a burst.
        next = std::max(next, answered - interval);
    }
    const auto ms = [](Clock::duration d) { return duration_cast<milliseconds>(d).count(); };
    Line line;
    line.add("port", args.count("port", 0))
        .add("scenario", "restart-lookups")
        .add("status", "ok")
        .add("lookups", ok + failed)
        .add("failed", failed)
        .add("failed_for_ms", first_failure ? ms(last_failure - *first_failure) : 0)
        .add("slowest_ms", ms(slowest))
        .add("interval_ms", interval.count());
    return 0;
}

// The start of the process's stack (/proc/PID/stat field 28): placed anew by every execve.
std::string stack_start_of(int pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    // Field 3 (the state) is the first after the command name, which ends with the last ')'.
    std::istringstream after_name(text.substr(text.rfind(')') + 1));
    const std::vector<std::string> fields{std::istream_iterator<std::string>(after_name),
                                          std::istream_iterator<std::string>()};
    return fields.size() > 28 - 3 ? fields[28 - 3] : std::string();
}

// Registers --nodes nodes, sends SIGHUP to --pid (epmdx re-executes itself in place, keeping
// its listeners and registrations, A-RESTART) and asks NAMES back to back for --window seconds.
// restart_ms: from the signal to the answer that ends the longest wait between two answers (the
// first answer of the new process image); every answer must list every node.
int scenario_reexec(const Args& args) {
    const Endpoint endpoint = endpoint_from(args);
    const int pid = static_cast<int>(args.count("pid", 0));
    const std::size_t nodes = args.count("nodes", 10000);
    Registrations regs;
    register_nodes(endpoint, args.text("prefix", default_prefix()), nodes, regs);
    Line line;
    line.add("port", args.count("port", 0))
        .add("scenario", "reexec")
        .add("nodes", nodes)
        .add("held", regs.fds.size());
    if (regs.fds.size() < nodes) {
        line.add("status", "unsupported").add("why", regs.failure);
        return 0;
    }
    const auto complete = [nodes](std::string_view reply) {
        return reply.size() >= 4 &&
               static_cast<std::size_t>(std::count(reply.begin(), reply.end(), '\n')) >= nodes;
    };
    const std::string stack_before = stack_start_of(pid);
    const Clock::time_point signalled = Clock::now();
    if (pid <= 0 || ::kill(pid, SIGHUP) != 0) {
        throw std::runtime_error("cannot send SIGHUP to --pid " + std::to_string(pid));
    }
    const Clock::time_point end =
        signalled +
        duration_cast<Clock::duration>(std::chrono::duration<double>(args.number("window", 2)));
    Clock::time_point previous = signalled;
    Clock::duration longest_gap{};
    Clock::time_point serving_again = signalled;
    std::size_t answers = 0;
    std::size_t incomplete = 0;
    std::size_t failed = 0;
    while (Clock::now() < end) {
        bool issued = false;
        bool answered = false;
        RequestLoop loop(endpoint, 1, milliseconds(2000));
        loop.run(
            [&](Request& r) {
                r.bytes = names_request;
                return !std::exchange(issued, true);
            },
            [&](const Response& r) {
                answered = r.status == Status::ok && r.reply.size() >= 4;
                incomplete += answered && !complete(r.reply) ? 1 : 0;
            },
            Clock::now() + milliseconds(2100));
        const Clock::time_point now = Clock::now();
        if (!answered) {
            ++failed;
            continue;
        }
        ++answers;
        if (now - previous > longest_gap) {
            longest_gap = now - previous;
            serving_again = now;
        }
        previous = now;
    }
    const auto ms = [](Clock::duration d) {
        return fixed(std::chrono::duration<double, std::milli>(d).count(), 1);
    };
    const std::string stack_after = stack_start_of(pid);
    line.add("status", "ok")
        .add("restart_ms", answers == 0 ? std::string("none") : ms(serving_again - signalled))
        .add("longest_gap_ms", ms(longest_gap))
        .add("answers", answers)
        .add("incomplete", incomplete)
        .add("failed", failed)
        .add("reexecuted", !stack_after.empty() && stack_after != stack_before ? "yes" : "no")
        .add("registrations_open", count_open(regs.fds))
        .add("listed_after", count_listed(fetch_names(endpoint, milliseconds(5000)), regs.names));
    return 0;
}

// Waits until the daemon answers NAMES (listing at most --max-nodes nodes, if given: a daemon
// still closing the previous scenario's registrations is not ready). Exit 1 on --timeout-ms.
int scenario_ping(const Args& args) {
    const Endpoint endpoint = endpoint_from(args);
    const std::size_t max_nodes = args.count("max-nodes", SIZE_MAX);
    const Clock::time_point deadline = Clock::now() + milliseconds(args.count("timeout-ms", 5000));
    while (Clock::now() < deadline) {
        RequestLoop loop(endpoint, 1, milliseconds(500));
        bool sent = false;
        bool ready = false;
        loop.run(
            [&](Request& request) {
                request.bytes = names_request;
                return !std::exchange(sent, true);
            },
            [&](const Response& r) {
                ready = r.status == Status::ok && r.reply.size() >= 4 &&
                        parse_names(r.reply).size() <= max_nodes;
            },
            Clock::now() + milliseconds(600));
        if (ready) {
            return 0;
        }
        std::this_thread::sleep_for(milliseconds(50));
    }
    return 1;
}

// Prints a TCP port that is free on 127.0.0.1 right now.
int scenario_free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
        return 1;
    }
    std::cout << ntohs(address.sin_port) << std::endl;
    ::close(fd);
    return 0;
}

int run(int argc, char** argv) {
    if (argc < 2) {
        std::cerr
            << "usage: epmdx-loadgen "
               "lookups|names|churn|storm|capacity|flood|restart-lookups|reexec|ping|free-port "
               "--port P [--nodes N] [--concurrency C] [--duration S] [--reps R] ...\n";
        return 2;
    }
    const std::string scenario = argv[1];
    const Args args(argc, argv);
    const std::size_t own_fd_limit = raise_fd_limit();
    if (scenario == "lookups" || scenario == "names") {
        return scenario_requests(args, scenario == "names");
    }
    if (scenario == "churn") {
        return scenario_churn(args);
    }
    if (scenario == "storm") {
        return scenario_storm(args);
    }
    if (scenario == "capacity") {
        return scenario_capacity(args, own_fd_limit);
    }
    if (scenario == "flood") {
        return scenario_flood(args);
    }
    if (scenario == "restart-lookups") {
        return scenario_restart_lookups(args);
    }
    if (scenario == "reexec") {
        return scenario_reexec(args);
    }
    if (scenario == "fleet-lag") {
        return scenario_fleet_lag(args);
    }
    if (scenario == "ping") {
        return scenario_ping(args);
    }
    if (scenario == "free-port") {
        return scenario_free_port();
    }
    std::cerr << "epmdx-loadgen: unknown scenario " << scenario << "\n";
    return 2;
}

}  // namespace
}  // namespace epmdx::bench

int main(int argc, char** argv) {
    try {
        return epmdx::bench::run(argc, argv);
    } catch (const std::exception& error) {
        std::cerr << "epmdx-loadgen: " << error.what() << "\n";
        return 2;
    }
}
