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

namespace {

using ts::ToyCorpusOptions;
using ts::ToyGate;
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

// Two corpora pose the same problems (questions, answers, split), whatever their traces.
void expect_same_problems(const std::vector<ts::ToyProblem>& a, const std::vector<ts::ToyProblem>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].question, b[i].question) << a[i].id;
    EXPECT_EQ(a[i].answer, b[i].answer) << a[i].id;
    EXPECT_EQ(a[i].split, b[i].split) << a[i].id;
  }
}

// Two corpora are the same, line for line.
void expect_same_corpus(const std::vector<ts::ToyProblem>& a, const std::vector<ts::ToyProblem>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(ts::toy_problem_to_json_line(a[i]), ts::toy_problem_to_json_line(b[i]));
}

// The thinker's coins draw from a stream of their own: the problems (questions, answers, split) are the
// same under either kind of gate, and the base corpus does not depend on the thinker's gates at all.
TEST(ToyCorpus, ThinkerGatesChangeOnlyTheThinkersDecisions) {
  auto coins = opts("thinker", 300), digits = coins;
  coins.thinker_coins = true;
  digits.thinker_coins = false;
  const auto a = ts::toy_corpus_generate(coins), b = ts::toy_corpus_generate(digits);
  expect_same_problems(a, b);
  int64_t differ = 0;
  for (size_t i = 0; i < a.size(); ++i) differ += a[i].text != b[i].text;
  EXPECT_GT(differ, 100);  // the decisions differ in most problems
  auto base = opts("base", 300), base_digits = base;
  base.thinker_coins = true;
  base_digits.thinker_coins = false;
  expect_same_corpus(ts::toy_corpus_generate(base), ts::toy_corpus_generate(base_digits));
}

// toy.thorough (ThinkEdit's planted length knob): a hidden per-trace coin drawn apart from every other stream.
// A thorough trace tests every step; any other trace, and every problem, is the corpus without the option;
// the base style never is thorough.
TEST(ToyCorpus, ThoroughTracesTestEveryStepAndChangeNothingElse) {
  auto plain = opts("thinker", 400), thorough = plain;
  thorough.thorough = 0.5;
  const auto a = ts::toy_corpus_generate(plain), b = ts::toy_corpus_generate(thorough);
  expect_same_problems(a, b);
  int64_t n_thorough = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].text == b[i].text) continue;
    ++n_thorough;
    const auto tests = std::count_if(b[i].sentences.begin(), b[i].sentences.end(), [](const auto& x) { return x.label == "example-testing"; });
    EXPECT_EQ(tests, b[i].n_steps) << b[i].id;
    EXPECT_GT(b[i].text.size(), a[i].text.size());
  }
  EXPECT_GT(n_thorough, 150);  // binomial(400, 0.5) minus traces already testing every step: far above
  EXPECT_LT(n_thorough, 250);
  auto base = opts("base", 200), base_thorough = base;
  base_thorough.thorough = 0.5;
  expect_same_corpus(ts::toy_corpus_generate(base), ts::toy_corpus_generate(base_thorough));
}

// toy.dispositions (steering's planted truth): three hidden per-trace coins. A trace disposed to uncertainty or
// testing does it after every step, one disposed to backtracking slips (and corrects itself) at every slip
// candidate; about half the traces are disposed to each; the problems and the answers are those of the corpus
// without the option, and the base style is never disposed.
TEST(ToyCorpus, DisposedTracesRepeatTheirBehaviourAndChangeNothingElse) {
  auto plain = opts("thinker", 400), disposed = plain;
  disposed.dispositions = 0.5;
  const auto a = ts::toy_corpus_generate(plain), b = ts::toy_corpus_generate(disposed);
  expect_same_problems(a, b);
  const auto count = [](const ToyProblem& p, const char* label) {
    return std::count_if(p.sentences.begin(), p.sentences.end(), [&](const auto& x) { return x.label == label; });
  };
  int64_t every_ue = 0, every_et = 0, more_bt = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].final_answer, b[i].final_answer) << b[i].id;  // the thinker corrects every slip
    every_ue += count(b[i], "uncertainty-estimation") == b[i].n_steps && count(a[i], "uncertainty-estimation") < a[i].n_steps;
    every_et += count(b[i], "example-testing") == b[i].n_steps && count(a[i], "example-testing") < a[i].n_steps;
    more_bt += count(b[i], "backtracking") > count(a[i], "backtracking");
    EXPECT_GE(count(b[i], "backtracking"), count(a[i], "backtracking")) << b[i].id;
  }
  // binomial(400, 0.5) minus the traces whose gates already fire at every step (or at every slip candidate)
  EXPECT_GT(every_ue, 120);
  EXPECT_LT(every_ue, 250);
  EXPECT_GT(every_et, 120);
  EXPECT_LT(every_et, 250);
  EXPECT_GT(more_bt, 60);  // only traces with a slip candidate the gate passed over can show it
  EXPECT_LT(more_bt, 250);
  auto base = opts("base", 200), base_disposed = base;
  base_disposed.dispositions = 0.5;
  expect_same_corpus(ts::toy_corpus_generate(base), ts::toy_corpus_generate(base_disposed));
}

