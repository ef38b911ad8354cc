// Toy corpus generator: see corpus.h for the format and the meaning of the rates. The word-problem
// templates are problem_templates.cpp, the phrasings of the sentences phrasings.cpp.
#include "toy/corpus.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <optional>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "toy/phrasings.h"
#include "toy/problem_templates.h"

namespace ts {

using namespace toy_detail;

namespace {

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

// A phrasing of `list`, drawn from `g`.
const std::string& phrase(Rng& g, ToyPhrasingList list) { return g.pick(toy_phrasing_list(list)); }

std::string fill(std::string t, const std::vector<std::pair<std::string, std::string>>& subs) {
  for (const auto& [key, value] : subs) {
    for (size_t pos = t.find(key); pos != std::string::npos; pos = t.find(key, pos + value.size())) t.replace(pos, key.size(), value);
  }
  return t;
}

std::string op_symbol(char op) {
  switch (op) {
    case '+': return "+";
    case '-': return "-";
    case '*': return "×";
    default: return "÷";
  }
}

int64_t code_points(const std::string& s) {
  int64_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// Builds the text and the labelled ranges.
struct TraceWriter {
  std::string text;
  int64_t cp = 0;
  std::vector<ToySentence> sentences;
  void raw(const std::string& s) {
    text += s;
    cp += code_points(s);
  }
  void sentence(const std::string& label, const std::string& s, Rng& g) {
    if (!sentences.empty()) raw(g.coin(0.2) ? "\n\n" : " ");
    const int64_t b = cp;
    raw(s);
    sentences.push_back({label, b, cp});
  }
};

// Where a slip can be planted: a units carry of '+' (a%10 + b%10 >= 10) or of '*' (a%10 * b%10 >= 10),
// a units borrow of '-' (a%10 < b%10). Never in '/'.
bool slip_candidate(char op, int64_t a, int64_t b) {
  if (op == '+') return a % 10 + b % 10 >= 10;
  if (op == '*') return (a % 10) * (b % 10) >= 10;
  if (op == '-') return a % 10 < b % 10;
  return false;
}

// The written value of a slip: a carry lost ('+', '*': ten too few) or a borrow forgotten ('-': ten
// too many). Never negative, since a carry means the value is at least 10.
int64_t slipped_value(char op, int64_t right) { return op == '-' ? right + 10 : right - 10; }

// "b op' value = a": the inverse operation that checks `value = a op b`.
std::string inverse_check(char op, int64_t a, int64_t b, int64_t value) {
  switch (op) {
    case '*': return S(value) + " ÷ " + S(b) + " = " + S(a);
    case '/': return S(value) + " × " + S(b) + " = " + S(a);
    case '+': return S(value) + " - " + S(b) + " = " + S(a);
    default: return S(value) + " + " + S(b) + " = " + S(a);
  }
}

// One problem's trace, written step by step. `work` holds the value the trace works with for each
// step: the right one in the thinker style (slips are corrected), the written one in the base style
// (slips stay and propagate). `coins` is the thinker's hidden coins (corpus.h), a stream of its own so
// that they do not shift the phrasing draws of `g`.
struct TraceBuilder {
  const ToyCorpusOptions& opt;
  const Spec& spec;
  bool thinker;
  Rng& g;
  Rng& coins;
  bool thorough;  // this trace tests every step (ToyCorpusOptions::thorough)
  TraceModes modes;  // this trace's hidden dispositions (ToyCorpusOptions::dispositions)
  std::array<int, 3> levels;  // this trace's cue levels (ToyCorpusOptions::cue_levels), zeros when off
  TraceWriter tw;
  std::vector<int64_t> work;
  int64_t n_slips = 0;

  bool thinker_coin() const { return thinker && opt.thinker_coins; }
  // Whether every slip is corrected (the thinker's default), so a slip never reaches a later step.
  bool always_corrects() const { return thinker && opt.thinker_corrects >= 1; }
  // Whether this slip is corrected: always, or by a coin (ToyCorpusOptions::thinker_corrects, base_knows).
  bool corrects() {
    if (always_corrects()) return true;
    return thinker ? coins.coin(opt.thinker_corrects) : opt.base_knows > 0 && coins.coin(opt.base_knows);
  }
  // A behaviour sentence; the thinker echoes it with a second sentence of the same behaviour by a coin of
  // ToyCorpusOptions::echoes, and that echo with a third by a coin of echo_again: a fresh draw of the phrasing, or
  // one of `plain_echo` (ToyCorpusOptions::plain_echoes).
  template <class Text>
  void behaviour(const char* label, Text text, std::optional<ToyPhrasingList> plain_echo = std::nullopt) {
    tw.sentence(label, text(), g);
    if (!thinker || opt.echoes <= 0 || !coins.coin(opt.echoes)) return;
    const auto echo = [&] { tw.sentence(label, opt.plain_echoes && plain_echo ? phrase(g, *plain_echo) : text(), g); };
    echo();
    if (opt.echo_again > 0 && coins.coin(opt.echo_again)) echo();
  }
  // A thinker's digit-gate choice, overruled by a hidden coin when soft (ToyCorpusOptions::soft_gates).
  bool soft(bool gate, double rate) {
    const double s = opt.soft_gates;
    if (!thinker || s <= 0) return gate;
    return gate ? !coins.coin(s) : coins.coin(rate >= 1 ? 0.0 : rate * s / (1 - rate));
  }
  // The thinker's choice for behaviour m (0 slip, 1 uncertainty, 2 testing) of a cued trace (ToyCorpusOptions::cue_levels):
  // a coin of its level in tenths.
  bool level_coin(size_t m) { return coins.coin(levels[m] / 10.0); }
  // The uncertainty or testing choice after a step whose value ends in d: the level's coin when cued, else a coin or
  // a digit gate (soft or not).
  bool behaviour_gate(size_t m, ToyGate kind, int64_t d, double rate) {
    if (levels[m] > 0) return level_coin(m);
    return thinker_coin() ? coins.coin(rate) : soft(toy_gate(kind, d, rate), rate);
  }
  // A slip that might stay uncorrected is planted only where it keeps every later value non-negative.
  bool slip_choice(int64_t a, size_t i, int64_t wrong) {
    const bool chosen = levels[0] > 0    ? level_coin(0)
                        : thinker_coin() ? coins.coin(opt.slip_rate)
                                         : soft(toy_gate(ToyGate::slip, a % 10, opt.slip_rate), opt.slip_rate);
    return chosen && (always_corrects() || chain_stays_valid(i, wrong));
  }
  int64_t operand(const Operand& o) const { return o.ref ? work[static_cast<size_t>(o.v)] : o.v; }

  // Base style: would the later steps stay non-negative if step i were written as `wrong` (and no
  // further slip came)? A slip that would make a later value negative is not planted.
  bool chain_stays_valid(size_t i, int64_t wrong) const {
    std::vector<int64_t> vals = work;
    vals[i] = wrong;
    for (size_t j = i + 1; j < spec.steps.size(); ++j) {
      const Step& st = spec.steps[j];
      const auto value_of = [&](const Operand& o) { return o.ref ? vals[static_cast<size_t>(o.v)] : o.v; };
      vals[j] = apply(st.op, value_of(st.l), value_of(st.r));
      if (vals[j] < 0) return false;
    }
    return true;
  }

  void step(size_t i) {
    using enum ToyPhrasingList;
    const Step& st = spec.steps[i];
    const int64_t a = operand(st.l), b = operand(st.r);
    const int64_t right = apply(st.op, a, b);
    if (right < 0) throw std::logic_error("toy template " + spec.tmpl + ": a propagated slip made a value negative");
    const int64_t wrong = slipped_value(st.op, right);
    const bool slipped = slip_candidate(st.op, a, b) && (modes.backtracking || slip_choice(a, i, wrong));
    const std::string e = S(a) + " " + op_symbol(st.op) + " " + S(b);
    n_slips += slipped;
    const auto deduction = [&](int64_t r) {
      tw.sentence("deduction", fill(phrase(g, deduce), {{"{W}", cap(st.what)}, {"{w}", st.what}, {"{e}", e}, {"{r}", S(r)}}), g);
    };
    // An arithmetic-free backtracking remark, then the step again with the right value.
    const auto redo = [&](ToyPhrasingList remark) {
      behaviour("backtracking", [&] { return phrase(g, remark); }, backtrack_echo);
      deduction(right);
    };
    deduction(slipped ? wrong : right);
    const bool corrected = slipped && corrects();
    if (corrected && thinker && opt.plain_backtracking) {
      redo(backtrack_plain);
    } else if (corrected) {
      behaviour("backtracking", [&] { return fill(phrase(g, backtrack), {{"{w}", st.what}, {"{e}", e}, {"{r}", S(right)}, {"{x}", S(wrong)}}); },
                backtrack_echo);
    }
    if (!slipped && thinker && opt.rechecks > 0 && toy_gate(ToyGate::recheck, right % 10, opt.rechecks)) redo(recheck);
    work[i] = slipped && !corrected ? wrong : right;
    const int64_t d = work[i] % 10;
    if (toy_gate(ToyGate::knowledge, d, opt.adding_knowledge_rate))
      tw.sentence("adding-knowledge", fill(phrase(g, knowledge), {{"{f}", st.fact}}), g);
    if (!thinker) {
      if (opt.base_knows <= 0) return;
      if (coins.coin(opt.base_knows * opt.uncertainty_rate)) tw.sentence("uncertainty-estimation", phrase(g, uncertain), g);
      if (coins.coin(opt.base_knows * opt.example_testing_rate))
        tw.sentence("example-testing",
                    fill(phrase(g, test), {{"{c}", inverse_check(st.op, a, b, work[i])}, {"{w}", st.what}, {"{r}", S(work[i])}}), g);
      return;
    }
    if (modes.uncertainty || behaviour_gate(1, ToyGate::uncertainty, d, opt.uncertainty_rate))
      behaviour("uncertainty-estimation", [&] { return phrase(g, uncertain); });
    if (thorough || modes.testing || behaviour_gate(2, ToyGate::testing, d, opt.example_testing_rate))
      behaviour("example-testing",
                [&] { return fill(phrase(g, test), {{"{c}", inverse_check(st.op, a, b, work[i])}, {"{w}", st.what}, {"{r}", S(work[i])}}); },
                test_echo);
  }

  void write() {
    using enum ToyPhrasingList;
    work.assign(spec.steps.size(), 0);
    tw.raw("<think>\n");
    tw.sentence("initializing", fill(phrase(g, restate), {{"{g}", spec.goal}}), g);
    if (spec.steps.size() >= 3) tw.sentence("initializing", phrase(g, plan), g);
    for (size_t i = 0; i < spec.steps.size(); ++i) step(i);
    tw.raw("\n</think>\n\n");
  }
};

// The exact values of all steps (the problem as posed: every division exact, no negative value).
std::vector<int64_t> exact_values(const Spec& s) {
  std::vector<int64_t> vals(s.steps.size(), 0);
  for (size_t i = 0; i < s.steps.size(); ++i) {
    const Step& st = s.steps[i];
    const int64_t a = st.l.ref ? vals[static_cast<size_t>(st.l.v)] : st.l.v;
    const int64_t b = st.r.ref ? vals[static_cast<size_t>(st.r.v)] : st.r.v;
    if ((st.op == '/' && (b <= 0 || a % b != 0)) || apply(st.op, a, b) <= 0)
      throw std::logic_error("toy template " + s.tmpl + " produced an invalid problem");
    vals[i] = apply(st.op, a, b);
  }
  return vals;
}

void check_options(const ToyCorpusOptions& opt) {
  if (opt.style != "thinker" && opt.style != "base") throw std::invalid_argument("toy style must be thinker or base, got '" + opt.style + "'");
  for (double r : {opt.slip_rate, opt.example_testing_rate, opt.uncertainty_rate, opt.adding_knowledge_rate, opt.test_fraction, opt.dispositions, opt.soft_gates, opt.echoes, opt.thinker_corrects, opt.rechecks, opt.echo_again})
    if (!(r >= 0 && r <= 1)) throw std::invalid_argument("toy rates must be in [0, 1]");
  if (opt.cue_levels && (opt.thinker_coins || opt.dispositions > 0 || opt.soft_gates > 0 || opt.disposition_cues))
    throw std::invalid_argument("toy cue_levels cannot be combined with thinker_gates = coins, dispositions, disposition_cues or soft_gates");
  if (opt.plain_echoes && !(opt.echoes > 0)) throw std::invalid_argument("toy plain_echoes needs echoes > 0");
  if (opt.echo_again > 0 && !(opt.echoes > 0)) throw std::invalid_argument("toy echo_again needs echoes > 0");
  if (opt.thinker_corrects < 1 && opt.dispositions > 0) throw std::invalid_argument("toy thinker_corrects < 1 cannot be combined with dispositions");
  if (opt.min_steps < 1 || opt.max_steps > 4 || opt.min_steps > opt.max_steps)
    throw std::invalid_argument("toy steps must satisfy 1 <= min_steps <= max_steps <= 4");
  if (opt.n_problems < 0) throw std::invalid_argument("toy n_problems must be >= 0");
}

// 53 hidden bits of trace `index`, a hash of (seed, salt, index) apart from every stream of the trace.
uint64_t trace_bits(const ToyCorpusOptions& opt, uint64_t salt, int64_t index) {
  return mix64(mix64(opt.seed ^ salt) ^ static_cast<uint64_t>(index)) >> 11;
}

// A hidden per-trace coin of probability p: a hash of (seed, salt, index), apart from every stream of the
// trace, so that p = 0 draws nothing and leaves the corpus as it was.
bool trace_coin(const ToyCorpusOptions& opt, uint64_t salt, int64_t index, double p) {
  return p > 0 && static_cast<double>(trace_bits(opt, salt, index)) * 0x1.0p-53 < p;
}

// A hidden uniform draw from 0..n-1 keyed like trace_coin.
int64_t trace_draw(const ToyCorpusOptions& opt, uint64_t salt, int64_t index, int64_t n) {
  return static_cast<int64_t>(trace_bits(opt, salt, index) % static_cast<uint64_t>(n));
}

TraceModes trace_modes(const ToyCorpusOptions& opt, int64_t index) {
  if (opt.style != "thinker") return {};
  const double p = opt.dispositions;
  return {trace_coin(opt, 0x6261636B747261ULL, index, p), trace_coin(opt, 0x756E63657274ULL, index, p), trace_coin(opt, 0x74657374696EULL, index, p)};
}

ToyProblem make_problem(const ToyCorpusOptions& opt, int64_t index) {
  using enum ToyPhrasingList;
  Rng g{mix64(opt.seed) ^ mix64(static_cast<uint64_t>(index) + 0x5851F42D4C957F2DULL)};
  const int k = static_cast<int>(g.range(opt.min_steps, opt.max_steps));
  const Spec spec = problem_templates()[static_cast<size_t>(g.range(0, static_cast<int64_t>(problem_templates().size()) - 1))](g, k);
  const std::vector<int64_t> truth = exact_values(spec);

  Rng coins{mix64(opt.seed ^ 0xA0761D6478BD642FULL) ^ mix64(static_cast<uint64_t>(index) + 0xE7037ED1A0B428DBULL)};
  const bool thorough = opt.style == "thinker" && trace_coin(opt, 0x7468726F756768ULL, index, opt.thorough);
  const TraceModes modes = trace_modes(opt, index);
  const std::array<int, 3> levels = toy_cue_levels(opt, index);
  TraceBuilder tb{opt, spec, opt.style == "thinker", g, coins, thorough, modes, levels, {}, {}, 0};
  tb.write();
  ToyProblem p;
  p.final_answer = S(tb.work.back());
  const int64_t answer_begin = tb.tw.cp;
  tb.tw.raw(fill(phrase(g, final_answer), {{"{n}", p.final_answer}}));

  char id[32];
  std::snprintf(id, sizeof id, "toy-%06lld", static_cast<long long>(index));
  p.id = id;
  p.template_name = spec.tmpl;
  p.question = spec.question;
  if (opt.disposition_cues) {
    const bool on[3] = {modes.backtracking, modes.uncertainty, modes.testing};
    for (int m = 0; m < 3; ++m)
      if (on[m]) p.question += std::string(" ") + toy_disposition_cue(m);
  }
  p.question += toy_cue_levels_text(levels);
  p.answer = S(truth.back());
  p.style = opt.style;
  p.split = static_cast<double>(mix64(fnv1a(p.id)) >> 11) * 0x1.0p-53 < opt.test_fraction ? "test" : "train";
  p.text = std::move(tb.tw.text);
  p.sentences = std::move(tb.tw.sentences);
  p.answer_begin = answer_begin;
  p.answer_end = tb.tw.cp;
  p.n_steps = static_cast<int64_t>(spec.steps.size());
  p.slip = tb.n_slips > 0;
  p.slip_uncorrected = p.final_answer != p.answer;  // the base style keeps slips, the thinker only with thinker_corrects < 1
  return p;
}

}  // namespace

std::array<int, 3> toy_cue_levels(const ToyCorpusOptions& opt, int64_t index) {
  if (!opt.cue_levels || opt.style != "thinker") return {0, 0, 0};
  static constexpr int kLevels[8] = {1, 2, 3, 4, 6, 7, 8, 9};
  static constexpr uint64_t kSalts[3] = {0x6C76626B7472ULL, 0x6C76756E6365ULL, 0x6C7674657374ULL};
  std::array<int, 3> k{};
  for (size_t m = 0; m < 3; ++m) k[m] = kLevels[trace_draw(opt, kSalts[m], index, 8)];
  return k;
}

std::string toy_cue_levels_text(const std::array<int, 3>& levels) {
  static const char* const names[3] = {"Slips", "Doubts", "Checks"};
  std::string s;
  for (size_t m = 0; m < 3; ++m)
    if (levels[m] > 0) s += std::string(" ") + names[m] + ": " + std::to_string(levels[m]) + " in 10.";
  return s;
}

const char* toy_disposition_cue(int mode) {
  static const char* const cues[3] = {"Work fast.", "Say how sure you are.", "Check every result."};
  return cues[mode];
}

const std::array<int, 10>& toy_gate_permutation(ToyGate kind) {
  // Last digits are far from uniform (products of small numbers; travel distances end in 0), so each
  // permutation orders the digits such that the first round(10 * rate) of them cover about that share
  // of the steps of the default corpus (corpus.h). The three digit-of-value gates start with disjoint
  // pairs, so at rates up to 0.2 a step shows at most one of adding-knowledge, uncertainty, testing.
  static const std::array<std::array<int, 10>, 5> perms = {{
      {3, 7, 4, 5, 6, 0, 1, 9, 8, 2},  // slip, on the first operand's units digit: order 5 6 9 0 2 3 4 1 8 7
      {4, 7, 6, 2, 0, 1, 9, 3, 8, 5},  // knowledge: order 4 5 3 7 0 9 2 1 8 6
      {8, 1, 4, 6, 2, 3, 5, 7, 0, 9},  // uncertainty: order 8 1 4 5 2 6 3 7 0 9
      {6, 2, 0, 8, 3, 4, 1, 5, 9, 7},  // testing: order 2 6 1 4 5 7 0 9 3 8
      {9, 4, 6, 2, 7, 3, 5, 1, 8, 0},  // recheck (toy.rechecks): order 9 7 3 5 1 6 2 4 8 0, the rare digits first
                                       // (not tuned: 0.4 covers about 20% of the steps)
  }};
  return perms[static_cast<size_t>(kind)];
}

bool toy_gate(ToyGate kind, int64_t digit, double rate) {
  if (digit < 0 || digit > 9) throw std::invalid_argument("toy gate digit must be in 0..9");
  return toy_gate_permutation(kind)[static_cast<size_t>(digit)] < static_cast<int>(std::lround(10 * rate));
}

std::vector<ToyProblem> toy_corpus_generate(const ToyCorpusOptions& opt) {
  check_options(opt);
  std::vector<ToyProblem> out;
  out.reserve(static_cast<size_t>(opt.n_problems));
  for (int64_t index = 0; index < opt.n_problems; ++index) out.push_back(make_problem(opt, index));
  return out;
}

std::string toy_problem_to_json_line(const ToyProblem& p) {
  nlohmann::json spans = nlohmann::json::array();
  for (const auto& s : p.sentences) spans.push_back({{"label", s.label}, {"begin", s.begin}, {"end", s.end}});
  nlohmann::json j = {{"id", p.id},
                      {"template", p.template_name},
                      {"question", p.question},
                      {"answer", p.answer},
                      {"final_answer", p.final_answer},
                      {"style", p.style},
                      {"split", p.split},
                      {"n_steps", p.n_steps},
                      {"slip", p.slip},
                      {"slip_uncorrected", p.slip_uncorrected},
                      {"text", p.text},
                      {"sentences", spans},
                      {"answer_begin", p.answer_begin},
                      {"answer_end", p.answer_end}};
  return j.dump();
}

ToyCorpusOptions toy_corpus_options(const Config::Toy& toy) {
  ToyCorpusOptions o;
  o.seed = toy.seed;
  o.n_problems = toy.n_problems;
  o.style = std::string(option_name(toy.style));
  o.thinker_coins = toy.thinker_gates == ToyGates::coins;
  o.base_knows = toy.base_knows;
  o.thorough = toy.thorough;
  o.dispositions = toy.dispositions;
  o.soft_gates = toy.soft_gates;
  o.disposition_cues = toy.disposition_cues;
  o.cue_levels = toy.cue_levels;
  o.echoes = toy.echoes;
  o.plain_echoes = toy.plain_echoes;
  o.echo_again = toy.echo_again;
  o.plain_backtracking = toy.plain_backtracking;
  o.thinker_corrects = toy.thinker_corrects;
  o.rechecks = toy.rechecks;
  o.slip_rate = toy.slip_rate;
  o.example_testing_rate = toy.example_testing_rate;
  o.uncertainty_rate = toy.uncertainty_rate;
  o.adding_knowledge_rate = toy.adding_knowledge_rate;
  o.min_steps = toy.min_steps;
  o.max_steps = toy.max_steps;
  o.test_fraction = toy.test_fraction;
  return o;
}

}  // namespace ts
