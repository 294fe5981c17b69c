// pool_map under cohort::spawn, where a dying worker must not hang the pool, and cohort::Pool.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cohort/pool.hpp>
#include <cohort/shared.hpp>
#include <cohort/spawn.hpp>

#include <chrono>
#include <numeric>
#include <thread>

namespace {

using namespace std::chrono_literals;

// Waits (sleeping) until `flag` is set, at most 20 s.
void wait_for(cohort::SharedValue<int>& flag) {
  for (int i = 0; i < 20000 && flag.load() == 0; ++i) std::this_thread::sleep_for(1ms);
}

std::vector<int> iota(int n) {
  std::vector<int> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

TEST(PoolSpawn, AWorkerKilledMidPoolIsReportedAndThePoolEnds) {
  auto job = cohort::spawn(3, [](cohort::Communicator& comm) {
    cohort::SharedValue<int> victim_started(comm);
    cohort::PoolOptions o;
    o.chunk_size = 1;
    auto xs = iota(60);
    auto out = cohort::pool_map_outcomes(comm, xs, [&](int x) {
      if (comm.rank() == 2) {  // dies in the middle of its first item
        victim_started.store(1);
        ::kill(::getpid(), SIGKILL);
      }
      wait_for(victim_started);  // the others leave it an item to die on
      return x * 10;
    }, o);
    if (comm.rank() != 0) return std::string("worker");
    std::string lost;
    int ok = 0;
    for (std::size_t i = 0; i < out.size(); ++i) {
      if (out[i].ok()) {
        if (*out[i].value != static_cast<int>(i) * 10) return std::string("wrong value");
        ++ok;
      } else {
        lost += out[i].error + ";";
      }
    }
    return std::to_string(ok) + "|" + lost;
  });
  ASSERT_TRUE(job.join(60s)) << "the pool hung";
  auto codes = job.exit_codes();
  EXPECT_EQ(codes[0], 0);
  EXPECT_EQ(codes[1], 0);
  EXPECT_EQ(codes[2], -SIGKILL);
  // Rank 0's verdict: 59 items computed, exactly one lost, with the reason.
  EXPECT_EQ(job.result<std::string>(0),
            "59|pool worker rank 2 was killed by SIGKILL while running this item;");
  try {
    job.check();
    FAIL() << "rank 2 was killed";
  } catch (const cohort::SpawnError& e) {
    EXPECT_NE(std::string(e.what()).find("rank 2"), std::string::npos);
  }
}

TEST(PoolSpawn, RetryRerunsTheLostItemsOnTheRoot) {
  auto job = cohort::spawn(3, [](cohort::Communicator& comm) {
    cohort::SharedValue<int> victim_started(comm);
    cohort::PoolOptions o;
    o.chunk_size = 1;
    o.retry_lost_items = true;
    auto xs = iota(40);
    auto r = cohort::pool_map(comm, xs, [&](int x) {
      if (comm.rank() == 2) {
        victim_started.store(1);
        ::kill(::getpid(), SIGKILL);
      }
      wait_for(victim_started);
      return x + 1;
    }, o);
    if (comm.rank() != 0) return 0;
    for (int i = 0; i < 40; ++i) {
      if (r[static_cast<std::size_t>(i)] != i + 1) return -1;
    }
    return 40;
  });
  ASSERT_TRUE(job.join(60s)) << "the pool hung";
  EXPECT_EQ(job.process(0).exit_code(), 0);
  EXPECT_EQ(job.process(2).exit_code(), -SIGKILL);
  EXPECT_EQ(job.result<int>(0), 40);
}

TEST(Pool, MapAndApplyAsyncFromAnOrdinaryProgram) {
  cohort::Pool pool(3);
  EXPECT_EQ(pool.processes(), 3);
  auto squares = pool.map(iota(1000), [](int x) { return static_cast<long>(x) * x; });
  ASSERT_EQ(squares.size(), 1000u);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(squares[static_cast<std::size_t>(i)], static_cast<long>(i) * i);
  auto words = pool.map(iota(10), [](int x) { return std::to_string(x); });
  EXPECT_EQ(words[7], "7");
  auto answer = pool.apply_async([] { return 6 * 7; });
  EXPECT_TRUE(answer.wait(30s));
  EXPECT_TRUE(answer.ready());
  EXPECT_EQ(answer.get(), 42);
  auto failing = pool.apply_async([]() -> int { throw std::runtime_error("nope"); });
  EXPECT_THROW((void)failing.get(), cohort::SpawnError);
  EXPECT_THROW((void)pool.map(iota(10), [](int x) {
    if (x == 4) throw std::runtime_error("four");
    return x;
  }), cohort::PoolError);
}

}  // namespace
