// Planted-truth reasoning world, part 1: a synthetic corpus of arithmetic word problems with thinking
// traces whose every sentence carries a known behaviour label (the six labels of ALGORITHMS §A.3).
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
// sentence break of ALGORITHMS §B.3 (no ';', '\n', decimals, single-letter abbreviations, "k!").
//
// Rates are per problem: with probability slip_rate one deduction step is written with a wrong value
// (thinker: the next sentence is a backtracking correction and the computation goes on with the right
// value; base: the slip stays and propagates, so the final answer is wrong); with probability
// example_testing_rate one step is checked by its inverse operation (thinker only); with probability
// uncertainty_rate one uncertainty remark follows a deduction (thinker only); with probability
// adding_knowledge_rate one recalled fact is stated (both styles).
//
// Deterministic: problem i depends only on (seed, i), through a splitmix64 stream of our own (no
// implementation-defined std distributions), so a corpus of N problems is a prefix of one of M > N.
// The train/test split is a hash of the id.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/config.h"

namespace ts {

struct ToyCorpusOptions {
  uint64_t seed = 0;
  int64_t n_problems = 2000;
  std::string style = "thinker";  // thinker | base
  double slip_rate = 0.3;
  double example_testing_rate = 0.4;
  double uncertainty_rate = 0.3;
  double adding_knowledge_rate = 0.3;
  int64_t min_steps = 1, max_steps = 4;
  double test_fraction = 0.1;
};

// The options of the [toy] config section.
ToyCorpusOptions toy_corpus_options(const Config::Toy& toy);

// The six behaviour labels, in the order of ALGORITHMS §A.3.
const std::vector<std::string>& toy_behaviour_labels();

// The phrasings of one behaviour (placeholders in braces: {w} {W} {e} {r} {x} {c} {g} {f}); for tests
// and documentation. Unknown label: empty.
const std::vector<std::string>& toy_phrasings(const std::string& label);

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
  bool slip = false;              // a slip was planted
  bool slip_uncorrected = false;  // base style: the slip stays and the final answer is wrong
};

// Throws std::invalid_argument on bad options (unknown style, rates outside [0,1], steps outside 1..4).
std::vector<ToyProblem> toy_corpus_generate(const ToyCorpusOptions& opt);

// One JSON object (no trailing newline): id, template, question, answer, final_answer, style, split,
// n_steps, slip, slip_uncorrected, text, sentences [{label, begin, end}], answer_begin, answer_end.
std::string toy_problem_to_json_line(const ToyProblem& p);

}  // namespace ts
