// Toy corpus generator (src/toy/corpus.h): determinism, arithmetic, sentence ranges, rates, phrasings.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <regex>
#include <set>
#include <string>

#include "toy/corpus.h"

namespace {

using ts::ToyCorpusOptions;
using ts::ToyProblem;

// Code-point offset -> byte offset (the generator's ranges are in code points).
size_t byte_of(const std::string& s, int64_t cp) {
  size_t i = 0;
  for (int64_t n = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) continue;
    if (n++ == cp) return i;
  }
  return i;
}
std::string slice(const std::string& s, int64_t b, int64_t e) {
  const size_t bb = byte_of(s, b), eb = byte_of(s, e);
  return s.substr(bb, eb - bb);
}
int64_t code_points(const std::string& s) {
  int64_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

ToyCorpusOptions opts(const std::string& style, int64_t n = 2000) {
  ToyCorpusOptions o;
  o.style = style;
  o.n_problems = n;
  o.seed = 7;
  return o;
}

// "a OP b" with OP in + - × ÷ -> its value; false when the sentence holds no expression.
bool first_expression(const std::string& s, int64_t& value) {
  static const std::regex re(R"((\d+) (\+|-|×|÷) (\d+))");
  std::smatch m;
  if (!std::regex_search(s, m, re)) return false;
  const int64_t a = std::stoll(m[1]), b = std::stoll(m[3]);
  const std::string op = m[2];
  value = op == "+" ? a + b : op == "-" ? a - b : op == "×" ? a * b : (b != 0 && a % b == 0 ? a / b : -1);
  return true;
}

bool contains_number(const std::string& s, int64_t v) {
  static const std::regex num(R"(\d+)");
  for (std::sregex_iterator it(s.begin(), s.end(), num), end; it != end; ++it)
    if (std::stoll(it->str()) == v) return true;
  return false;
}

// Every deduction phrasing ends with the value it states.
int64_t last_number(const std::string& s) {
  static const std::regex num(R"(\d+)");
  int64_t v = -1;
  for (std::sregex_iterator it(s.begin(), s.end(), num), end; it != end; ++it) v = std::stoll(it->str());
  return v;
}

TEST(ToyCorpus, DeterministicAndPrefix) {
  const auto a = ts::toy_corpus_generate(opts("thinker", 1000));
  const auto b = ts::toy_corpus_generate(opts("thinker", 100));
  const auto c = ts::toy_corpus_generate(opts("thinker", 1000));
  ASSERT_EQ(a.size(), 1000u);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(ts::toy_problem_to_json_line(a[i]), ts::toy_problem_to_json_line(c[i]));
  for (size_t i = 0; i < b.size(); ++i) EXPECT_EQ(ts::toy_problem_to_json_line(a[i]), ts::toy_problem_to_json_line(b[i]));
  auto other = opts("thinker", 100);
  other.seed = 8;
  const auto d = ts::toy_corpus_generate(other);
  int same = 0;
  for (size_t i = 0; i < d.size(); ++i) same += d[i].text == a[i].text;
  EXPECT_LT(same, 5);
}

TEST(ToyCorpus, SentenceRangesTileTheThinking) {
  std::set<std::string> labels(ts::toy_behaviour_labels().begin(), ts::toy_behaviour_labels().end());
  for (const std::string style : {"thinker", "base"}) {
    for (const ToyProblem& p : ts::toy_corpus_generate(opts(style, 500))) {
      ASSERT_EQ(p.text.rfind("<think>\n", 0), 0u) << p.id;
      const int64_t close = code_points(p.text.substr(0, p.text.find("\n</think>\n\n")));
      ASSERT_FALSE(p.sentences.empty());
      EXPECT_EQ(p.sentences.front().begin, 8) << p.id;  // right after "<think>\n"
      EXPECT_EQ(p.sentences.back().end, close) << p.id;
      int64_t prev_end = 0;
      for (const auto& s : p.sentences) {
        EXPECT_TRUE(labels.count(s.label)) << s.label;
        ASSERT_LT(s.begin, s.end);
        ASSERT_GE(s.begin, prev_end);
        const std::string gap = slice(p.text, prev_end, s.begin);
        if (prev_end > 0) {
          EXPECT_TRUE(gap == " " || gap == "\n\n") << p.id << " gap '" << gap << "'";
        }
        prev_end = s.end;
        const std::string t = slice(p.text, s.begin, s.end);
        ASSERT_FALSE(t.empty());
        EXPECT_TRUE(t.back() == '.' || t.back() == '?' || t.back() == '!') << t;
        // One sentence for ALGORITHMS §B.3: no other break character, no decimal point, >= 3 words.
        EXPECT_EQ(t.substr(0, t.size() - 1).find_first_of(".!?;\n"), std::string::npos) << t;
        EXPECT_NE(t[0], ' ');
        EXPECT_GE(std::count(t.begin(), t.end(), ' '), 2) << t;
      }
      const std::string final_line = slice(p.text, p.answer_begin, p.answer_end);
      EXPECT_EQ(p.answer_end, code_points(p.text));
      EXPECT_EQ(p.answer_begin, close + 11);  // "\n</think>\n\n"
      EXPECT_NE(final_line.find("\\boxed{" + p.final_answer + "}"), std::string::npos) << final_line;
    }
  }
}

TEST(ToyCorpus, ThinkerArithmeticIsCorrectOrCorrected) {
  const auto problems = ts::toy_corpus_generate(opts("thinker"));
  int slips = 0;
  for (const ToyProblem& p : problems) {
    EXPECT_FALSE(p.slip_uncorrected);
    EXPECT_EQ(p.final_answer, p.answer) << p.id;
    ASSERT_GE(p.n_steps, 1);
    ASSERT_LE(p.n_steps, 4);
    slips += p.slip;
    int64_t last_value = -1, deductions = 0;
    for (size_t i = 0; i < p.sentences.size(); ++i) {
      const auto& s = p.sentences[i];
      if (s.label != "deduction" && s.label != "backtracking") continue;
      const std::string t = slice(p.text, s.begin, s.end);
      int64_t v = 0;
      ASSERT_TRUE(first_expression(t, v)) << t;
      ASSERT_GT(v, 0) << t;
      last_value = v;
      if (s.label == "backtracking") {
        EXPECT_TRUE(contains_number(t, v)) << t;
        continue;
      }
      ++deductions;
      // The next non-uncertainty sentence is a backtracking iff this deduction states a wrong value.
      size_t j = i + 1;
      while (j < p.sentences.size() && p.sentences[j].label == "uncertainty-estimation") ++j;
      const bool corrected = j < p.sentences.size() && p.sentences[j].label == "backtracking";
      EXPECT_EQ(!corrected, last_number(t) == v) << t;
    }
    EXPECT_EQ(deductions, p.n_steps) << p.id;
    EXPECT_EQ(std::to_string(last_value), p.answer) << p.id;
  }
  EXPECT_NEAR(slips / 2000.0, 0.3, 0.04);
}

TEST(ToyCorpus, BaseSlipsStayAndNoBacktracking) {
  const auto problems = ts::toy_corpus_generate(opts("base"));
  int wrong = 0;
  for (const ToyProblem& p : problems) {
    for (const auto& s : p.sentences) {
      EXPECT_NE(s.label, "backtracking");
      EXPECT_NE(s.label, "uncertainty-estimation");
      EXPECT_NE(s.label, "example-testing");
    }
    EXPECT_EQ(p.slip_uncorrected, p.slip);
    EXPECT_EQ(p.final_answer != p.answer, p.slip) << p.id;
    wrong += p.final_answer != p.answer;
  }
  EXPECT_NEAR(wrong / 2000.0, 0.3, 0.04);
  // The same seed gives the same questions in both styles.
  const auto thinker = ts::toy_corpus_generate(opts("thinker", 200));
  for (size_t i = 0; i < thinker.size(); ++i) {
    EXPECT_EQ(thinker[i].question, problems[i].question);
    EXPECT_EQ(thinker[i].answer, problems[i].answer);
  }
}

TEST(ToyCorpus, BehaviourRatesFollowTheConfig) {
  auto o = opts("thinker");
  o.slip_rate = 0.25;
  o.example_testing_rate = 0.5;
  o.uncertainty_rate = 0.2;
  o.adding_knowledge_rate = 0.35;
  std::map<std::string, int> with;
  int test = 0;
  const auto problems = ts::toy_corpus_generate(o);
  for (const ToyProblem& p : problems) {
    std::set<std::string> seen;
    for (const auto& s : p.sentences) seen.insert(s.label);
    for (const auto& l : seen) ++with[l];
    test += p.split == "test";
  }
  const double n = static_cast<double>(problems.size());
  EXPECT_EQ(with["initializing"], 2000);
  EXPECT_EQ(with["deduction"], 2000);
  EXPECT_NEAR(with["backtracking"] / n, 0.25, 0.04);
  EXPECT_NEAR(with["example-testing"] / n, 0.5, 0.04);
  EXPECT_NEAR(with["uncertainty-estimation"] / n, 0.2, 0.04);
  EXPECT_NEAR(with["adding-knowledge"] / n, 0.35, 0.04);
  EXPECT_NEAR(test / n, 0.1, 0.03);
  o.slip_rate = o.example_testing_rate = o.uncertainty_rate = o.adding_knowledge_rate = 0;
  for (const ToyProblem& p : ts::toy_corpus_generate(o)) {
    for (const auto& s : p.sentences) EXPECT_TRUE(s.label == "initializing" || s.label == "deduction") << s.label;
  }
}

TEST(ToyCorpus, ManyPhrasingsPerBehaviour) {
  const auto problems = ts::toy_corpus_generate(opts("thinker", 1500));
  for (const auto& label : ts::toy_behaviour_labels()) {
    const auto& phrasings = ts::toy_phrasings(label);
    ASSERT_GE(phrasings.size(), 8u) << label;
    std::vector<std::regex> res;
    for (const auto& ph : phrasings) {
      std::string re;
      for (size_t i = 0; i < ph.size(); ++i) {
        if (ph[i] == '{' && i + 2 < ph.size() && ph[i + 2] == '}') {
          re += "(.+)";
          i += 2;
        } else {
          if (std::string("\\^$.|?*+()[]{}").find(ph[i]) != std::string::npos) re += '\\';
          re += ph[i];
        }
      }
      res.emplace_back(re);
    }
    std::set<size_t> used;
    int matched = 0, total = 0;
    for (const ToyProblem& p : problems)
      for (const auto& s : p.sentences) {
        if (s.label != label) continue;
        ++total;
        const std::string t = slice(p.text, s.begin, s.end);
        // The sentence's phrasing: the matching one with the most literal text (the most specific).
        size_t best = res.size(), best_literal = 0;
        for (size_t k = 0; k < res.size(); ++k) {
          const size_t literal = phrasings[k].size() - 3 * static_cast<size_t>(std::count(phrasings[k].begin(), phrasings[k].end(), '{'));
          if (std::regex_match(t, res[k]) && (best == res.size() || literal > best_literal)) best = k, best_literal = literal;
        }
        matched += best != res.size();
        if (best != res.size()) used.insert(best);
      }
    EXPECT_EQ(matched, total) << label;
    EXPECT_GE(used.size(), 8u) << label;
  }
  EXPECT_TRUE(ts::toy_phrasings("nonsense").empty());
}

TEST(ToyCorpus, RejectsBadOptions) {
  auto o = opts("thinker", 10);
  o.style = "chatty";
  EXPECT_THROW(ts::toy_corpus_generate(o), std::invalid_argument);
  o = opts("thinker", 10);
  o.slip_rate = 1.5;
  EXPECT_THROW(ts::toy_corpus_generate(o), std::invalid_argument);
  o = opts("thinker", 10);
  o.max_steps = 5;
  EXPECT_THROW(ts::toy_corpus_generate(o), std::invalid_argument);
  o = opts("thinker", 300);
  o.min_steps = o.max_steps = 4;
  o.slip_rate = 1;
  for (const ToyProblem& p : ts::toy_corpus_generate(o)) {
    EXPECT_EQ(p.n_steps, 4);
    EXPECT_TRUE(p.slip);
  }
}

}  // namespace
