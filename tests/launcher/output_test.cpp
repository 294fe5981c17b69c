#include <gtest/gtest.h>

#include <string>

#include "launcher/output.hpp"

namespace cohort::launcher {
namespace {

TEST(LineSplitter, PrefixesEveryCompleteLine) {
  LineSplitter s("[3] ");
  std::string out;
  s.feed("a\nbc\n", out);
  EXPECT_EQ(out, "[3] a\n[3] bc\n");
}

TEST(LineSplitter, ReassemblesLinesSplitAcrossChunks) {
  LineSplitter s("[0] ");
  std::string out;
  s.feed("hel", out);
  EXPECT_EQ(out, "");
  EXPECT_EQ(s.pending_bytes(), 3u);
  s.feed("lo\nwor", out);
  EXPECT_EQ(out, "[0] hello\n");
  s.feed("ld\n", out);
  EXPECT_EQ(out, "[0] hello\n[0] world\n");
  EXPECT_EQ(s.pending_bytes(), 0u);
}

TEST(LineSplitter, FinishFlushesThePartialLastLine) {
  LineSplitter s("[1] ");
  std::string out;
  s.feed("x\nno newline", out);
  s.finish(out);
  EXPECT_EQ(out, "[1] x\n[1] no newline\n");
  out.clear();
  s.finish(out);
  EXPECT_EQ(out, "");
}

TEST(LineSplitter, KeepsEmptyLinesAndStamps) {
  LineSplitter s("[2] ");
  std::string out;
  s.feed("\n\n", out, "T ");
  EXPECT_EQ(out, "T [2] \nT [2] \n");
}

TEST(LineSplitter, CutsOverlongLines) {
  LineSplitter s;
  std::string out;
  std::string chunk(LineSplitter::kMaxLineBytes, 'x');
  s.feed(chunk, out);
  EXPECT_EQ(out.size(), LineSplitter::kMaxLineBytes + 1);
  EXPECT_EQ(s.pending_bytes(), 0u);
}

TEST(Timestamp, HasMicroseconds) {
  std::string t = timestamp_prefix();
  ASSERT_EQ(t.size(), 18u) << t;
  EXPECT_EQ(t[0], '[');
  EXPECT_EQ(t[9], '.');
  EXPECT_EQ(t.substr(16), "] ");
}

}  // namespace
}  // namespace cohort::launcher
