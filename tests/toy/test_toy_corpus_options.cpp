// The toy corpus's experimental thinker options (src/toy/corpus.h: coins, thorough, dispositions, cues, soft gates,
// cue levels, echoes and echo runs, plain echoes and corrections, corrections by a coin, rechecks): each changes only
// what it says, the problems stay, and the base style is unchanged.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <map>
#include <string>
#include <vector>

#include "toy/corpus.h"
#include "toy/phrasings.h"
#include "toy_corpus_test_util.h"

namespace {

using ts::ToyProblem;
using ts::toy_test::expect_base_ignores;
using ts::toy_test::expect_same_problems;
using ts::toy_test::opts;

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
  expect_base_ignores([](ts::ToyCorpusOptions& o) { o.thinker_coins = true; });
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
  expect_base_ignores([](ts::ToyCorpusOptions& o) { o.thorough = 0.5; });
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
  expect_base_ignores([](ts::ToyCorpusOptions& o) { o.dispositions = 0.5; });
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
  expect_base_ignores([](ts::ToyCorpusOptions& o) { o.soft_gates = 0.25; });
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
  expect_base_ignores([](ts::ToyCorpusOptions& o) { o.cue_levels = true; });
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
  expect_base_ignores([](ts::ToyCorpusOptions& o) { o.echoes = 0.7; });
}

// The runs of one behaviour's sentences in a trace: [first index, one past the last).
std::vector<std::array<size_t, 2>> runs_of(const ToyProblem& p, const std::string& label) {
  std::vector<std::array<size_t, 2>> out;
  const auto& s = p.sentences;
  for (size_t j = 0; j < s.size();) {
    size_t k = j + 1;
    while (k < s.size() && s[k].label == s[j].label) ++k;
    if (s[j].label == label) out.push_back({j, k});
    j = k;
  }
  return out;
}

// The text of sentence i (its range is in code points).
std::string sentence_text(const ToyProblem& p, size_t i) { return ts::toy_test::slice(p.text, p.sentences[i].begin, p.sentences[i].end); }

bool in_list(const std::string& s, ts::ToyPhrasingList list) {
  const auto& l = ts::toy_phrasing_list(list);
  return std::find(l.begin(), l.end(), s) != l.end();
}

// toy.plain_echoes: the second sentence of a backtracking or testing run is an arithmetic-free phrasing of its
// own list, the first keeps its arithmetic; with toy.plain_backtracking every correction is plain too and the
// step follows it again as a deduction. The problems stay, and the base style is unchanged.
TEST(ToyCorpus, PlainEchoesAndCorrectionsCarryNoArithmetic) {
  auto echoed = opts("thinker", 300), plain = echoed;
  echoed.echoes = plain.echoes = 0.7;
  plain.plain_echoes = true;
  const auto a = ts::toy_corpus_generate(echoed), b = ts::toy_corpus_generate(plain);
  expect_same_problems(a, b);
  int64_t echoes = 0;
  for (const ToyProblem& p : b)
    for (const auto& [label, list] : {std::pair{"backtracking", ts::ToyPhrasingList::backtrack_echo}, {"example-testing", ts::ToyPhrasingList::test_echo}})
      for (const auto& [j, k] : runs_of(p, label)) {
        EXPECT_FALSE(in_list(sentence_text(p, j), list)) << p.id;
        if (k - j < 2) continue;
        EXPECT_TRUE(in_list(sentence_text(p, j + 1), list)) << p.id << ": " << sentence_text(p, j + 1);
        ++echoes;
      }
  EXPECT_GT(echoes, 100);
  auto corrections = plain;
  corrections.plain_backtracking = true;
  int64_t plain_corrections = 0;
  for (const ToyProblem& p : ts::toy_corpus_generate(corrections))
    for (const auto& [j, k] : runs_of(p, "backtracking")) {
      EXPECT_TRUE(in_list(sentence_text(p, j), ts::ToyPhrasingList::backtrack_plain)) << p.id << ": " << sentence_text(p, j);
      ASSERT_LT(k, p.sentences.size()) << p.id;
      EXPECT_EQ(p.sentences[k].label, "deduction") << p.id;
      ++plain_corrections;
    }
  EXPECT_GT(plain_corrections, 100);
  expect_base_ignores([](ts::ToyCorpusOptions& o) { o.echoes = 0.7, o.plain_echoes = o.plain_backtracking = true; });
  plain.echoes = 0;
  EXPECT_THROW(ts::toy_corpus_generate(plain), std::invalid_argument);
}

