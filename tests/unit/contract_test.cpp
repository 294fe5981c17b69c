#include "runtime/contract/contract.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "cohort/errors.hpp"

namespace cohort::contract {
namespace {

struct FakeEnv {
  std::map<std::string, std::string> vars;
  Lookup lookup() const {
    return [this](const char* name) -> const char* {
      auto it = vars.find(name);
      return it == vars.end() ? nullptr : it->second.c_str();
    };
  }
};

FakeEnv full() {
  return FakeEnv{{{kRank, "2"}, {kSize, "4"}, {kJob, "00000000deadbeef"}, {kSegmentFd, "5"}}};
}

std::string error_of(const FakeEnv& env) {
  try {
    (void)parse(env.lookup());
  } catch (const ContractError& e) {
    return e.what();
  }
  return "";
}

TEST(Contract, NoVariablesMeansSingleton) { EXPECT_FALSE(parse(FakeEnv{}.lookup()).has_value()); }

TEST(Contract, ParsesAFullSet) {
  FakeEnv env = full();
  env.vars[kOversubscribed] = "1";
  env.vars[kCpus] = "0-3";
  auto info = parse(env.lookup());
  ASSERT_TRUE(info);
  EXPECT_EQ(info->rank, 2);
  EXPECT_EQ(info->size, 4);
  EXPECT_EQ(info->job, 0xdeadbeefULL);
  EXPECT_EQ(info->segment_fd, 5);
  EXPECT_TRUE(info->oversubscribed);
  EXPECT_EQ(info->cpus, "0-3");
}

TEST(Contract, RoundTripsThroughFormat) {
  LaunchInfo in{3, 7, 0x0123456789abcdefULL, 9, true, "1"};
  std::map<std::string, std::string> vars;
  for (auto& [k, v] : format(in)) vars[k] = v;
  EXPECT_EQ(vars[kJob], "0123456789abcdef");
  auto out = parse(FakeEnv{vars}.lookup());
  ASSERT_TRUE(out);
  EXPECT_EQ(out->rank, 3);
  EXPECT_EQ(out->size, 7);
  EXPECT_EQ(out->job, in.job);
  EXPECT_EQ(out->segment_fd, 9);
  EXPECT_TRUE(out->oversubscribed);
}

TEST(Contract, PartialSetNamesTheMissingVariable) {
  for (const char* missing : {kRank, kSize, kJob, kSegmentFd}) {
    FakeEnv env = full();
    env.vars.erase(missing);
    std::string msg = error_of(env);
    EXPECT_NE(msg.find(missing), std::string::npos) << msg;
    EXPECT_NE(msg.find("missing"), std::string::npos) << msg;
  }
}

TEST(Contract, MalformedValuesNameTheVariable) {
  struct Case {
    const char* name;
    const char* value;
  } cases[] = {{kRank, "x"},  {kRank, "-1"},         {kRank, "4"}, {kSize, "0"},
               {kSize, "3 "}, {kJob, "deadbeef"},    {kJob, "zz00000000000000"},
               {kSegmentFd, ""}, {kOversubscribed, "2"}};
  for (const auto& c : cases) {
    FakeEnv env = full();
    env.vars[c.name] = c.value;
    std::string msg = error_of(env);
    EXPECT_NE(msg.find(c.name), std::string::npos) << c.name << "=" << c.value << ": " << msg;
  }
}

}  // namespace
}  // namespace cohort::contract