// toy.disposition_cues: the question ends with one cue per disposition the trace has; the traces are those of the
// hidden dispositions.
TEST(ToyCorpus, DispositionCuesNameEachModeInTheQuestion) {
  auto hidden = opts("thinker", 300), cued = hidden;
  hidden.dispositions = cued.dispositions = 0.5;
  cued.disposition_cues = true;
  const auto a = ts::toy_corpus_generate(hidden), b = ts::toy_corpus_generate(cued);
  ASSERT_EQ(a.size(), b.size());
  std::array<int64_t, 3> cues{};
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].text, b[i].text) << b[i].id;
    ASSERT_EQ(b[i].question.rfind(a[i].question, 0), 0u) << b[i].id;
    std::string tail = b[i].question.substr(a[i].question.size()), expected;
    for (int m = 0; m < 3; ++m) {
      if (tail.find(ts::toy_disposition_cue(m)) == std::string::npos) continue;
      expected += std::string(" ") + ts::toy_disposition_cue(m);
      ++cues[static_cast<size_t>(m)];
    }
    EXPECT_EQ(tail, expected) << b[i].id;  // only cues, in mode order
  }
  for (int64_t n : cues) {  // binomial(300, 0.5)
    EXPECT_GT(n, 110);
    EXPECT_LT(n, 190);
  }
}

// toy.soft_gates: the thinker's gate choices overruled by hidden coins that keep each behaviour's rate; the
// problems and the base style stay as they are.
TEST(ToyCorpus, SoftGatesKeepTheRatesAndChangeOnlyTheThinkersChoices) {
  auto plain = opts("thinker", 1500), soft = plain;
  soft.soft_gates = 0.25;
  const auto a = ts::toy_corpus_generate(plain), b = ts::toy_corpus_generate(soft);
  expect_same_problems(a, b);
  std::map<std::string, double> share_a, share_b;
  int64_t n_a = 0, n_b = 0, differ = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    for (const auto& s : a[i].sentences) share_a[s.label] += 1, ++n_a;
    for (const auto& s : b[i].sentences) share_b[s.label] += 1, ++n_b;
    differ += a[i].text != b[i].text;
    EXPECT_EQ(a[i].final_answer, b[i].final_answer) << b[i].id;  // the thinker still corrects every slip
  }
  for (const char* label : {"backtracking", "uncertainty-estimation", "example-testing"})  // binomial noise: ~0.5 point
    EXPECT_NEAR(share_a[label] / static_cast<double>(n_a), share_b[label] / static_cast<double>(n_b), 0.015) << label;
  EXPECT_GT(differ, static_cast<int64_t>(a.size()) / 2);  // ~2.5 coin-decided choices per trace, each overruled at 0.25 or q
  auto base = opts("base", 200), base_soft = base;
  base_soft.soft_gates = 0.25;
  expect_same_corpus(ts::toy_corpus_generate(base), ts::toy_corpus_generate(base_soft));
}

