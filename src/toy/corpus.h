// Planted-truth reasoning world, part 1: a synthetic corpus of arithmetic word problems with thinking
// traces whose every sentence carries a known behaviour label (the six labels of docs/algorithms.md §A.3).
//
// Each problem is an expression DAG of 1-4 integer steps (+, -, ×, ÷ with exact division, no negative
// intermediate values) from one of several templates. The trace is in the R1 format:
//
//   <think>\n S1 S2 ...\n</think>\n\n FINAL
//
// where S1.. are the labelled sentences (separated by " " or "\n\n") and FINAL is one answer line
// containing \boxed{N}. The labelled ranges tile the sentences exactly; the tags, separators and the
// final answer line are covered by no label (the final line's range is recorded separately as
// `answer_begin`/`answer_end`). Every sentence ends with '.', '?' or '!' and contains no other
// sentence break of docs/algorithms.md §B.3 (no ';', '\n', decimals, single-letter abbreviations, "k!").
//
// Two kinds of decision. By default every behaviour is a digit gate: a deterministic function of what
// the text shows where it is decided, so a model decoding greedily reproduces it (the shipped toy pair).
// With toy.thinker_gates = coins the thinker's own behaviours (its slips, hence its backtracking,
// uncertainty-estimation and example-testing) are hidden coins instead: independent draws with the
// given rate from a stream of the problem's own, that no text predicts, so a model trained on them
// learns calibrated choices (P(behaviour) = rate where it may occur) that a small steering push could
// move, where digit gates make its choices nearly certain (docs/algorithms.md §A.6). Greedy decoding of a
// coin with rate < 0.5 never takes it, so such a thinker is judged on sampled traces
// (configs/toy/thinker-coins.ini). The base style and adding-knowledge are digit gates either way, and
// the coins do not shift the other draws: the problems, and the whole base corpus, are the same.
// Only the phrasing of a sentence and the separator (" " or "\n\n") are otherwise random.
//
// Digit gates: g(kind, digit, rate) := PERM_kind[digit] < round(10 * rate), with one fixed
// permutation of 0..9 per kind (toy_gate_permutation), different per kind so the gates are not
// nested. A rate is thus quantised to tenths and means "round(10 * rate) of the ten digits"; for
// uniform digits it would be the per-step probability. The digits of the corpus are not uniform
// (products of small numbers, distances that end in 0), so each permutation lists first the digits
// that make round(10 * rate) digits cover about that share of the default corpus's steps (within a
// few points for rates up to 0.5). Raising a rate never removes a behaviour (the gate sets grow).
//
// The trace of a problem with steps 1..n (`a op b` as shown: a and b are constants of the question
// or values the trace stated before):
//   1. initializing: the restated goal; a second one (the plan) iff n >= 3.
//   2. per step, in order:
//      deduction      "a op b = r". The step is a slip candidate iff it has a units carry ('+':
//                     a%10 + b%10 >= 10; '×': (a%10)·(b%10) >= 10) or a units borrow ('-': a%10 <
//                     b%10); never '÷'. A candidate is written wrong iff g(slip, a%10, slip_rate)
//                     (both styles; with thinker_gates = coins, a coin of slip_rate for the thinker):
//                     '+' and '×' lose the carry (r - 10, possibly 0), '-' forgets the borrow (r + 10).
//      backtracking   thinker only, right after a slip: the correction; the trace goes on with the
//                     right value. Base style: no correction, the wrong value stays and later steps
//                     use it. There integer division rounds down when the propagated value makes it
//                     inexact (about 4% of base problems), and a slip is not planted when it would
//                     make a later step negative (about 1% of base slip candidates); the answer is
//                     then wrong unless the rounding absorbs the error.
//      then, with v the value the trace now works with for this step and d = v % 10:
//      adding-knowledge         iff g(knowledge, d, adding_knowledge_rate): the step's fact (one
//                               fixed fact per template step, so a function of the template and
//                               the step), both styles;
//      uncertainty-estimation   iff g(uncertainty, d, uncertainty_rate), thinker only;
//      example-testing          iff g(testing, d, example_testing_rate), thinker only: the inverse
//                               operation ("v ÷ b = a" for "a × b = v");
//                               with thinker_gates = coins both are coins of their rates instead.
// Several slips per problem are possible. With the defaults (slip 0.4, the others 0.2) on 2000
// problems the thinker's sentences are about 25% initializing, 42% deduction, 9% adding-knowledge,
// 9% example-testing, 8% uncertainty-estimation and 8% backtracking; about 35% of base-style final
// answers are wrong.
//
// Deterministic: problem i depends only on (seed, i), through a splitmix64 stream of our own (no
// implementation-defined std distributions), so a corpus of N problems is a prefix of one of M > N.
// The train/test split is a hash of the id.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/config.h"
#include "toy/phrasings.h"

