// Toy evaluator (src/toy/evaluate.h): the §B.3 splitter, the template labeller (which must give back
// the planted labels of the whole default corpus), answer extraction and the report.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "toy/corpus.h"
#include "toy/evaluate.h"

namespace {

using ts::TextSpan;
using ts::ToyGeneration;
using ts::ToyProblem;

std::vector<std::string> texts(const std::vector<TextSpan>& spans) {
  std::vector<std::string> out;
  for (const auto& s : spans) out.push_back(s.text);
  return out;
}

// The thinking a model would generate after the prompt's "<think>\n", and the answer after </think>.
ToyGeneration as_generation(const ToyProblem& p) {
  const size_t close = p.text.find("</think>");
  return {p.id, p.text.substr(8, close - 8), p.text.substr(close + 8), p.answer, true};
}

TEST(ToySplit, FollowsB3) {
  EXPECT_EQ(texts(ts::toy_split_sentences("It costs 3.5 dollars in all. Next we add them up! Is that right? Yes it is; fine it is then.")),
            (std::vector<std::string>{"It costs 3.5 dollars in all.", "Next we add them up!", "Is that right?", "Yes it is;", "fine it is then."}));
  // A single-letter abbreviation before a lowercase word and k! do not end a sentence; "..." is one break.
  EXPECT_EQ(texts(ts::toy_split_sentences("Ask J. smith about it. Then 5! is big here... Hmm.")),
            (std::vector<std::string>{"Ask J. smith about it.", "Then 5! is big here..."}));
  // Newlines split; pieces under 3 words are dropped; white space is stripped.
  EXPECT_EQ(texts(ts::toy_split_sentences("  First line has words\nok\n\n  Second line here.  ")),
            (std::vector<std::string>{"First line has words", "Second line here."}));
  EXPECT_TRUE(ts::toy_split_sentences("").empty());
  // Ranges are code points.
  const auto spans = ts::toy_split_sentences("Á × b is c. Then 6 ÷ 2 = 3.");
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(spans[0].begin, 0);
  EXPECT_EQ(spans[0].end, 11);
  EXPECT_EQ(spans[1].begin, 12);
  EXPECT_EQ(spans[1].end, 27);
  EXPECT_EQ(spans[1].text, "Then 6 ÷ 2 = 3.");
}

TEST(ToyLabel, Sentences) {
  EXPECT_EQ(ts::toy_label_sentence("So the total cost is 12 + 30, which gives 42."), "deduction");
  EXPECT_EQ(ts::toy_label_sentence("Wait, that's wrong, 12 + 30 is 42, not 32."), "backtracking");
  EXPECT_EQ(ts::toy_label_sentence("Scratch that, 32 is wrong and the total cost is really 12 + 30 = 42."), "backtracking");
  EXPECT_EQ(ts::toy_label_sentence("If the total cost is 42, then 42 - 30 = 12, which is consistent."), "example-testing");
  EXPECT_EQ(ts::toy_label_sentence("Hmm, I'm not sure this is right."), "uncertainty-estimation");
  EXPECT_EQ(ts::toy_label_sentence("Recall that distance equals speed multiplied by time."), "adding-knowledge");
  EXPECT_EQ(ts::toy_label_sentence("Okay, so I need to find the total."), "initializing");
  EXPECT_EQ(ts::toy_label_sentence("I'll go through it step by step."), "initializing");
  EXPECT_EQ(ts::toy_label_sentence("The moon is made of cheese."), "unlabelled");
  EXPECT_EQ(ts::toy_label_sentence("Hmm, I'm not sure this is right. Extra"), "unlabelled");  // whole-sentence match
  EXPECT_EQ(ts::toy_label_sentence(""), "unlabelled");
}

// Splitting every think block of the default corpus and labelling the pieces gives back exactly the
// planted sentences: the same ranges and the same labels, in both styles, and with the arithmetic-free
// echoes and corrections of toy.plain_echoes and toy.plain_backtracking and the rechecks of toy.rechecks (labelled
// as their behaviour's).
TEST(ToyLabel, RecoversEveryCorpusLabel) {
  for (const std::string style : {"thinker", "base", "thinker-plain-echoes"}) {
    ts::ToyCorpusOptions o;
    o.style = style == "base" ? "base" : "thinker";
    if (style == "thinker-plain-echoes") o.echoes = 0.7, o.plain_echoes = true, o.plain_backtracking = true, o.rechecks = 0.4;
    int64_t sentences = 0;
    for (const ToyProblem& p : ts::toy_corpus_generate(o)) {
      const auto spans = ts::toy_split_sentences(as_generation(p).thinking);
      ASSERT_EQ(spans.size(), p.sentences.size()) << p.id;
      for (size_t i = 0; i < spans.size(); ++i) {
        EXPECT_EQ(ts::toy_label_sentence(spans[i].text), p.sentences[i].label) << p.id << ": " << spans[i].text;
        EXPECT_EQ(spans[i].begin + 8, p.sentences[i].begin) << p.id;  // after "<think>\n"
        EXPECT_EQ(spans[i].end + 8, p.sentences[i].end) << p.id;
      }
      sentences += static_cast<int64_t>(spans.size());
    }
    EXPECT_GT(sentences, 8000) << style;
  }
}

TEST(ToyAnswer, Extraction) {
  EXPECT_EQ(ts::toy_extract_answer("\n\nThe answer is \\boxed{42}."), "42");
  EXPECT_EQ(ts::toy_extract_answer("\\boxed{\\frac{1}{2}} or rather \\boxed{ 7 }"), "7");
  EXPECT_EQ(ts::toy_extract_answer("\\boxed{{3}}"), "{3}");
  EXPECT_EQ(ts::toy_extract_answer("\\boxed{12} then \\boxed{5"), "12");  // the last brace-matched one
  EXPECT_EQ(ts::toy_extract_answer("\\boxed{5 and 6 more"), "6");        // none matched: the last integer
  EXPECT_EQ(ts::toy_extract_answer("It is 12, no, -13."), "-13");
  EXPECT_EQ(ts::toy_extract_answer("no number here"), std::nullopt);
  EXPECT_EQ(ts::toy_extract_answer(""), std::nullopt);
  EXPECT_TRUE(ts::toy_answers_equal("007", "7"));
  EXPECT_TRUE(ts::toy_answers_equal(" 42 ", "+42"));
  EXPECT_TRUE(ts::toy_answers_equal("-0", "0"));
  EXPECT_FALSE(ts::toy_answers_equal("7", "7.0"));
  EXPECT_FALSE(ts::toy_answers_equal("{3}", "3"));
  EXPECT_FALSE(ts::toy_answers_equal("", ""));
}

// The corpus's own traces as generations: the shares match exactly and every answer is found.
TEST(ToyEvaluate, CorpusAgainstItself) {
  for (const std::string style : {"thinker", "base"}) {
    ts::ToyCorpusOptions o;
    o.style = style;
    o.n_problems = 600;
    std::vector<ToyProblem> train;
    std::vector<ToyGeneration> rows;
    for (ToyProblem& p : ts::toy_corpus_generate(o)) {
      if (p.split != "train") continue;
      rows.push_back(as_generation(p));
      train.push_back(std::move(p));
    }
    const ts::ToyEvalReport r = ts::toy_evaluate(rows, train);
    EXPECT_EQ(r.n, static_cast<int64_t>(rows.size()));
    EXPECT_EQ(r.closed_rate, 1.0);
    EXPECT_EQ(r.parseable_rate, 1.0);
    EXPECT_DOUBLE_EQ(r.accuracy, r.corpus_accuracy);
    if (style == "thinker") EXPECT_EQ(r.accuracy, 1.0);
    else EXPECT_LT(r.accuracy, 0.85);
    EXPECT_EQ(r.generated_sentences, r.corpus_sentences);
    EXPECT_EQ(r.unlabelled_share, 0.0);
    EXPECT_EQ(r.max_abs_diff_pp, 0.0);
    ASSERT_EQ(r.labels.size(), 6u);
    for (const auto& l : r.labels) EXPECT_EQ(l.generated_sentences, l.corpus_sentences) << l.label;
  }
}

TEST(ToyEvaluate, CountsWhatAModelGetsWrong) {
  ts::ToyCorpusOptions o;
  o.n_problems = 50;
  const auto corpus = ts::toy_corpus_generate(o);
  std::vector<ToyGeneration> rows = {as_generation(corpus[0]), as_generation(corpus[1]), as_generation(corpus[2])};
  rows[1].thinking_closed = false;  // ran out of tokens: no answer even if the text has one
  rows[2].answer_text = "\n\n\\boxed{" + std::to_string(std::stoll(corpus[2].answer) + 1) + "}";
  rows[2].thinking += " The moon is made of cheese.";
  const ts::ToyEvalReport r = ts::toy_evaluate(rows, corpus);
  EXPECT_EQ(r.n, 3);
  EXPECT_EQ(r.n_closed, 2);
  EXPECT_EQ(r.n_parseable, 2);
  EXPECT_EQ(r.n_correct, 1);
  EXPECT_EQ(r.generated_unlabelled, 1);
  EXPECT_EQ(r.rows[2].unlabelled, 1);
  EXPECT_FALSE(r.rows[1].answer.has_value());
  EXPECT_GT(r.max_abs_diff_pp, 0.0);
  const ts::json j = ts::toy_eval_report_json(r);
  EXPECT_EQ(j["n_correct"], 1);
  EXPECT_TRUE(j["rows"][1]["answer"].is_null());
  EXPECT_EQ(j["labels"].size(), 6u);
  EXPECT_TRUE(j["labels"]["backtracking"].contains("diff_pp"));
}

}  // namespace