// toy.cue_levels: each thinker trace shows three levels at the end of its question, and each behaviour
// follows its level's rate in tenths; the problems, and the base style, stay as they are.
TEST(ToyCorpus, CueLevelsShowEachRateAndTheTracesFollowIt) {
  auto plain = opts("thinker", 2000), cued = plain;
  cued.cue_levels = true;
  const auto a = ts::toy_corpus_generate(plain), b = ts::toy_corpus_generate(cued);
  ASSERT_EQ(a.size(), b.size());
  // per behaviour (uncertainty, testing) and level: [sentences, steps]; backtracking: sentences per trace
  std::map<int, std::array<double, 2>> ue, et;
  std::array<double, 2> bt_low{}, bt_high{};  // [backtracking sentences, traces] at levels <= 4 and >= 6
  for (size_t i = 0; i < a.size(); ++i) {
    const std::array<int, 3> k = ts::toy_cue_levels(cued, static_cast<int64_t>(i));
    for (int m : k) EXPECT_TRUE(m >= 1 && m <= 9 && m != 5) << m;
    EXPECT_EQ(b[i].question, a[i].question + ts::toy_cue_levels_text(k)) << b[i].id;
    EXPECT_EQ(b[i].answer, a[i].answer);
    EXPECT_EQ(b[i].final_answer, b[i].answer) << b[i].id;  // the thinker corrects every slip
    std::map<std::string, double> n;
    for (const auto& s : b[i].sentences) n[s.label] += 1;
    const auto steps = static_cast<double>(b[i].n_steps);
    ue[k[1]][0] += n["uncertainty-estimation"], ue[k[1]][1] += steps;
    et[k[2]][0] += n["example-testing"], et[k[2]][1] += steps;
    auto& bt = k[0] <= 4 ? bt_low : bt_high;
    bt[0] += n["backtracking"], bt[1] += 1;
  }
  EXPECT_EQ(ts::toy_cue_levels_text({7, 3, 8}), " Slips: 7 in 10. Doubts: 3 in 10. Checks: 8 in 10.");
  for (const auto* rates : {&ue, &et}) {
    ASSERT_EQ(rates->size(), 8u);
    for (const auto& [k, c] : *rates)  // ~620 choices per level: binomial sd <= 0.02
      EXPECT_NEAR(c[0] / c[1], k / 10.0, 0.07) << "level " << k;
  }
  EXPECT_GT(bt_high[0] / bt_high[1], 2.5 * bt_low[0] / bt_low[1]);  // slip rates 0.75 against 0.25 on average
  auto base = opts("base", 200), base_cued = base;
  base_cued.cue_levels = true;
  expect_same_corpus(ts::toy_corpus_generate(base), ts::toy_corpus_generate(base_cued));
  cued.soft_gates = 0.25;
  EXPECT_THROW(ts::toy_corpus_generate(cued), std::invalid_argument);
}

// toy.echoes: the thinker's backtracking, uncertainty and testing sentences come in runs of one or two, the
// second with the echo probability; the problems and the answers stay, and the base style is unchanged.
TEST(ToyCorpus, EchoesRepeatEachBehaviourSentenceAtTheirRate) {
  auto plain = opts("thinker", 1500), echoed = plain;
  echoed.echoes = 0.7;
  const auto a = ts::toy_corpus_generate(plain), b = ts::toy_corpus_generate(echoed);
  expect_same_problems(a, b);
  std::map<std::string, std::array<double, 2>> runs;  // label -> [runs, runs of two]
  for (size_t i = 0; i < b.size(); ++i) {
    EXPECT_EQ(b[i].final_answer, b[i].answer) << b[i].id;
    const auto& s = b[i].sentences;
    for (size_t j = 0; j < s.size();) {
      size_t k = j + 1;
      while (k < s.size() && s[k].label == s[j].label) ++k;
      const std::string& label = s[j].label;
      if (label == "backtracking" || label == "uncertainty-estimation" || label == "example-testing") {
        EXPECT_LE(k - j, 2u) << b[i].id << " " << label;
        runs[label][0] += 1, runs[label][1] += k - j == 2;
      }
      j = k;
    }
  }
  for (const auto& [label, n] : runs) {  // >= 250 runs each: binomial sd <= 0.03
    EXPECT_GT(n[0], 250) << label;
    EXPECT_NEAR(n[1] / n[0], 0.7, 0.1) << label;
  }
  auto base = opts("base", 200), base_echoed = base;
  base_echoed.echoes = 0.7;
  expect_same_corpus(ts::toy_corpus_generate(base), ts::toy_corpus_generate(base_echoed));
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
