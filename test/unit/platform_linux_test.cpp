// SPDX-License-Identifier: Apache-2.0
// The platform layer's Linux implementation: what only it gives (platform_test.cpp has the
// rest).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "platform/platform.hpp"

namespace epmdx::platform {
namespace {

TEST(PlatformLinux, SealedBytesReadBackAndCannotBeChanged) {
    std::string error;
    const int fd = seal_bytes("state", error);
    ASSERT_GE(fd, 0) << error;
    EXPECT_EQ(::write(fd, "x", 1), -1);  // sealed against writing
    const auto bytes = read_sealed_bytes(fd, 100, error);
    ASSERT_TRUE(bytes) << error;
    EXPECT_EQ(std::string(bytes->begin(), bytes->end()), "state");
    EXPECT_FALSE(read_sealed_bytes(fd, 4, error));
    EXPECT_EQ(error, "the memfd holds 5 bytes, too many");
    ::close(fd);
    const int file = ::open("/dev/null", O_RDONLY);
    EXPECT_FALSE(read_sealed_bytes(file, 100, error));
    EXPECT_EQ(error, "not a memfd");
    ::close(file);
}

TEST(PlatformLinux, OwnCommandLineIsThisTestsBinaryAndArguments) {
    std::string error;
    const auto command = own_command_line(error);
    ASSERT_TRUE(command) << error;
    EXPECT_TRUE(command->executable.ends_with("/unit_platform_test")) << command->executable;
    ASSERT_FALSE(command->argv.empty());
    EXPECT_TRUE(command->argv[0].ends_with("unit_platform_test")) << command->argv[0];
}

TEST(PlatformLinux, EpollWatchesAnyNumberOfDescriptors) {
    EXPECT_EQ(reactor_descriptor_limit(), std::nullopt);
}

TEST(PlatformLinux, ProcessStatsHaveEveryField) {
    const ProcessStats stats = process_stats();
    ASSERT_TRUE(stats.open_fds && stats.resident_memory_bytes && stats.virtual_memory_bytes);
    EXPECT_GE(*stats.open_fds, 3u);
    EXPECT_GT(*stats.resident_memory_bytes, 0u);
    EXPECT_GE(*stats.virtual_memory_bytes, *stats.resident_memory_bytes);
}

}  // namespace
}  // namespace epmdx::platform
