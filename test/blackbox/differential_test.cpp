// SPDX-License-Identifier: Apache-2.0
// Differential tests: the same byte sequences go to epmdx and to OTP's epmd, and the transcripts
// of what came back must be equal. Only what has to differ is normalised: the NAMES/DUMP port
// header (each daemon has its own test port), the time-based creation values (compared by their
// relation to the previous one of the same name) and DUMP's fd numbers. The deliberate
// differences (docs/differences.md) are left out here; contract_fixes_test.cpp covers them.
#include <gtest/gtest.h>

#include <functional>
#include <map>

#include "blackbox.hpp"

namespace epmdx::test {
namespace {

// Talks to one daemon and writes down, normalised, everything the daemon says.
class Session {
  public:
    explicit Session(Daemon& daemon) : daemon_(daemon) {}
    const std::vector<std::string>& transcript() const { return transcript_; }

    // One connection: send, then read until the daemon closes.
    void oneshot(std::string_view bytes, const std::string& address = "127.0.0.1",
                 const std::string& source = {}, bool half_close = false) {
        Conn conn = Conn::open(daemon_.port(), address, source);
        send_quietly(conn.fd(), bytes);
        if (half_close) {
            ::shutdown(conn.fd(), SHUT_WR);
        }
        const Outcome out = read_outcome(conn.fd(), 2s);
        note(normalise(out.bytes) + (out.closed ? " <closed>" : " <open>"));
    }

    // A connection kept under a label, for registrations and what happens on them.
    void open(const std::string& label, const std::string& address = "127.0.0.1",
              const std::string& source = {}) {
        conns_.insert_or_assign(label, Conn::open(daemon_.port(), address, source));
    }
    void send(const std::string& label, std::string_view bytes) {
        send_quietly(conns_.at(label).fd(), bytes);
    }
    void read(const std::string& label, std::size_t n) {
        note(normalise(conns_.at(label).read_exact(n, 2s)));
    }
    void closed(const std::string& label) {
        note(label + (conns_.at(label).closed_within(2s) ? " closed" : " open"));
    }
    void open_still(const std::string& label) {
        note(label + (still_open(conns_.at(label).fd(), 100ms) ? " open" : " closed"));
    }
    void close(const std::string& label) { conns_.erase(label); }

    // ALIVE2 on a new connection kept under the node's name; the reply goes through creation().
    void alive2(const Alive2& request, const std::string& name) {
        open(name);
        send(name, request.packet());
        const std::string head = conns_.at(name).read_exact(2, 2s);
        if (head.size() < 2 || head[1] != '\0') {
            const std::size_t rest = head.empty() ? 0 : (head[0] == 'v' ? 4 : 2);
            note(escaped(cat(head, conns_.at(name).read_exact(rest, 2s))));
            return;
        }
        const std::string creation = conns_.at(name).read_exact(head[0] == 'v' ? 4 : 2, 2s);
        note(head[0] == 'v' ? x_creation(name, creation) : creation_1_to_3(name, creation));
    }
    void register_node(const std::string& name, std::uint16_t port, std::uint16_t highest = 6) {
        alive2(Alive2().name(name).port(port).highest(highest), name);
    }
    void drop(const std::string& name) {
        close(name);
        ASSERT_TRUE(wait_unlisted(daemon_.port(), name));
    }
    void exit_code() {
        const auto code = daemon_.process().wait(3s);
        note(code ? cat("exit ", std::to_string(*code)) : "still running");
    }

  private:
    void note(std::string observation) { transcript_.push_back(std::move(observation)); }

