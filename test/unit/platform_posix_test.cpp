// SPDX-License-Identifier: Apache-2.0
// The platform layer's POSIX fallback: what it refuses, and what it leaves out
// (platform_test.cpp has what it shares with the Linux implementation).
#include <gtest/gtest.h>
#include <sys/select.h>

#include <string>

#include "platform/platform.hpp"

namespace epmdx::platform {
namespace {

constexpr std::string_view refusal =
    "a portable build (EPMDX_PORTABLE) has no restart that keeps registrations (Linux only)";

TEST(PlatformPosix, NoRestartThatKeepsRegistrations) {
    std::string error;
    EXPECT_EQ(seal_bytes("state", error), -1);
    EXPECT_EQ(error, refusal);
    error.clear();
    EXPECT_FALSE(read_sealed_bytes(0, 100, error));
    EXPECT_EQ(error, refusal);
    error.clear();
    EXPECT_FALSE(own_command_line(error));
    EXPECT_EQ(error, refusal);
}

TEST(PlatformPosix, SelectOnLinuxWatchesDescriptorsBelowFdSetsize) {
#ifdef __linux__
    EXPECT_EQ(reactor_descriptor_limit(), FD_SETSIZE);
#else
    EXPECT_EQ(reactor_descriptor_limit(), std::nullopt);  // kqueue
#endif
}

TEST(PlatformPosix, ProcessStatsLeaveOutWhatOnlyProcTells) {
    const ProcessStats stats = process_stats();
    EXPECT_FALSE(stats.open_fds);
    EXPECT_FALSE(stats.resident_memory_bytes);
    EXPECT_FALSE(stats.virtual_memory_bytes);
}

}  // namespace
}  // namespace epmdx::platform
