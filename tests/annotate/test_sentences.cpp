// Sentence splitting (docs/algorithms.md §B.3) and the thinking part (src/annotate/sentences.h).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/sentences.h"

namespace {

std::vector<std::string> texts(const std::vector<ts::Sentence>& s) {
  std::vector<std::string> out;
  for (const auto& x : s) out.push_back(x.text);
  return out;
}

TEST(SplitSentences, BreaksAndProtections) {
  EXPECT_EQ(texts(ts::split_sentences("It costs 3.5 dollars in all. Next we add them up! Is that right? Yes it is; fine it is then.")),
            (std::vector<std::string>{"It costs 3.5 dollars in all.", "Next we add them up!", "Is that right?", "Yes it is;", "fine it is then."}));
  EXPECT_EQ(texts(ts::split_sentences("Ask J. smith about it. Then 5! is big here... What?! Is it so")),
            (std::vector<std::string>{"Ask J. smith about it.", "Then 5! is big here...", "Is it so"}));
  // "J. Smith" (a capital after the dot) is a break.
  EXPECT_EQ(texts(ts::split_sentences("We asked J. Smith came by today. He said no way.")),
            (std::vector<std::string>{"We asked J.", "Smith came by today.", "He said no way."}));
  EXPECT_TRUE(ts::split_sentences("").empty());
  EXPECT_TRUE(ts::split_sentences(" \n\n ").empty());
}

TEST(SplitSentences, ShortPiecesAreDroppedAndReported) {
  std::vector<ts::Sentence> dropped;
  const auto kept = ts::split_sentences("Hmm. Wait.\nLet me check this again.\nOk so", &dropped);
  EXPECT_EQ(texts(kept), (std::vector<std::string>{"Let me check this again."}));
  EXPECT_EQ(texts(dropped), (std::vector<std::string>{"Hmm.", "Wait.", "Ok so"}));
  EXPECT_EQ(dropped[1].begin, 5);
  EXPECT_EQ(dropped[1].end, 10);
  EXPECT_EQ(texts(ts::split_sentences("one two", nullptr, 2)), (std::vector<std::string>{"one two"}));
}

TEST(SplitSentences, ClosingQuoteGoesToItsSentence) {
  // A '"' right after the break closes the quoted sentence; one after white space opens the next.
  const auto s = ts::split_sentences("He said \"we are done.\" Then we left the room. \"Go home now,\" she said.");
  EXPECT_EQ(texts(s), (std::vector<std::string>{"He said \"we are done.\"", "Then we left the room.", "\"Go home now,\" she said."}));
  EXPECT_EQ(s[0].begin, 0);
  EXPECT_EQ(s[0].end, 22);
  EXPECT_EQ(s[1].begin, 23);
}

TEST(SplitSentences, OffsetsInCodePointsAndBytes) {
  const std::string text = "Á × b is c. Then 6 ÷ 2 = 3.";
  const auto s = ts::split_sentences(text);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].begin, 0);
  EXPECT_EQ(s[0].end, 11);
  EXPECT_EQ(s[1].begin, 12);
  EXPECT_EQ(s[1].end, 27);
  EXPECT_EQ(s[1].text, "Then 6 ÷ 2 = 3.");
  for (const auto& x : s) EXPECT_EQ(text.substr(x.byte_begin, x.byte_end - x.byte_begin), x.text);
  EXPECT_EQ(s[1].byte_begin, 14u);  // Á and × take two bytes each
}

TEST(ThinkingRange, TagsAndFallbacks) {
  const std::string t = "<think>\nÁ step.\n</think>\n\nAnswer.";
  ts::TextRange r = ts::thinking_range(t);
  EXPECT_EQ(r.begin, 7);
  EXPECT_EQ(r.end, 16);
  EXPECT_EQ(t.substr(r.byte_begin, r.byte_end - r.byte_begin), "\nÁ step.\n");
  r = ts::thinking_range("no open tag here</think>rest");  // generated text after the prompt's <think>
  EXPECT_EQ(r.begin, 0);
  EXPECT_EQ(r.end, 16);
  r = ts::thinking_range("<think>never closed");
  EXPECT_EQ(r.begin, 7);
  EXPECT_EQ(r.end, 19);
  r = ts::thinking_range("</think> before <think>x");  // the close must follow the open
  EXPECT_EQ(r.begin, 23);
  EXPECT_EQ(r.end, 24);
}

}  // namespace
