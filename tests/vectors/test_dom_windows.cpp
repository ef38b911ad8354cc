// The §A.4 token windows (src/vectors/windows.h): S1 = the preceding token and the span's first <= 10
// tokens, ending one token early; whole-span = the span shifted one token left; spans the reference
// code would average into NaN are skipped with a reason; the overall window spans all spans. And the
// §B.3 sentence windows: HF char_to_token, the token before the sentence included, the end exclusive.
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

// "ab cd." as tokens [a][b ][cd.] after two prompt tokens over "P:" (code points 0-1), with a
// character split over two byte-level tokens: token 3 and 4 both cover code point 4.
const std::vector<std::pair<int64_t, int64_t>> OFFSETS = {{0, 1}, {1, 2}, {2, 3}, {3, 5}, {4, 8}};

TEST(SentenceWindows, CharTokensIsTheFirstTokenHoldingTheCharacter) {
  EXPECT_EQ(ts::char_tokens(OFFSETS, 9), (std::vector<int64_t>{0, 1, 2, 3, 3, 4, 4, 4, -1}));
  EXPECT_EQ(ts::char_tokens({}, 2), (std::vector<int64_t>{-1, -1}));
}

TEST(SentenceWindows, TheWindowHoldsTheTokenBeforeAndEndsAtTheTokenAfter) {
  const std::vector<int64_t> tokens = ts::char_tokens(OFFSETS, 8);
  const ts::SentenceWindow w = ts::sentence_window(tokens, 5, 2, 5);  // [2, 5): tokens 2..3, the character after is in 4
  EXPECT_EQ(w.tokens, (TokenRange{2, 4}));
  EXPECT_EQ(w.window, (TokenRange{1, 4}));
  EXPECT_TRUE(w.skip.empty());
  EXPECT_EQ(ts::sentence_window(tokens, 5, 3, 8).tokens, (TokenRange{3, 5}));  // ends the text: runs to the last token
  EXPECT_EQ(ts::sentence_window(tokens, 5, 3, 8).window, (TokenRange{2, 5}));
}

TEST(SentenceWindows, SentencesWithoutAWindowAreSkippedWithAReason) {
  const std::vector<int64_t> tokens = ts::char_tokens(OFFSETS, 9);
  EXPECT_EQ(ts::sentence_window(tokens, 5, 0, 2).skip, "sentence_at_position_0");
  EXPECT_EQ(ts::sentence_window(tokens, 5, 2, 8).skip, "no_token");  // the character after it has no token
  EXPECT_EQ(ts::sentence_window(tokens, 5, 4, 4).skip, "no_token");  // empty
  EXPECT_EQ(ts::sentence_window(tokens, 5, 4, 12).skip, "no_token");  // past the text
  const std::vector<int64_t> backwards = {0, 3, 3, 1};  // a tokenizer whose ranges run backwards
  EXPECT_EQ(ts::sentence_window(backwards, 4, 1, 3).skip, "empty_window");
}

TEST(DomWindows, Names) {
  EXPECT_EQ(ts::dom_window_from_name("s1"), DomWindow::s1);
  EXPECT_EQ(ts::dom_window_from_name("whole-span"), DomWindow::whole_span);
  EXPECT_EQ(ts::dom_window_name(DomWindow::whole_span), "whole-span");
  EXPECT_THROW(ts::dom_window_from_name("s2"), std::invalid_argument);
}

}  // namespace
