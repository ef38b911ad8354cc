// Planted-truth reasoning world: evaluation of generated traces against the corpus (toy/corpus.h).
//
// A toy model's greedy traces are split into sentences (docs/algorithms.md §B.3), every sentence is labelled
// by matching it against the corpus's phrasing templates, and the share of each behaviour among the
// sentences is compared with the share in the corpus the model was trained on. On the corpus itself
// splitting and labelling give back exactly the planted labels (tests/toy/test_toy_evaluate.cpp), so
// a difference measures the model, not the labeller. Answers are checked as in docs/algorithms.md §J: the
// last brace-matched \boxed{} else the last integer, equal to the reference as integers.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "core/sentences.h"
#include "toy/corpus.h"
#include "toy/phrasings.h"

namespace ts {

// The sentences of a trace: the generic §B.3 splitter (core/sentences.h), under its toy name.
using TextSpan = Sentence;
inline std::vector<TextSpan> toy_split_sentences(std::string_view thinking) { return split_sentences(thinking); }

// The behaviour label of one sentence: toy_label_sentence (toy/phrasings.h).

// The answer a response states: the stripped content of the last brace-matched \boxed{...}, else the
// last integer (with its '-' sign, if any) of the text; nullopt when there is neither.
std::optional<std::string> toy_extract_answer(std::string_view answer_text);
// True when both are integers ("[+-]?digits", surrounding white space ignored) of the same value.
bool toy_answers_equal(std::string_view a, std::string_view b);

// One generated trace (a row of generate/generations.jsonl).
struct ToyGeneration {
  std::string id, thinking, answer_text, reference_answer;
  bool thinking_closed = false;
};

struct ToyLabelShare {
  std::string label;
  int64_t generated_sentences = 0, corpus_sentences = 0;
  double generated_share = 0, corpus_share = 0;  // of all sentences (labelled or not), in [0, 1]
  double diff_pp = 0;                            // 100 * (generated_share - corpus_share)
};

struct ToyRowResult {
  std::string id;
  bool closed = false, correct = false;
  std::optional<std::string> answer;  // extracted from answer_text when the thinking closed
  int64_t sentences = 0, unlabelled = 0;
};

struct ToyEvalReport {
  int64_t n = 0, n_closed = 0, n_parseable = 0, n_correct = 0;
  double closed_rate = 0;     // thinking closed with </think>
  double parseable_rate = 0;  // closed and an answer extracted
  double accuracy = 0;        // closed, extracted and equal to the reference
  int64_t generated_sentences = 0, generated_unlabelled = 0;
  double unlabelled_share = 0;  // of the generated sentences
  int64_t corpus_problems = 0, corpus_sentences = 0;
  double corpus_accuracy = 0;  // corpus problems whose trace states the exact answer
  std::vector<ToyLabelShare> labels;  // the six, in toy_behaviour_labels() order
  double max_abs_diff_pp = 0;         // over the six labels
  std::vector<ToyRowResult> rows;
};

// Sentence shares of the generated traces (their thinking, closed or not) against those of `corpus`
// (its planted labels; pass the train split of the style the model was trained on).
ToyEvalReport toy_evaluate(const std::vector<ToyGeneration>& generated, const std::vector<ToyProblem>& corpus);

// The report as JSON: n, closed_rate, parseable_rate, accuracy (and their counts), sentences,
// unlabelled_share, labels {label: {generated_share, corpus_share, diff_pp, generated_sentences,
// corpus_sentences}}, max_abs_diff_pp, corpus {problems, sentences, accuracy}, rows [{id, closed,
// answer (null if none), correct, sentences, unlabelled}].
json toy_eval_report_json(const ToyEvalReport& report);

}  // namespace ts
