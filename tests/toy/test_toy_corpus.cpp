// Toy corpus generator (src/toy/corpus.h): determinism, sentence ranges, phrasings, and the gate rules:
// every behaviour sentence stands exactly where the documented rule, recomputed from the numbers the
// text shows, puts it.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <regex>
#include <set>
#include <string>

#include "toy/corpus.h"
#include "toy_corpus_test_util.h"

namespace {

using ts::ToyCorpusOptions;
using ts::ToyGate;
using ts::ToyProblem;
using ts::toy_test::opts;
using ts::toy_test::slice;

int64_t code_points(const std::string& s) {
  int64_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}


std::vector<int64_t> numbers(const std::string& s) {
  static const std::regex num(R"(\d+)");
  std::vector<int64_t> out;
  for (std::sregex_iterator it(s.begin(), s.end(), num), end; it != end; ++it) out.push_back(std::stoll(it->str()));
  return out;
}

// The first "a OP b" of a sentence.
struct Expr {
  int64_t a = 0, b = 0;
  std::string op;
  std::string text;
};
bool first_expression(const std::string& s, Expr& e) {
  static const std::regex re(R"((\d+) (\+|-|×|÷) (\d+))");
  std::smatch m;
  if (!std::regex_search(s, m, re)) return false;
  e = {std::stoll(m[1]), std::stoll(m[3]), m[2], m[0]};
  return true;
}

// The documented rules, written out again from corpus.h.
int64_t value_of(const Expr& e) {
  if (e.op == "+") return e.a + e.b;
  if (e.op == "-") return e.a - e.b;
  if (e.op == "×") return e.a * e.b;
  return e.a / e.b;  // rounds down (only a propagated base-style slip is inexact)
}
bool slip_candidate(const Expr& e) {
  if (e.op == "+") return e.a % 10 + e.b % 10 >= 10;
  if (e.op == "×") return (e.a % 10) * (e.b % 10) >= 10;
  if (e.op == "-") return e.a % 10 < e.b % 10;
  return false;
}
int64_t slipped(const Expr& e) { return e.op == "-" ? value_of(e) + 10 : value_of(e) - 10; }
std::string inverse_check(const Expr& e, int64_t v) {
  const std::string inv = e.op == "×" ? "÷" : e.op == "÷" ? "×" : e.op == "+" ? "-" : "+";
  return std::to_string(v) + " " + inv + " " + std::to_string(e.b) + " = " + std::to_string(e.a);
}

// What the checker saw in one corpus.
struct GateStats {
  int64_t steps = 0, candidates = 0, slips = 0, cancelled = 0, inexact_divisions = 0;
  std::map<std::string, int64_t> after_step;  // deduction steps followed by each behaviour
  std::map<std::string, std::set<std::string>> facts;  // (template, n_steps, step) -> facts stated
};

// Recomputes every problem's label sequence from the numbers its text shows and compares it with the
// planted labels. Base style: a slip the rule asks for may be left out (a later step would turn
// negative); those are counted in `cancelled`.
GateStats check_gates(const std::vector<ToyProblem>& problems, const ToyCorpusOptions& o) {
  GateStats st;
  const bool thinker = o.style == "thinker", coins = thinker && o.thinker_coins;
  const std::regex fact_re(R"(^(?:I remember that|Recall that|It helps to know that|A useful fact here is that|Note that|From basic arithmetic,|It's worth remembering that|As a general rule,|I know that) (.+)\.$)");
  for (const ToyProblem& p : problems) {
    SCOPED_TRACE(p.id);
    std::vector<std::string> labels, texts;
    for (const auto& s : p.sentences) labels.push_back(s.label), texts.push_back(slice(p.text, s.begin, s.end));
    std::vector<std::string> expected = {"initializing"};
    if (p.n_steps >= 3) expected.push_back("initializing");
    // Operands must be visible: numbers of the question, values stated before, or the world's 2 and 7
    // (there and back, days of a week).
    std::set<int64_t> visible = {2, 7};
    for (int64_t v : numbers(p.question)) visible.insert(v);
    size_t k = expected.size();
    int64_t value = -1, step = 0;
    while (k < texts.size()) {
      EXPECT_EQ(labels[k], "deduction") << texts[k];
      Expr e;
      if (!first_expression(texts[k], e)) {
        ADD_FAILURE() << "no expression in " << texts[k];
        return st;
      }
      EXPECT_TRUE(visible.count(e.a) && visible.count(e.b)) << texts[k];
      const int64_t right = value_of(e), written = numbers(texts[k]).back();  // every deduction ends with its value
      // The base's slips follow the digit gate; the thinker's are hidden coins (corpus.h), so only their
      // place is checked: a slip is written at a candidate, as a lost carry or borrow.
      const bool rule = slip_candidate(e) && (coins ? written != right : ts::toy_gate(ToyGate::slip, e.a % 10, o.slip_rate));
      ++st.steps;
      st.candidates += slip_candidate(e);
      st.inexact_divisions += e.op == "÷" && e.a % e.b != 0;
      expected.push_back("deduction");
      if (rule && written == right && !thinker) {
        ++st.cancelled;
      } else {
        EXPECT_EQ(written, rule ? slipped(e) : right) << texts[k];
      }
      st.slips += written != right;
      value = right;
      if (written != right && thinker) {
        expected.push_back("backtracking");
        ++k;
        if (k < texts.size()) {
          EXPECT_NE(texts[k].find(e.text), std::string::npos) << texts[k];
          const auto nums = numbers(texts[k]);
          EXPECT_TRUE(std::count(nums.begin(), nums.end(), right) && std::count(nums.begin(), nums.end(), written)) << texts[k];
        }
      } else if (!thinker) {
        value = written;
      }
      ++k;
      const int64_t d = value % 10;
      if (ts::toy_gate(ToyGate::knowledge, d, o.adding_knowledge_rate)) {
        expected.push_back("adding-knowledge");
        ++st.after_step["adding-knowledge"];
        std::smatch m;
        if (k < texts.size() && std::regex_match(texts[k], m, fact_re))
          st.facts[p.template_name + "/" + std::to_string(p.n_steps) + "/" + std::to_string(step)].insert(m[1]);
        else
          ADD_FAILURE() << "no fact where one belongs: " << (k < texts.size() ? texts[k] : "<end>");
        ++k;
      }
      // The thinker's uncertainty and testing coins: taken where the text has them, in their order.
      const auto coin_came_up = [&](size_t at, const char* label) { return at < labels.size() && labels[at] == label; };
      if (thinker && (coins ? coin_came_up(k, "uncertainty-estimation") : ts::toy_gate(ToyGate::uncertainty, d, o.uncertainty_rate))) {
        expected.push_back("uncertainty-estimation");
        ++st.after_step["uncertainty-estimation"];
        ++k;
      }
      if (thinker && (coins ? coin_came_up(k, "example-testing") : ts::toy_gate(ToyGate::testing, d, o.example_testing_rate))) {
        expected.push_back("example-testing");
        ++st.after_step["example-testing"];
        if (k < texts.size()) {
          EXPECT_NE(texts[k].find(inverse_check(e, value)), std::string::npos) << texts[k];
        }
        ++k;
      }
      visible.insert(value);
      ++step;
    }
    EXPECT_EQ(labels, expected);
    EXPECT_EQ(step, p.n_steps);
    EXPECT_EQ(std::to_string(value), p.final_answer);
  }
  return st;
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
        // One sentence for docs/algorithms.md §B.3: no other break character, no decimal point, >= 3 words.
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

TEST(ToyCorpus, GatePermutations) {
  std::set<std::array<int, 10>> distinct;
  for (ToyGate kind : {ToyGate::slip, ToyGate::knowledge, ToyGate::uncertainty, ToyGate::testing}) {
    std::array<int, 10> perm = ts::toy_gate_permutation(kind);
    distinct.insert(perm);
    std::array<int, 10> sorted = perm;
    std::sort(sorted.begin(), sorted.end());
    for (int i = 0; i < 10; ++i) EXPECT_EQ(sorted[static_cast<size_t>(i)], i);
    for (double rate : {0.0, 0.04, 0.1, 0.26, 0.5, 0.95, 1.0}) {
      int open = 0;
      for (int d = 0; d < 10; ++d) open += ts::toy_gate(kind, d, rate);
      EXPECT_EQ(open, static_cast<int>(std::lround(10 * rate))) << rate;
    }
  }
  EXPECT_EQ(distinct.size(), 4u);
  EXPECT_THROW(ts::toy_gate(ToyGate::slip, 10, 0.5), std::invalid_argument);
}

// The heart of it: in both styles every sentence is where the rule recomputed from the text puts it.
TEST(ToyCorpus, EveryBehaviourFollowsItsGate) {
  for (const std::string style : {"thinker", "base"}) {
    for (double rate : {0.2, 0.5}) {
      SCOPED_TRACE(style + " " + std::to_string(rate));
      auto o = opts(style);
      o.slip_rate = 2 * rate;
      o.adding_knowledge_rate = o.uncertainty_rate = o.example_testing_rate = rate;
      const GateStats st = check_gates(ts::toy_corpus_generate(o), o);
      EXPECT_GT(st.slips, 300);
      // Base style: slips left out (a later step would turn negative) and rounded divisions stay rare.
      EXPECT_LE(st.cancelled, st.candidates / 20);
      EXPECT_LE(st.inexact_divisions, style == "base" ? static_cast<int64_t>(250 * o.slip_rate) : 0);
      // One fact per template step.
      for (const auto& [step, facts] : st.facts) EXPECT_EQ(facts.size(), 1u) << step;
    }
  }
}

TEST(ToyCorpus, ThinkerCorrectsEverySlipBaseKeepsThem) {
  const auto thinker = ts::toy_corpus_generate(opts("thinker"));
  const auto base = ts::toy_corpus_generate(opts("base"));
  int wrong = 0, slips = 0;
  for (size_t i = 0; i < thinker.size(); ++i) {
    EXPECT_FALSE(thinker[i].slip_uncorrected);
    EXPECT_EQ(thinker[i].final_answer, thinker[i].answer) << thinker[i].id;
    // The same seed gives the same questions in both styles.
    EXPECT_EQ(thinker[i].question, base[i].question);
    EXPECT_EQ(thinker[i].answer, base[i].answer);
    const ToyProblem& p = base[i];
    for (const auto& s : p.sentences) {
      EXPECT_NE(s.label, "backtracking");
      EXPECT_NE(s.label, "uncertainty-estimation");
      EXPECT_NE(s.label, "example-testing");
    }
    EXPECT_EQ(p.slip_uncorrected, p.final_answer != p.answer) << p.id;
    if (p.slip_uncorrected) {
      EXPECT_TRUE(p.slip) << p.id;
    }
    wrong += p.slip_uncorrected;
    slips += p.slip;
  }
  // The toy base is clearly less accurate than the thinker (defaults: about a third wrong).
  EXPECT_GE(wrong / 2000.0, 0.15);
  EXPECT_LE(wrong, slips);
}

// Defaults: every behaviour is a reasonable share of the thinker's sentences.
TEST(ToyCorpus, DefaultSentenceShares) {
  std::map<std::string, int64_t> count;
  int64_t total = 0;
  for (const ToyProblem& p : ts::toy_corpus_generate(opts("thinker")))
    for (const auto& s : p.sentences) ++count[s.label], ++total;
  for (const char* label : {"adding-knowledge", "example-testing", "uncertainty-estimation", "backtracking"}) {
    const double share = static_cast<double>(count[label]) / static_cast<double>(total);
    EXPECT_GE(share, 0.05) << label;
    EXPECT_LE(share, 0.15) << label;
  }
}

// Both kinds of thinker decision (toy/corpus.h): coins come up at their rate (binomial, a few thousand
// draws: ±0.03 is > 3 standard errors), digit gates cover about their rate of the steps.
TEST(ToyCorpus, RatesFollowTheConfig) {
  for (bool coins : {true, false}) {
    SCOPED_TRACE(coins ? "coins" : "digits");
    std::map<std::string, double> last;
    for (double rate : {0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 1.0}) {
      SCOPED_TRACE(rate);
      auto o = opts("thinker", 1000);
      o.thinker_coins = coins;
      o.slip_rate = o.adding_knowledge_rate = o.uncertainty_rate = o.example_testing_rate = rate;
      GateStats st = check_gates(ts::toy_corpus_generate(o), o);
      std::map<std::string, double> now = {{"slip", static_cast<double>(st.slips) / static_cast<double>(st.candidates)}};
      for (const char* label : {"adding-knowledge", "uncertainty-estimation", "example-testing"})
        now[label] = static_cast<double>(st.after_step[label]) / static_cast<double>(st.steps);
      for (const auto& [what, share] : now) {
        const bool coin = coins && what != "adding-knowledge";
        EXPECT_NEAR(share, rate, coin ? 0.03 : 0.12) << what;  // quantised digit gates over non-uniform digits
        if (rate == 0.0 || rate == 1.0) {
          EXPECT_EQ(share, rate) << what;
        }
        if (last.count(what)) {
          EXPECT_GT(share, last[what]) << what;
        }
      }
      last = now;
    }
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
  for (const ToyProblem& p : ts::toy_corpus_generate(o)) EXPECT_EQ(p.n_steps, 4);
}

}  // namespace
