// cohortrun's trace and statistics writers (launcher/trace_writer.*, launcher/stats.*) on a
// synthetic trace area: two ranks, one message from rank 0 to rank 1.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "launcher/stats.hpp"
#include "launcher/trace_writer.hpp"
#include "runtime/transport/trace.hpp"

namespace cohort::launcher {
namespace {

using transport::RankTrace;
using transport::TraceEvent;
using transport::TraceKind;

class TwoRanks : public ::testing::Test {
 protected:
  TwoRanks() : memory_(transport::trace_area_bytes(2, 8) / 8 + 1) {
    transport::format_trace_area(area(), 2, 8, 1'000'000);
    RankTrace r0(area(), 0), r1(area(), 1);
    r0.count_send(1, 100);
    r0.record(TraceEvent{1'001'000, 1'002'500, 100, 1, 1, 7, 0,
                         static_cast<std::uint16_t>(TraceKind::send), 0, 0});
    r1.count_receive(100);
    r1.record(TraceEvent{1'000'500, 1'003'000, 100, 1, 0, 7, 0,
                         static_cast<std::uint16_t>(TraceKind::recv), 0, 0});
    runs_.resize(2);
    runs_[0] = RankRun{100, 1'000'000, 2'000'000, 0, 2048, "exited with code 0"};
    runs_[1] = RankRun{101, 1'000'000, 3'000'000, 9, 4096, "killed by SIGKILL"};
  }
  std::span<std::byte> area() {
    return {reinterpret_cast<std::byte*>(memory_.data()), memory_.size() * 8};
  }
  std::vector<std::uint64_t> memory_;
  std::vector<RankRun> runs_;
};

TEST_F(TwoRanks, TraceHasTracksSpansAndOneFlow) {
  std::string json;
  TraceSummary sum = trace_json(area(), TraceJob{"abc", "prog \"x\"", runs_},
                                [&](std::string_view piece) { json += piece; });
  EXPECT_EQ(sum.flows, 1u);
  EXPECT_EQ(sum.dropped, 0u);
  EXPECT_EQ(sum.events, 4u);  // two spans, two process ends (the received mark is not an event)
  EXPECT_NE(json.find(R"("command":"prog \"x\"")"), std::string::npos) << json;
  EXPECT_NE(json.find(R"x("name":"rank 1 (pid 101)")x"), std::string::npos) << json;
  // Times are microseconds since the origin: the send spans 1.000 .. 2.500 us. The flow starts at
  // the send's exact begin and ends on a 1 ns mark at the end of the blocking receive (viewers
  // bind flow events to slices of the same cat and ts); flow events come after every slice.
  EXPECT_NE(json.find(R"("name":"send to 1","cat":"p2p","pid":1,"tid":1,"ts":1.000,"dur":1.500)"),
            std::string::npos) << json;
  EXPECT_NE(json.find(R"("name":"message received","cat":"p2p","pid":1,"tid":2,"ts":2.999,"dur":0.001)"),
            std::string::npos) << json;
  const auto start = json.find(R"({"ph":"s","name":"message","cat":"p2p","id":1,"pid":1,"tid":1,"ts":1.000})");
  EXPECT_NE(start, std::string::npos) << json;
  EXPECT_NE(json.find(R"({"ph":"f","bp":"e","name":"message","cat":"p2p","id":1,"pid":1,"tid":2,"ts":2.999})"),
            std::string::npos) << json;
  EXPECT_GT(start, json.rfind(R"("ph":"X")")) << json;
  // "displayTimeUnit":"ns" made Perfetto versions of 2020-2023 read every "ts" as nanoseconds.
  EXPECT_EQ(json.find("displayTimeUnit"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("name":"killed by SIGKILL")"), std::string::npos) << json;
}

// An isend and a completed irecv are instants, drawn as 1 ns slices; the flow goes from the
// first to the second, at their exact time stamps.
TEST_F(TwoRanks, InstantsCarryTheFlow) {
  RankTrace r1(area(), 1);
  RankTrace r0(area(), 0);
  r0.record(TraceEvent{1'004'000, 1'004'000, 8, 2, 1, 7, 0,
                       static_cast<std::uint16_t>(TraceKind::isend), 0, 0});
  r1.record(TraceEvent{1'005'000, 1'005'000, 8, 2, 0, 7, 0,
                       static_cast<std::uint16_t>(TraceKind::recv_done), 0, 0});
  std::string json;
  TraceSummary sum = trace_json(area(), TraceJob{"abc", "prog", runs_},
                                [&](std::string_view piece) { json += piece; });
  EXPECT_EQ(sum.flows, 2u);
  EXPECT_NE(json.find(R"("name":"isend to 1","cat":"p2p","pid":1,"tid":1,"ts":4.000,"dur":0.001)"),
            std::string::npos) << json;
  EXPECT_NE(json.find(R"("name":"irecv done from 0","cat":"p2p","pid":1,"tid":2,"ts":5.000,"dur":0.001)"),
            std::string::npos) << json;
  EXPECT_NE(json.find(R"({"ph":"s","name":"message","cat":"p2p","id":2,"pid":1,"tid":1,"ts":4.000})"),
            std::string::npos) << json;
  EXPECT_NE(json.find(R"({"ph":"f","bp":"e","name":"message","cat":"p2p","id":2,"pid":1,"tid":2,"ts":5.000})"),
            std::string::npos) << json;
}

TEST_F(TwoRanks, StatisticsMatrixAndTable) {
  JobStats js = read_stats(area(), runs_);
  ASSERT_EQ(js.ranks, 2);
  EXPECT_EQ(js.bytes_at(0, 1), 100u);
  EXPECT_EQ(js.bytes_at(1, 0), 0u);
  EXPECT_EQ(js.rows[1].bytes_received, 100u);
  EXPECT_EQ(js.rows[1].elapsed_ns, 2'000'000u);
  EXPECT_EQ(matrix_csv(js), "from\\to,0,1\n0,0,100\n1,0,0\n");
  std::string text = format_stats(js, false);
  EXPECT_NE(text.find("cohortrun:    0  0 9\n"), std::string::npos) << text;
  EXPECT_NE(text.find("cohortrun:    1  0 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("killed by SIGKILL"), std::string::npos) << text;
  EXPECT_EQ(text.find('\x1b'), std::string::npos) << "colours without a terminal";
  EXPECT_NE(format_stats(js, true).find("\x1b[38;5;"), std::string::npos);
  EXPECT_EQ(matrix_svg(js).rfind("<svg", 0), 0u);
  EXPECT_NE(ranks_csv(js).find("\n1,2000000,0,0,1,100,"), std::string::npos) << ranks_csv(js);
}

TEST(JsonEscape, QuotesBackslashesAndControls) {
  EXPECT_EQ(json_escape("a\"b\\c\n"), "a\\\"b\\\\c\\u000a");
}

TEST(HumanBytes, Units) {
  EXPECT_EQ(human_bytes(0), "0 B");
  EXPECT_EQ(human_bytes(1536), "1.5 KiB");
  EXPECT_EQ(human_bytes(200 * 1024), "200 KiB");
}

}  // namespace
}  // namespace cohort::launcher