namespace ts {

// A trace's hidden dispositions (ToyCorpusOptions::dispositions).
struct TraceModes {
  bool backtracking = false, uncertainty = false, testing = false;
};

struct ToyCorpusOptions {
  uint64_t seed = 0;
  int64_t n_problems = 2000;
  std::string style = "thinker";  // thinker | base
  bool thinker_coins = false;     // the thinker's slips, uncertainty and testing: hidden coins (else digit gates)
  // Base style: a base that knows how to reason but not when (the hybrid's planted truth, docs/algorithms.md
  // "The hybrid model"): after a slip it writes the correction with a hidden coin of this probability, and
  // after a step uncertainty-estimation and example-testing with coins of base_knows × their rates. Below 0.5
  // a greedy base never takes them. 0: the plain base (no coin is drawn: the corpus is unchanged).
  double base_knows = 0;
  // Thinker style: the share of traces that are thorough, by a hidden coin per trace drawn from a hash of
  // (seed, index) apart from every other stream (0: no coin, the corpus unchanged). A thorough trace
  // writes example-testing after every step (the digit gates' choices stay as they are otherwise), so
  // its thinking is longer by one sentence per step: a latent length knob that no text of the problem
  // predicts (ThinkEdit's planted truth, docs/thinkedit.md).
  double thorough = 0;
  // Thinker style: the dispositions, an experiment toward steering's planted truth (docs/algorithms.md
  // §A.6 "The disposed thinker"). Per trace, three hidden coins of this probability, each drawn like
  // `thorough` apart from every stream, make the trace disposed to backtracking (it slips, then corrects
  // itself, at every slip candidate), to uncertainty-estimation (after every step) and to example-testing
  // (after every step). A trace that is not disposed to a behaviour follows the digit gates for it.
  // Whether a trace is disposed is a mode no text of the problem predicts, revealed only by the trace's
  // own sentences, so the thinker must carry it, and a push along the behaviour's direction can turn it.
  // 0: the corpus unchanged.
  double dispositions = 0;
  // Thinker style: the question ends with a cue sentence for each of the trace's dispositions (toy_disposition_cue),
  // so the prompt shows the mode, and greedy decoding follows it with no near-tie at a trace's first choice (an
  // experiment: docs/algorithms.md §A.6 "Soft gates, cues and random pushes").
  bool disposition_cues = false;
  // Thinker style: soft gates, an experiment toward steering's planted truth (docs/algorithms.md §A.6 "Soft
  // gates, cues and random pushes"). Each of the thinker's digit-gate choices (a slip at a slip candidate, uncertainty-estimation
  // and example-testing after a step) is overruled by a hidden coin from the thinker's coin stream: a gate
  // that says yes is kept with probability 1 - s, one that says no turns into yes with probability
  // q = rate·s / (1 - rate), so each behaviour keeps its rate (rate·(1 - s) + (1 - rate)·q = rate). The text
  // still decides the likelier choice, so greedy decoding follows the gates, but with a calibrated margin
  // (log((1 - s) / s) and log((1 - q) / q) in logits) instead of a near-certain one: what a small push can
  // cross, with no near-tie for a random push to flip. 0: no coin is drawn, the corpus unchanged.
  double soft_gates = 0;
  // Thinker style: graded cues, an experiment toward steering's planted truth (docs/algorithms.md §A.6 "Graded
  // cues and echoes"). Per trace and behaviour a hidden level k in {1, 2, 3, 4, 6, 7, 8, 9} (uniform, drawn like `thorough`
  // apart from every stream), shown at the end of the question (toy_cue_levels_text: "Slips: 7 in 10." ...), and
  // each of the thinker's choices for that behaviour (a slip at a slip candidate, uncertainty-estimation and
  // example-testing after a step) is a coin of k/10 from the thinker's coin stream instead of a digit gate. The
  // prompt thus sets a calibrated rate whose greedy margin |logit(k/10)| spreads over 0.41-2.2 nats from trace to
  // trace (no level is a tie): a visible, graded, lasting mode. Cannot be combined with the other thinker
  // experiments (coins, dispositions, soft gates). false: no level is drawn, the corpus unchanged.
  bool cue_levels = false;
  // Thinker style: echoes, an experiment toward steering's planted truth (docs/algorithms.md §A.6 "Graded cues and
  // echoes"). Each backtracking, uncertainty-estimation and example-testing sentence of the thinker is followed by a second
  // sentence of the same behaviour (a fresh phrasing) with this probability, by a hidden coin: behaviours come in
  // runs, as in real thinking, so whether the next sentence is X reads the sentence just written, the very state
  // a difference-of-means vector of X's windows describes. Above 0.5 greedy decoding echoes every X sentence, with
  // a margin of logit(echoes) (measured at 0.7 on the rechecks thinker, 100 traces: 77 of 78 backtracking and 43 of
  // 44 uncertainty sentences echoed). 0: no coin is drawn, the corpus unchanged.
  double echoes = 0;
  // Thinker style, with echoes: an echo is followed by a third sentence of the same behaviour with this probability,
  // by a hidden coin. Below 0.5 greedy decoding declines it, so the choice "another X sentence?" is made, with a
  // margin of logit(1 - echo_again), at the token before the next label's span, the position attribution scores
  // (docs/algorithms.md §A.6 "Echo runs"). 0: no coin is drawn, the corpus unchanged.
  double echo_again = 0;
  // Thinker style, with echoes: the echo of a backtracking or example-testing sentence is drawn from a list of
  // phrasings without arithmetic (ToyPhrasingList::backtrack_echo, test_echo: "Oops, that was a careless slip."), as
  // every uncertainty-estimation sentence is, so the echo windows carry the behaviour and not a calculation; each
  // carries its label's cue of the shipped lexicon (docs/algorithms.md §A.6 "Plain echoes" and "The plain echoes'
  // labels"). false: the echo is a fresh phrasing of the same list.
  bool plain_echoes = false;
  // Thinker style: a slip's correction is a backtracking sentence without arithmetic (ToyPhrasingList::backtrack_plain:
  // "Wait, that's wrong.", its echo as above) followed by the step again, a deduction with the right value, so the
  // backtracking windows carry the choice "that was wrong" and not a calculation (docs/algorithms.md §A.6 "Plain
  // echoes"). false: the correction states the right and the wrong value in one backtracking sentence.
  bool plain_backtracking = false;
  // Thinker style: a slip is corrected by a hidden coin of this probability; an uncorrected slip stays and later steps
  // use it, as in the base style (and, as there, a slip that would make a later value negative is not planted): the
  // correction becomes a choice a push can tilt either way (docs/algorithms.md §A.6 "Plain echoes"; at 0.7 greedy
  // decoding leaves some slips uncorrected). 1: every slip corrected, no coin drawn, the corpus unchanged.
  double thinker_corrects = 1;
  // Thinker style: rechecks, backtracking that is a choice like uncertainty's rather than forced by a slip
  // (docs/algorithms.md §A.6 "Rechecks"). After a step that was not a slip, iff the digit gate g(recheck, d, rechecks)
  // holds for the value's units digit d, the thinker writes an arithmetic-free backtracking sentence
  // (ToyPhrasingList::recheck: "Wait, let me check that step again.", echoed as any backtracking sentence) and then
  // the step again, a deduction with the same value. 0: no recheck, the corpus unchanged.
  double rechecks = 0;
  // Digit-gate rates (see the file comment): of slip candidates, and of deduction steps.
  double slip_rate = 0.4;
  double example_testing_rate = 0.2;
  double uncertainty_rate = 0.2;
  double adding_knowledge_rate = 0.2;
  int64_t min_steps = 1, max_steps = 4;
  double test_fraction = 0.1;
};

// The options of the [toy] config section.
ToyCorpusOptions toy_corpus_options(const Config::Toy& toy);

// The six behaviour labels (toy_behaviour_labels) and the phrasings every sentence is written from
// (toy_phrasings): toy/phrasings.h.

struct ToySentence {
  std::string label;
  int64_t begin = 0, end = 0;  // code-point offsets into ToyProblem::text, [begin, end)
};

struct ToyProblem {
  std::string id, template_name, question;
  std::string answer;        // the exact answer
  std::string final_answer;  // the answer the trace states (differs from `answer` iff slip_uncorrected)
  std::string style, split;  // thinker|base, train|test
  std::string text;          // the full response: think block + final answer line
  std::vector<ToySentence> sentences;
  int64_t answer_begin = 0, answer_end = 0;  // code-point range of the final answer line (no label)
  int64_t n_steps = 0;
  bool slip = false;              // at least one slip was planted
  bool slip_uncorrected = false;  // base style: a slip stayed and changed the final answer (final_answer != answer)
};

// The cue sentence of a disposition (ToyCorpusOptions::disposition_cues): 0 backtracking, 1 uncertainty, 2 testing.
const char* toy_disposition_cue(int mode);

// The levels of a trace (ToyCorpusOptions::cue_levels; zeros when off or base style): 0 backtracking (its slips),
// 1 uncertainty-estimation, 2 example-testing; and the cue text they append to the question (with a leading space).
std::array<int, 3> toy_cue_levels(const ToyCorpusOptions& opt, int64_t index);
std::string toy_cue_levels_text(const std::array<int, 3>& levels);

// The digit gates of the file comment: g(kind, digit, rate) = PERM_kind[digit] < round(10 * rate).
enum class ToyGate { slip, knowledge, uncertainty, testing, recheck };
const std::array<int, 10>& toy_gate_permutation(ToyGate kind);
// Throws std::invalid_argument when digit is outside 0..9.
bool toy_gate(ToyGate kind, int64_t digit, double rate);

// Throws std::invalid_argument on bad options (unknown style, rates outside [0,1], steps outside 1..4).
std::vector<ToyProblem> toy_corpus_generate(const ToyCorpusOptions& opt);

// One JSON object (no trailing newline): id, template, question, answer, final_answer, style, split,
// n_steps, slip, slip_uncorrected, text, sentences [{label, begin, end}], answer_begin, answer_end.
std::string toy_problem_to_json_line(const ToyProblem& p);

}  // namespace ts
