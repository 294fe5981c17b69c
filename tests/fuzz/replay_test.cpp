// Replays every fuzz target's committed seed corpus (tests/fuzz/corpus/<target>/) and crash
// reproducers (tests/fuzz/regressions/<target>/) in the ordinary builds (g++, ASan+UBSan, TSan),
// so that an input that once crashed keeps being checked everywhere.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_target.hpp"

int cohort_fuzz_frame(const std::uint8_t* data, std::size_t size);
int cohort_fuzz_payload(const std::uint8_t* data, std::size_t size);
int cohort_fuzz_payload_boost(const std::uint8_t* data, std::size_t size);
int cohort_fuzz_pool_frames(const std::uint8_t* data, std::size_t size);
int cohort_fuzz_queue_item(const std::uint8_t* data, std::size_t size);
int cohort_fuzz_spawn_frames(const std::uint8_t* data, std::size_t size);
int cohort_fuzz_contract(const std::uint8_t* data, std::size_t size);

namespace {

namespace fs = std::filesystem;
using Target = int (*)(const std::uint8_t*, std::size_t);

std::size_t replay(const std::string& name, Target target) {
  std::size_t inputs = 0;
  for (const char* kind : {"corpus", "regressions"}) {
    fs::path dir = fs::path(COHORT_FUZZ_DIR) / kind / name;
    if (!fs::is_directory(dir)) continue;
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (!entry.is_regular_file()) continue;
      std::ifstream file(entry.path(), std::ios::binary);
      std::vector<char> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
      SCOPED_TRACE(entry.path().string());
      EXPECT_EQ(target(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()), 0);
      ++inputs;
    }
  }
  return inputs;
}

TEST(FuzzReplay, Frame) { EXPECT_GT(replay("frame", &cohort_fuzz_frame), 0u); }
TEST(FuzzReplay, Payload) { EXPECT_GT(replay("payload", &cohort_fuzz_payload), 0u); }
TEST(FuzzReplay, PayloadBoost) { EXPECT_GT(replay("payload_boost", &cohort_fuzz_payload_boost), 0u); }
TEST(FuzzReplay, PoolFrames) { EXPECT_GT(replay("pool_frames", &cohort_fuzz_pool_frames), 0u); }
TEST(FuzzReplay, QueueItem) { EXPECT_GT(replay("queue_item", &cohort_fuzz_queue_item), 0u); }
TEST(FuzzReplay, SpawnFrames) { EXPECT_GT(replay("spawn_frames", &cohort_fuzz_spawn_frames), 0u); }
TEST(FuzzReplay, Contract) { EXPECT_GT(replay("contract", &cohort_fuzz_contract), 0u); }

}  // namespace
