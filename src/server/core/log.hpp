// SPDX-License-Identifier: Apache-2.0
// The daemon's log, in the reference's format: "epmd: <ctime>: <message>\r\n" on stderr in the
// foreground, syslog(LOG_ERR, "epmd: %s") when daemonized. A message is written when its level is
// at most the debug level (-d count); level 0 is always written.
#pragma once

#include <chrono>
#include <cstdarg>
#include <string_view>

namespace epmdx::server {

class Logger {
  public:
    explicit Logger(int debug_level) : level_(debug_level) {}

    // From now on write to syslog instead of stderr (after daemonizing).
    void use_syslog();
    bool uses_syslog() const { return syslog_; }

    bool enabled(int level) const { return level <= level_; }

    [[gnu::format(printf, 3, 4)]] void printf(int level, const char* format, ...);
    // Appends ": <strerror(errno_value)>" like perror.
    [[gnu::format(printf, 4, 5)]] void perror(int level, int errno_value, const char* format, ...);
    // Level >= 2: hex dump of bytes read or written.
    void dump(std::string_view what, std::string_view bytes);

  private:
    void vwrite(int level, const char* suffix, const char* format, va_list args);

    int level_;
    bool syslog_ = false;
};

// Lets a message through at most once per interval; counts what it held back.
class RateLimit {
  public:
    explicit RateLimit(std::chrono::steady_clock::duration interval) : interval_(interval) {}
    // True if a message may be written now; note() then says how many were held back since
    // the last one ("" if none), to append to it.
    bool allow() { return allow(std::chrono::steady_clock::now()); }
    // The same at a given time (for tests).
    bool allow(std::chrono::steady_clock::time_point now);
    const char* note() const { return note_; }

  private:
    std::chrono::steady_clock::duration interval_;
    std::chrono::steady_clock::time_point next_{};
    unsigned long suppressed_ = 0;
    char note_[64] = "";
};

}  // namespace epmdx::server