    std::string normalise(std::string_view bytes) const {
        std::string out(bytes);
        if (out.size() >= 4 && out.substr(0, 4) == u32(daemon_.port())) {
            out.replace(0, 4, "<port>");
        }
        return escaped(without_fds(out));
    }
    // 32-bit creations start from the clock: only their steps per name are comparable.
    std::string x_creation(const std::string& name, std::string_view bytes) {
        const std::int64_t counter = be32(bytes);
        const auto last = counters_.find(name);
        std::string seen = "v ok ";
        if (last == counters_.end()) {
            const std::int64_t now = unix_now();
            seen +=
                counter >= now - 5 && counter <= now + 2 ? "new (clock)" : "new (not the clock)";
        } else {
            seen += cat("+", std::to_string(counter - last->second));
        }
        counters_[name] = counter;
        return seen;
    }
    // 16-bit creations are counter % 3 + 1 of the bumped per-name counter.
    std::string creation_1_to_3(const std::string& name, std::string_view bytes) {
        const int creation = be16(bytes);
        const auto last = counters_.find(name);
        if (last == counters_.end()) {
            return creation >= 1 && creation <= 3 ? "y ok 1..3" : "y ok out of range";
        }
        ++last->second;
        return last->second % 3 + 1 == creation ? "y ok counter%3+1" : "y ok not counter%3+1";
    }