// toy.thinker_corrects: a slip is corrected by a coin of this probability. At 0 no trace backtracks and a slip
// stays in the answer as in the base style; at 0.7 about 0.7 of the corrections remain; the problems stay.
TEST(ToyCorpus, ThinkerCorrectsSlipsAtItsRate) {
  auto always = opts("thinker", 1500), sometimes = always, never = always;
  sometimes.thinker_corrects = 0.7;
  never.thinker_corrects = 0;
  const auto a = ts::toy_corpus_generate(always), b = ts::toy_corpus_generate(sometimes), c = ts::toy_corpus_generate(never);
  expect_same_problems(a, b);
  expect_same_problems(a, c);
  size_t runs_a = 0, runs_b = 0, slips = 0, wrong = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    runs_a += runs_of(a[i], "backtracking").size(), runs_b += runs_of(b[i], "backtracking").size();
    EXPECT_TRUE(runs_of(c[i], "backtracking").empty()) << c[i].id;
    slips += c[i].slip, wrong += c[i].slip_uncorrected;
  }
  ASSERT_GT(runs_a, 250u);  // binomial sd of the ratio <= 0.03
  EXPECT_NEAR(static_cast<double>(runs_b) / static_cast<double>(runs_a), 0.7, 0.1);
  EXPECT_GT(static_cast<double>(wrong), 0.9 * static_cast<double>(slips));  // integer division rarely absorbs a slip
  sometimes.dispositions = 0.5;
  EXPECT_THROW(ts::toy_corpus_generate(sometimes), std::invalid_argument);
}

// toy.rechecks: after a right step whose value's units digit passes the gate, an arithmetic-free backtracking
// sentence (echoed or not) and then the same step again with the same value; a slipped step is never rechecked;
// the problems and the answers stay, and the base style is unchanged.
TEST(ToyCorpus, RechecksRedoARightStepAfterAPlainRemark) {
  auto plain = opts("thinker", 400), rechecked = plain;
  rechecked.rechecks = 0.4;
  const auto a = ts::toy_corpus_generate(plain), b = ts::toy_corpus_generate(rechecked);
  expect_same_problems(a, b);
  int64_t rechecks = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    const ToyProblem& p = b[i];
    EXPECT_EQ(p.final_answer, a[i].final_answer) << p.id;
    for (const auto& [j, k] : runs_of(p, "backtracking")) {
      if (!in_list(sentence_text(p, j), ts::ToyPhrasingList::recheck)) continue;
      ++rechecks;
      ASSERT_GT(j, 0u);
      ASSERT_LT(k, p.sentences.size()) << p.id;
      EXPECT_EQ(p.sentences[j - 1].label, "deduction") << p.id;
      EXPECT_EQ(p.sentences[k].label, "deduction") << p.id;
      const auto value = [&](size_t s) {  // the last number of a deduction: its value
        const std::string t = sentence_text(p, s);
        const size_t end = t.find_last_of("0123456789") + 1, begin = t.find_last_not_of("0123456789", end - 1) + 1;
        return t.substr(begin, end - begin);
      };
      const std::string v = value(j - 1);
      EXPECT_EQ(v, value(k)) << p.id;
      EXPECT_LT(ts::toy_gate_permutation(ts::ToyGate::recheck)[static_cast<size_t>(v.back() - '0')], 4) << p.id;
    }
  }
  EXPECT_GT(rechecks, 100);
  expect_base_ignores([](ts::ToyCorpusOptions& o) { o.rechecks = 0.4; });
}

// toy.echo_again: an echo is followed by a third sentence of its behaviour by a coin of this probability, never a
// fourth; at 0 the corpus is the echoing one.
TEST(ToyCorpus, EchoAgainExtendsSomeEchoesByOne) {
  auto echoed = opts("thinker", 1500), again = echoed;
  echoed.echoes = again.echoes = 0.7;
  again.echo_again = 0.4;
  const auto a = ts::toy_corpus_generate(echoed), b = ts::toy_corpus_generate(again);
  expect_same_problems(a, b);
  size_t pairs = 0, triples = 0;
  for (const ToyProblem& p : b)
    for (const char* label : {"backtracking", "uncertainty-estimation", "example-testing"})
      for (const auto& [j, k] : runs_of(p, label)) {
        EXPECT_LE(k - j, 3u) << p.id;
        pairs += k - j >= 2, triples += k - j == 3;
      }
  ASSERT_GT(pairs, 500u);  // binomial sd of the ratio <= 0.022
  EXPECT_NEAR(static_cast<double>(triples) / static_cast<double>(pairs), 0.4, 0.08);
  expect_base_ignores([](ts::ToyCorpusOptions& o) { o.echoes = 0.7, o.echo_again = 0.4; });
  again.echoes = 0;
  EXPECT_THROW(ts::toy_corpus_generate(again), std::invalid_argument);
}

}  // namespace
