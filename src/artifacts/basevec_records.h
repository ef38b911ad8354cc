// Artifact `basevec records` (docs/run-layout.md): what `thinksteer basevec collect` gathers from the
// thinking model's rollouts for training vectors on the base model (docs/algorithms.md §B.8, §B.10),
// <run.dir>/basevec/records.h5 (format thinksteer.basevec_records) and its `.done` marker.
//   /examples/id [E] str         rollout id (rows in the order of the generations file; skipped ones absent)
//   /examples/split [E] i64      0 train, 1 holdout (chooses the epoch), 2 selection (chooses the seed)
//   /examples/token_offset [E+1] first row of each example in /tokens (the last entry: their total)
//   /examples/base_first [E]     the base token at the alignment anchor; /examples/think_first [E] the
//                                thinking model's (basevec/align.h)
//   /tokens [N] i32              the base model's sequence of each example: base prompt + thinking text
//   /corrections/{example, position, category, target, base_top} [R] i64   every disagreement position:
//                                base position p (the base's argmax base_top at p differs from the rollout's
//                                next token target = tokens[p + 1]), and the thinking model's SAE class
//                                there (its activation at the aligned position, docs/algorithms.md §B.10)
//   /corrections/label [R] i64   the reference label (attribute labels) of the span holding the rollout's
//                                next token, -1 none (all -1 without basevec.reference_spans)
//   /corrections/topk_ids [R, K] i32, /corrections/topk_logp [R, K] f32   the thinking model's top-K there
//   /sentences/{example, begin, end, category} [S] i64   §B.8 examples: the base tokens [begin, end) of a
//                                thinking sentence of >= basevec.linear_min_words words, and the SAE class
//                                of its last token; category -1: the whole thinking text (the bias's examples)
//   root attributes: labels (JSON list of the reference labels, empty without), n_categories, sae_dir, sae_key, sae_layer, thinking_model, base_model, base_prompt,
//   cache_topk, stats (JSON: rollouts, skipped by reason, positions, disagreements per category), and
//   the artifact identity.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "artifacts/artifact.h"
#include "core/json.h"

namespace ts::artifacts {

inline constexpr Format BASEVEC_RECORDS{"thinksteer.basevec_records", 1, "basevec collect"};
inline constexpr Location BASEVEC_RECORDS_H5{"basevec", "records.h5"};

struct BasevecRecords {
  std::vector<std::string> id;
  std::vector<int64_t> split, token_offset{0}, base_first, think_first;
  std::vector<int32_t> tokens;
  // corrections
  std::vector<int64_t> c_example, c_position, c_category, c_target, c_base_top, c_label;
  std::vector<std::string> labels;  // reference labels (c_label indexes them)
  std::vector<int32_t> topk_ids;   // [R, K]
  std::vector<float> topk_logp;    // [R, K]
  // sentences
  std::vector<int64_t> s_example, s_begin, s_end, s_category;
  int64_t k = 0;  // cached top-K
  int64_t n_categories = 0;
  std::string sae_dir, sae_key, thinking_model, base_model, base_prompt;
  int64_t sae_layer = 0;
  json stats = json::object();

  int64_t n_examples() const { return static_cast<int64_t>(id.size()); }
  int64_t n_corrections() const { return static_cast<int64_t>(c_example.size()); }
  int64_t n_sentences() const { return static_cast<int64_t>(s_example.size()); }
};

std::vector<h5::DatasetSpec> basevec_records_datasets(int64_t examples, int64_t tokens, int64_t corrections, int64_t k, int64_t sentences);
void write_basevec_records(const std::filesystem::path& file, const BasevecRecords& r, const json& provenance);
// Checked for identity, shapes and ranges (positions inside their example, targets = the next token,
// categories in [0, C), splits 0..2, finite log-probs). Throws InputError naming the file and the dataset.
BasevecRecords read_basevec_records(const std::filesystem::path& file, const std::string& key);

}  // namespace ts::artifacts
