// SPDX-License-Identifier: Apache-2.0
#include "server/core/log.hpp"

#include <syslog.h>

#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>

namespace epmdx::server {

void Logger::use_syslog() {
    syslog_ = true;
    ::openlog("epmd", LOG_PID, LOG_DAEMON);
}

void Logger::printf(int level, const char* format, ...) {
    va_list args;
    va_start(args, format);
    vwrite(level, nullptr, format, args);
    va_end(args);
}

void Logger::perror(int level, int errno_value, const char* format, ...) {
    va_list args;
    va_start(args, format);
    vwrite(level, std::strerror(errno_value), format, args);
    va_end(args);
}

void Logger::vwrite(int level, const char* suffix, const char* format, va_list args) {
    if (!enabled(level)) {
        return;
    }
    char message[2048];
    (void)std::vsnprintf(message, sizeof message, format, args);
    if (syslog_) {
        if (suffix) {
            ::syslog(LOG_ERR, "epmd: %s: %s", message, suffix);
        } else {
            ::syslog(LOG_ERR, "epmd: %s", message);
        }
        return;
    }
    const std::time_t now = std::time(nullptr);
    char stamp[64];
    ::ctime_r(&now, stamp);
    stamp[std::strcspn(stamp, "\n")] = '\0';
    // One fprintf per line so concurrent writers to the same terminal do not interleave.
    (void)std::fprintf(stderr, "epmd: %s: %s%s%s\r\n", stamp, message, suffix ? ": " : "",
                       suffix ? suffix : "");
}

void Logger::dump(std::string_view what, std::string_view bytes) {
    if (!enabled(2)) {
        return;
    }
    std::string text;
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        char cell[4];
        (void)std::snprintf(cell, sizeof cell, "%02x ", static_cast<unsigned char>(bytes[i]));
        text += cell;
    }
    printf(2, "%.*s (%zu bytes): %s", static_cast<int>(what.size()), what.data(), bytes.size(),
           text.c_str());
}

bool RateLimit::allow(std::chrono::steady_clock::time_point now) {
    if (now < next_) {
        ++suppressed_;
        return false;
    }
    next_ = now + interval_;
    note_[0] = '\0';
    if (suppressed_ > 0) {
        (void)std::snprintf(note_, sizeof note_, " (%lu similar messages suppressed)", suppressed_);
    }
    suppressed_ = 0;
    return true;
}

}  // namespace epmdx::server
