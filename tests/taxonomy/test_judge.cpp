// The taxonomy judge's reply parsers and F1 (src/taxonomy/judge.h) and the offline titles' terms
// (src/taxonomy/titles.h): what parses, what is refused.
#include <gtest/gtest.h>

#include "taxonomy/judge.h"
#include "taxonomy/titles.h"

namespace ts::taxonomy {
namespace {

TEST(Judge, TitleReply) {
  const auto r = parse_title_reply("Sure.\n**Title:** Checking Results\nDescription: Verifies a value.\nIt excludes fixes.\n\nThanks");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->title, "Checking Results");
  EXPECT_EQ(r->description, "Verifies a value.\nIt excludes fixes.");
  EXPECT_FALSE(parse_title_reply("Title: Only a title").has_value());
  EXPECT_FALSE(parse_title_reply("Description: first\nTitle: then").has_value());
  EXPECT_FALSE(parse_title_reply("Title:   \nDescription: x").has_value());
}

TEST(Judge, AutograderReply) {
  const auto v = parse_autograder_reply(
      "```json\n{\"classifications\": [{\"sentence_id\": 1, \"belongs_to_category\": true}, {\"sentence_id\": 0, \"belongs_to_category\": false}]}\n```", 2);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(*v, (std::vector<bool>{false, true}));
  EXPECT_FALSE(parse_autograder_reply("{\"classifications\": [{\"sentence_id\": 0, \"belongs_to_category\": true}]}", 2).has_value());  // one missing
  EXPECT_FALSE(parse_autograder_reply("{\"classifications\": [{\"sentence_id\": 0, \"belongs_to_category\": true}, {\"sentence_id\": 0, "
                                      "\"belongs_to_category\": true}]}", 2).has_value());  // repeated
  EXPECT_FALSE(parse_autograder_reply("{\"classifications\": [{\"sentence_id\": 2, \"belongs_to_category\": true}]}", 1).has_value());
  EXPECT_FALSE(parse_autograder_reply("no json here", 1).has_value());
  EXPECT_FALSE(parse_autograder_reply("{\"classifications\": [{\"sentence_id\": 0, \"belongs_to_category\": \"yes\"}]}", 1).has_value());
}

TEST(Judge, CompletenessReply) {
  EXPECT_EQ(parse_completeness_reply("Score: 7"), 7);
  EXPECT_EQ(parse_completeness_reply("**Score:** 10\nIt fits."), 10);
  EXPECT_EQ(parse_completeness_reply(" 3 "), 3);
  EXPECT_FALSE(parse_completeness_reply("Score: 11").has_value());
  EXPECT_FALSE(parse_completeness_reply("I would say 7").has_value());
  EXPECT_FALSE(parse_completeness_reply("Score: high").has_value());
}

TEST(Judge, F1) {
  const std::vector<bool> truth = {true, true, false, false}, verdict = {true, false, true, false};
  EXPECT_DOUBLE_EQ(f1_score(truth, verdict), 0.5);  // tp 1, fp 1, fn 1
  EXPECT_DOUBLE_EQ(f1_score(truth, std::vector<bool>{false, false, false, false}), 0.0);
}

TEST(Titles, TermsSkipFunctionWordsSymbolsAndNumbers) {
  const std::vector<std::string> t = sentence_terms("Let me check this, 12 × 3 = 36, which matches. Café it's");
  const std::vector<std::string> want = {"café",     "café it's", "check",      "check this", "let me",
                                         "matches",  "matches café", "me check", "this which", "which matches"};
  EXPECT_EQ(t, want);
}

TEST(Titles, DistinctiveTermsAndTitle) {
  const std::vector<std::string> texts = {"wait no that is wrong", "wait no, wrong again", "so the total is five", "so the total is six"};
  const std::vector<int64_t> assign = {0, 0, 1, 1};
  const auto terms = distinctive_terms(texts, assign, 2, 8);
  ASSERT_FALSE(terms[0].empty());
  EXPECT_EQ(offline_title(terms[0], "x").find("wait no"), 0u);  // the pair over its words
  EXPECT_NE(offline_title(terms[1], "x").find("total"), std::string::npos);
  EXPECT_EQ(offline_title({}, "cluster 3"), "cluster 3");
}

}  // namespace
}  // namespace ts::taxonomy
