// Artifact `sweep summary` (docs/run-layout.md): what `reduce` writes, <run.dir>/sweep/summary.h5
// (format thinksteer.sweep_summary) with summary.csv (one row per point x label) and missing.txt
// beside it. /labels [K] str, /steerable [K] u8, /points/<field> [P] (task, key, dataset, kind,
// vector, layers, layer, hook, coef, op, positions, seed, n_prompts, accuracy, think_tokens, closed,
// baseline), /fraction/{token_share,span_share} [P, K] f64, /delta/{token_share,span_share}{,_lo,_hi}
// [P, K] f64, /delta/{accuracy,think_tokens}{,_lo,_hi} [P] f64; root attributes format_version,
// partial, n_tasks, n_missing, missing, bootstrap, ci and the artifact identity.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "artifacts/artifact.h"

namespace ts::artifacts {

inline constexpr Format SWEEP_SUMMARY{"thinksteer.sweep_summary", 1, "reduce"};
inline constexpr Location SWEEP_SUMMARY_H5{"sweep", "summary.h5"};
inline constexpr Location SWEEP_SUMMARY_CSV{"sweep", "summary.csv"};
inline constexpr Location SWEEP_MISSING{"sweep", "missing.txt"};

// A mean with its bootstrap interval, per point (or per point x label, row-major).
struct Delta {
  std::vector<double> mean, lo, hi;
  void resize(size_t n, double fill) { mean.assign(n, fill), lo.assign(n, fill), hi.assign(n, fill); }
};

// The summary of P points over K labels.
struct SweepSummary {
  std::vector<std::string> labels;
  std::vector<uint8_t> steerable;  // [K]
  // per point
  std::vector<int64_t> task, layer, seed, n_prompts, baseline;
  std::vector<std::string> key, dataset, kind, vector, layers, hook, op, positions;
  std::vector<double> coef, accuracy, think_tokens, closed;
  std::vector<double> token_share, span_share;  // [P, K]
  Delta d_token_share, d_span_share;            // [P, K]
  Delta d_accuracy, d_think_tokens;             // [P]
  size_t n_points() const { return task.size(); }
};

// What a summary file says besides the numbers.
struct SummaryRun {
  bool partial = false;
  int64_t n_tasks = 0, n_missing = 0;
  std::string missing;  // an --array list
  int64_t bootstrap = 0;
  double ci = 0;
};

std::vector<h5::DatasetSpec> sweep_summary_datasets(int64_t P, int64_t K);
// Writes the summary to `file` (created).
void write_sweep_summary(const std::filesystem::path& file, const SweepSummary& s, const SummaryRun& run, const json& provenance);
// summary.csv: one row per point x label.
std::string sweep_summary_csv(const SweepSummary& s);
// A summary file, checked for identity and for every dataset's shape ([P], [K], [P, K]). Throws
// InputError naming the file and the dataset.
SweepSummary read_sweep_summary(const std::filesystem::path& file);

}  // namespace ts::artifacts