    Daemon& daemon_;
    std::map<std::string, Conn> conns_;
    std::map<std::string, std::int64_t> counters_;
    std::vector<std::string> transcript_;
};

struct Case {
    std::string label;
    std::function<void(Session&)> script;
    std::vector<std::string> daemon_args = {};
};

std::vector<Case> cases() {
    const auto relaxed = std::vector<std::string>{"-relaxed_command_check"};
    return {
        // Framing.
        {"LenZero", [](Session& s) { s.oneshot(std::string("\0\0", 2)); }},
        {"Len3057", [](Session& s) { s.oneshot(names_of_length(3057)); }},
        {"Len3058", [](Session& s) { s.oneshot(names_of_length(3058)); }},
        {"TruncatedThenEof",
         [](Session& s) { s.oneshot(std::string("\0\x09z", 3) + "abc", "127.0.0.1", {}, true); }},
        {"TrailingBytesInsideNames",
         [](Session& s) {
             s.register_node("a", 5001);
             s.oneshot(std::string("\x00\x03\x6E\x78\x78", 5));
         }},
        {"UnknownCodes",
         [](Session& s) {
             for (const std::string body : {"a", "p", "\xFF", "y", "w", "v", "N"}) {
                 s.oneshot(frame(body + "abc"));
             }
         }},
        // ALIVE2 replies and creations.
        {"Alive2ReplyForms",
         [](Session& s) {
             for (const std::uint16_t hv : {0, 1, 5, 6, 7, 0xFFFF}) {
                 s.alive2(Alive2().highest(hv).name(numbered("hv", hv)), numbered("hv", hv));
             }
         }},
        {"ReRegistrationBumpsTheCounter",
         [](Session& s) {
             s.register_node("a", 5001);
             s.drop("a");
             s.register_node("a", 5001);
             s.drop("a");
             s.register_node("a", 5002, 5);
             s.drop("a");
             s.register_node("a", 5003, 0);
             s.drop("a");
             s.register_node("a", 5004);
             s.oneshot(names_request());
         }},
        {"EmptyNameWithExtra",
         [](Session& s) {
             s.alive2(Alive2().name("").extra("e"), "");
             s.oneshot(names_request());
             s.oneshot(port_please_request(""));
         }},
        {"LargestNameAndExtra",
         [](Session& s) {
             const std::string name = repeat(smiling_imp, 255);
             s.alive2(Alive2().name(name).extra(repeat(std::string("\0\x01", 2), 510)), name);
             s.oneshot(names_request());
         }},
        {"Alive2TrailingBytes",
         [](Session& s) {
             s.alive2(Alive2().name("t").extra("e").trailing("zzz"), "t");
             s.oneshot(port_please_request("t"));
         }},
        {"Alive2Len13", [](Session& s) { s.oneshot(Alive2().name("").packet()); }},
        {"Alive2NlenOverrun", [](Session& s) { s.oneshot(Alive2().name("ab").nlen(9).packet()); }},
        {"Alive2ElenOverrun",
         [](Session& s) { s.oneshot(Alive2().name("ab").extra("e").elen(5).packet()); }},
        {"Alive2NulInName",
         [](Session& s) {
             s.oneshot(Alive2().name("a" + nul + "b").packet());
             s.oneshot(Alive2().name("ab" + nul).packet());
         }},
        {"Alive2BadNames",
         [](Session& s) {
             int i = 0;
             for (const std::string& name :
                  {std::string(1021, 'a'), std::string(256, 'b'), repeat(smiling_imp, 256),
                   std::string("\xC0\xAF"), std::string("\xED\xA0\x80"),
                   std::string("\xF4\x90\x80\x80"), std::string("ab\xE2\x82"), std::string("\x80"),
                   std::string("\xFE")}) {
                 const std::string label = numbered("bad", i);
                 s.alive2(Alive2().name(name).highest(i++ % 2 == 0 ? 6 : 5), label);
                 s.close(label);
             }
             s.oneshot(names_request());
         }},
        {"Alive2ExtraTooLong",
         [](Session& s) {
             s.alive2(Alive2().name("e6").extra(std::string(1021, 'x')), "e6");
             s.alive2(Alive2().name("e5").highest(5).extra(std::string(1021, 'x')), "e5");
             s.alive2(Alive2().name("ok").extra(std::string(1020, 'x')), "ok");
         }},
        {"Alive2Duplicate",
         [](Session& s) {
             s.register_node("dup", 5001);
             s.alive2(Alive2().name("dup").port(5002), "dup2");
             s.close("dup2");
             s.alive2(Alive2().name("dup").port(5003).highest(5), "dup3");
             s.close("dup3");
             s.open_still("dup");
             s.oneshot(names_request());
         }},
        // Registration lifetime.
        {"StrayByteUnregisters",
         [](Session& s) {
             s.register_node("a", 5001);
             s.register_node("b", 5002);
             s.send("a", "?");
             s.closed("a");
             s.oneshot(names_request());
         }},
        {"EofUnregisters",
         [](Session& s) {
             s.register_node("a", 5001);
             s.drop("a");
             s.oneshot(names_request());
             s.oneshot(port_please_request("a"));
         }},
        // PORT_PLEASE2.
        {"PortPleaseFound",
         [](Session& s) {
             s.alive2(Alive2()
                          .name("cnode")
                          .port(0xABCD)
                          .type(72)
                          .protocol(1)
                          .highest(9)
                          .lowest(2)
                          .extra(nul + "x"),
                      "cnode");
             s.oneshot(port_please_request("cnode"));
             s.oneshot(port_please_request("cnode" + nul));
         }},
        {"PortPleaseEmptyExtraAndZeroVersions",
         [](Session& s) {
             s.alive2(Alive2().name("z").highest(0).lowest(0), "z");
             s.oneshot(port_please_request("z"));
         }},
        {"PortPleaseNotFound",
         [](Session& s) {
             s.register_node("Node", 5001);
             for (const std::string name : {"node", "Nod", "Node ", "nobody"}) {
                 s.oneshot(port_please_request(name));
             }
         }},
        {"PortPleaseBadNames",
         [](Session& s) {
             s.register_node("ab", 5001);
             for (const std::string& name :
                  {std::string(), nul, cat("a", nul, "b"), cat("ab", nul, nul),
                   std::string("\xC0\xAF"), std::string("ab\xE2\x82"), std::string(256, 'a')}) {
                 s.oneshot(frame(cat("z", name)));
             }
         }},
        {"PortPlease254CodePoints",
         [](Session& s) {
             const std::string name = repeat(smiling_imp, 254);
             s.register_node(name, 5001);
             s.oneshot(port_please_request(name));
         }},
        // NAMES and DUMP.
        {"NamesEmpty", [](Session& s) { s.oneshot(names_request()); }},
        {"NamesNewestFirst",
         [](Session& s) {
             s.register_node("alpha", 5001);
             s.register_node("beta", 65535);
             s.register_node("gamma", 0);
             s.oneshot(names_request());
         }},
        {"DumpEmpty", [](Session& s) { s.oneshot(dump_request()); }},
        {"DumpActiveAndOld",
         [](Session& s) {
             s.register_node("alpha", 5001);
             s.register_node("old1", 5002);
             s.register_node("beta", 5003);
             s.register_node("old2", 5004);
             s.drop("old2");
             s.drop("old1");
             s.oneshot(dump_request());
             s.oneshot(
                 std::string("\0\x03"
                             "dxx",
                             5));
         }},
        {"DumpAfterReRegistration",
         [](Session& s) {
             s.register_node("a", 5001);
             s.drop("a");
             s.register_node("b", 5002);
             s.drop("b");
             s.register_node("a", 5003);
             s.oneshot(dump_request());
         }},
        // KILL and STOP.
        {"KillRefusedWithNodes",
         [](Session& s) {
             s.register_node("a", 5001);
             s.oneshot(kill_request());
             s.open_still("a");
             s.oneshot(names_request());
         }},
        {"KillWithoutNodes",
         [](Session& s) {
             s.register_node("a", 5001);
             s.drop("a");
             s.oneshot(kill_request());
             s.exit_code();
         }},
        {"KillRelaxed",
         [](Session& s) {
             s.register_node("a", 5001);
             s.oneshot(kill_request());
             s.closed("a");
             s.exit_code();
         },
         relaxed},
        {"StopNotRelaxed",
         [](Session& s) {
             s.register_node("a", 5001);
             s.oneshot(stop_request("a"));
             s.open_still("a");
         }},
        {"StopRelaxed",
         [](Session& s) {
             s.register_node("a", 5001);
             s.register_node("b", 5002);
             s.oneshot(stop_request("a"));
             s.closed("a");
             s.open_still("b");
             s.oneshot(names_request());
             s.oneshot(dump_request());
         },
         relaxed},
        {"StopRelaxedNameUpToNul",
         [](Session& s) {
             s.register_node("a", 5001);
             s.oneshot(stop_request("a" + nul + "zz"));
             s.closed("a");
         },
         relaxed},
        {"StopRelaxedWithoutName",
         [](Session& s) {
             s.register_node("a", 5001);
             s.oneshot(frame("s"));
             s.open_still("a");
         },
         relaxed},
        {"StopThenReRegister",
         [](Session& s) {
             s.register_node("a", 5001);
             s.oneshot(stop_request("a"));
             s.closed("a");
             s.register_node("a", 5002);
             s.oneshot(port_please_request("a"));
         },
         relaxed},
        {"OverIpv6Loopback",
         [](Session& s) {
             s.open("six", "::1");
             s.send("six", alive2_request("six", 5006));
             s.read("six", 2);
             s.oneshot(names_request(), "::1");
             s.oneshot(dump_request(), "::1");
             s.oneshot(port_please_request("six"), "::1");
         }},
        {"FromOther127Addresses",
         [](Session& s) {
             s.open("a", "127.0.0.1", "127.0.0.9");
             s.send("a", alive2_request("a", 5001));
             s.read("a", 2);
             s.oneshot(dump_request(), "127.0.0.1", "127.3.2.1");
             s.oneshot(kill_request(), "127.0.0.1", "127.3.2.1");
         }},
    };
}

// NOLINTNEXTLINE(readability-identifier-naming): the name gtest looks up
void PrintTo(const Case& c, std::ostream* os) {
    *os << c.label;
}

class Differential : public ::testing::TestWithParam<Case> {};

TEST_P(Differential, SameBytesSameReplies) {
    const Case& c = GetParam();
    Daemon otp = Daemon::start(DaemonKind::otp, c.daemon_args);
    Daemon ours = Daemon::start(DaemonKind::epmdx, c.daemon_args);
    Session reference(otp);
    c.script(reference);
    Session candidate(ours);
    c.script(candidate);
    ASSERT_FALSE(reference.transcript().empty());
    EXPECT_EQ(candidate.transcript(), reference.transcript()) << "left: epmdx, right: OTP";
}

INSTANTIATE_TEST_SUITE_P(Cases, Differential, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                             return info.param.label;
                         });

}  // namespace
}  // namespace epmdx::test
