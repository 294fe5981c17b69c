#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "launcher/options.hpp"

namespace cohort::launcher {
namespace {

struct Parsed {
  ParseResult result;
  std::string out;
  std::string err;
};

Parsed parse(std::vector<std::string> args) {
  args.insert(args.begin(), "cohortrun");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  std::ostringstream out;
  std::ostringstream err;
  ParseResult r = parse_options(static_cast<int>(argv.size()), argv.data(), out, err);
  return {std::move(r), out.str(), err.str()};
}

TEST(Options, DefaultsAndProgramArguments) {
  Parsed p = parse({"prog", "-n", "5", "--tag-output"});
  ASSERT_TRUE(p.result.options) << p.err;
  const Options& o = *p.result.options;
  EXPECT_EQ(o.ranks, 0);
  EXPECT_EQ(o.bind, BindPolicy::automatic);
  EXPECT_FALSE(o.tag_output);  // after PROGRAM: the program's arguments
  EXPECT_EQ(o.command, (std::vector<std::string>{"prog", "-n", "5", "--tag-output"}));
}

TEST(Options, MpirunSpellings) {
  Parsed p = parse({"-np", "4", "--bind-to", "numa", "--map-by", "socket", "--report-bindings",
                    "--tag-output", "--timestamp-output", "--timeout", "2.5", "prog", "-np", "3"});
  ASSERT_TRUE(p.result.options) << p.err;
  const Options& o = *p.result.options;
  EXPECT_EQ(o.ranks, 4);
  EXPECT_EQ(o.bind, BindPolicy::numa);
  EXPECT_EQ(o.map, MapPolicy::package);
  EXPECT_TRUE(o.report_bindings);
  EXPECT_TRUE(o.tag_output);
  EXPECT_TRUE(o.timestamp_output);
  EXPECT_DOUBLE_EQ(o.timeout_seconds, 2.5);
  EXPECT_EQ(o.command, (std::vector<std::string>{"prog", "-np", "3"}));
}

TEST(Options, ExportIsRepeatableAndTakesOneValueEach) {
  Parsed p = parse({"-x", "A=1", "-x", "B", "--export", "C=x=y", "prog", "arg"});
  ASSERT_TRUE(p.result.options) << p.err;
  const Options& o = *p.result.options;
  ASSERT_EQ(o.env.size(), 3u);
  EXPECT_EQ(o.env[0].first, "A");
  EXPECT_EQ(o.env[0].second, "1");
  EXPECT_EQ(o.env[1].first, "B");
  EXPECT_FALSE(o.env[1].second);
  EXPECT_EQ(o.env[2].second, "x=y");
  EXPECT_EQ(o.command, (std::vector<std::string>{"prog", "arg"}));
}

TEST(Options, DoubleDashEndsOptions) {
  Parsed p = parse({"-n", "2", "--", "prog"});
  ASSERT_TRUE(p.result.options) << p.err;
  EXPECT_EQ(p.result.options->command, (std::vector<std::string>{"prog"}));
}

TEST(Options, HelpExitsZeroAndDocumentsExitCodes) {
  Parsed p = parse({"--help"});
  EXPECT_FALSE(p.result.options);
  EXPECT_EQ(p.result.exit_code, 0);
  EXPECT_NE(p.out.find("124"), std::string::npos);
  EXPECT_NE(p.out.find("128+N"), std::string::npos);
  EXPECT_NE(p.out.find("--bind-to"), std::string::npos);
}

void expect_usage_error(std::vector<std::string> args, const std::string& fragment) {
  Parsed p = parse(args);
  EXPECT_FALSE(p.result.options);
  EXPECT_EQ(p.result.exit_code, kExitUsage);
  EXPECT_EQ(p.err.rfind("cohortrun: ", 0), 0u) << p.err;
  EXPECT_NE(p.err.find(fragment), std::string::npos) << p.err;
  EXPECT_NE(p.err.find("usage: cohortrun"), std::string::npos) << p.err;
}

TEST(Options, BadInputIsAUsageError) {
  expect_usage_error({"--frobnicate", "prog"}, "frobnicate");
  expect_usage_error({"-n", "0", "prog"}, "number of ranks");
  expect_usage_error({"-n", "-3", "prog"}, "");
  expect_usage_error({"-n", "abc", "prog"}, "");
  expect_usage_error({"-n", "100000", "prog"}, "number of ranks");
  expect_usage_error({"--bind-to", "hwthread", "prog"}, "unknown binding");
  expect_usage_error({"--map-by", "node", "prog"}, "unknown mapping");
  expect_usage_error({"--timeout", "0", "prog"}, "timeout");
  expect_usage_error({"-x", "=3", "prog"}, "NAME");
  expect_usage_error({"-n", "2"}, "no program");
  expect_usage_error({}, "no program");
}

}  // namespace
}  // namespace cohort::launcher
