// Artifact `hybrid summary` (docs/run-layout.md): what `reduce` writes for a hybrid sweep,
// <run.dir>/hybrid/summary.h5 (format thinksteer.hybrid_summary) + summary.csv, one row per finished task:
//   /task, /layer, /seed, /n [R] i64; /key, /dataset, /role, /rule, /ablation [R] str
//   /accuracy, /accuracy_lo, /accuracy_hi [R] f64     mean correctness over the prompts with a reference,
//                                                     percentile bootstrap interval over prompts
//   /gap, /gap_lo, /gap_hi [R] f64                    (row − base) / (thinking − base) on the dataset's
//                                                     prompts, bootstrap over prompts (NaN: base and thinking rows)
//   /vs_hybrid, /vs_hybrid_lo, /vs_hybrid_hi [R] f64  paired difference hybrid − row, the hybrid being the
//                                                     row's (dataset, layer, rule) with ablation none (NaN otherwise)
//   /steered_share, /disagree_share, /hit_share [R] f64   per prompt steered steps / new tokens (and disagreements /
//                                                     new tokens, steered steps emitting the thinking model's token /
//                                                     steered steps), mean over prompts
//   /think_tokens [R] f64                             mean thinking length
//   /category_usage [R, C] f64                        share of steered steps per category
//   root attributes: partial, bootstrap, ci, categories
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "artifacts/artifact.h"

namespace ts::artifacts {

inline constexpr Format HYBRID_SUMMARY{"thinksteer.hybrid_summary", 1, "reduce"};

struct HybridSummary {
  std::vector<int64_t> task, layer, seed, n;
  std::vector<std::string> key, dataset, role, rule, ablation;
  std::vector<double> accuracy, accuracy_lo, accuracy_hi, gap, gap_lo, gap_hi, vs_hybrid, vs_hybrid_lo, vs_hybrid_hi;
  std::vector<double> steered_share, disagree_share, hit_share, think_tokens;
  std::vector<double> category_usage;  // [R, C]
  int64_t categories = 0, bootstrap = 0;
  double ci = 0.95;
  bool partial = false;
  size_t rows() const { return task.size(); }
};

std::vector<h5::DatasetSpec> hybrid_summary_datasets(int64_t rows, int64_t categories);
void write_hybrid_summary(const std::filesystem::path& file, const HybridSummary& s, const json& provenance);
std::string hybrid_summary_csv(const HybridSummary& s);

}  // namespace ts::artifacts
