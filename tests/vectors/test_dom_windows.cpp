// The §A.4 token windows (src/vectors/windows.h): S1 = the preceding token and the span's first <= 10
// tokens, ending one token early; whole-span = the span shifted one token left; spans the reference
// code would average into NaN are skipped with a reason; the overall window spans all spans.
#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

#include "vectors/windows.h"

namespace {

using ts::DomWindow;
using ts::TokenRange;

TEST(DomWindows, S1CapsAtTheFirstTenTokensPlusThePrecedingOne) {
  EXPECT_EQ(ts::dom_span_window(20, 50, DomWindow::s1).range, (TokenRange{19, 30}));  // 11 positions
  EXPECT_EQ(ts::dom_span_window(20, 31, DomWindow::s1).range, (TokenRange{19, 30}));  // min(end-1, start+10) ties
  EXPECT_EQ(ts::dom_span_window(20, 25, DomWindow::s1).range, (TokenRange{19, 24}));  // ends one token early
  EXPECT_EQ(ts::dom_span_window(20, 21, DomWindow::s1).range, (TokenRange{19, 20}));  // a one-token span: its predecessor
  EXPECT_TRUE(ts::dom_span_window(20, 50, DomWindow::s1).skip.empty());
}

TEST(DomWindows, WholeSpanIsTheSpanShiftedLeft) {
  EXPECT_EQ(ts::dom_span_window(20, 50, DomWindow::whole_span).range, (TokenRange{19, 49}));
  EXPECT_EQ(ts::dom_span_window(1, 2, DomWindow::whole_span).range, (TokenRange{0, 1}));
}

TEST(DomWindows, NanWindowsAreSkippedWithAReason) {
  for (DomWindow w : {DomWindow::s1, DomWindow::whole_span}) {
    EXPECT_EQ(ts::dom_span_window(5, 5, w).skip, "empty_span");
    EXPECT_EQ(ts::dom_span_window(6, 5, w).skip, "empty_span");
    EXPECT_EQ(ts::dom_span_window(0, 4, w).skip, "span_at_position_0");
  }
}

TEST(DomWindows, OverallWindowSpansEverySpan) {
  const std::vector<TokenRange> spans = {{30, 40}, {12, 20}, {41, 60}, {50, 55}};
  EXPECT_EQ(*ts::dom_overall_window(spans), (TokenRange{12, 60}));
  EXPECT_FALSE(ts::dom_overall_window({}).has_value());
}

TEST(DomWindows, Names) {
  EXPECT_EQ(ts::dom_window_from_name("s1"), DomWindow::s1);
  EXPECT_EQ(ts::dom_window_from_name("whole-span"), DomWindow::whole_span);
  EXPECT_EQ(ts::dom_window_name(DomWindow::whole_span), "whole-span");
  EXPECT_THROW(ts::dom_window_from_name("s2"), std::invalid_argument);
}

}  // namespace
