// Artifact `taxonomy summary` (docs/run-layout.md): what `reduce` writes for a taxonomy sweep,
// <run.dir>/taxonomy/summary.h5 (format thinksteer.taxonomy_summary) and summary.csv (one row per
// group). A group is one (layer, K, method) of the sweep; each metric of its tasks is summarised over
// the finished seeds as the mean and a 95% t interval (NaN bounds with one seed).
//   /groups/{layer, k, n_seeds} [G] i64, /groups/method [G] str,
//   /groups/<metric>, <metric>_lo, <metric>_hi [G] f64 for every metric of /metrics [M] str
//   /groups/score [G] f64        the selection score of the group (docs/algorithms.md §B.6, "Choosing
//                                (layer, K) offline"); NaN for groups the rule does not judge
//   root attributes: rule (the selection rule in words), selected_layer, selected_k, selected_method
//   (-1 / "" when none), partial, n_tasks, n_missing, missing, and the artifact identity.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "artifacts/artifact.h"

namespace ts::artifacts {

inline constexpr Format TAXONOMY_SUMMARY{"thinksteer.taxonomy_summary", 1, "reduce"};

struct TaxonomySummary {
  std::vector<std::string> metrics;              // [M]
  std::vector<int64_t> layer, k, n_seeds;        // [G]
  std::vector<std::string> method;               // [G]
  std::vector<double> mean, lo, hi;              // [G, M] row-major
  std::vector<double> score;                     // [G]
  std::string rule;
  int64_t selected = -1;                         // group index
  size_t n_groups() const { return layer.size(); }
};

struct TaxonomySummaryRun {
  bool partial = false;
  int64_t n_tasks = 0, n_missing = 0;
  std::string missing;
};

std::vector<h5::DatasetSpec> taxonomy_summary_datasets(const TaxonomySummary& s);
void write_taxonomy_summary(const std::filesystem::path& file, const TaxonomySummary& s, const TaxonomySummaryRun& run, const json& provenance);
std::string taxonomy_summary_csv(const TaxonomySummary& s);
// Checked for identity and shapes; throws InputError naming the file and the dataset.
TaxonomySummary read_taxonomy_summary(const std::filesystem::path& file);

}  // namespace ts::artifacts
