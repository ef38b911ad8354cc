// Artifact `basevec summary` (docs/run-layout.md): what `reduce` writes for a base-vector sweep,
// <run.dir>/basevec/summary.h5 (format thinksteer.basevec_summary) + summary.csv, and selected.json
// naming per method the task reduce chose (the best seed on the selection rollouts: lowest top-k KL for
// correction sets, lowest log10 CE for linear sets; docs/algorithms.md §B.10 "best of seeds").
//   /task, /seed [N] i64, /method, /key [N] str, /selection [N] f64 (the task's selection metric),
//   /selected [N] i64 (1: chosen for its method); root attributes: rule, partial, metrics (JSON per task)
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "artifacts/artifact.h"
#include "core/json.h"

namespace ts::artifacts {

inline constexpr Format BASEVEC_SUMMARY{"thinksteer.basevec_summary", 1, "reduce"};

struct BasevecSummary {
  std::vector<int64_t> task, seed, selected;
  std::vector<std::string> method, key;
  std::vector<double> selection;
  std::vector<json> metrics;
  std::string rule;
  bool partial = false;
};

std::vector<h5::DatasetSpec> basevec_summary_datasets(int64_t n);
void write_basevec_summary(const std::filesystem::path& file, const BasevecSummary& s, const json& provenance);
std::string basevec_summary_csv(const BasevecSummary& s);
// selected.json: {"<method>": {"key", "task", "seed", "file", "vectors"}}.
json basevec_selected_json(const BasevecSummary& s, const std::filesystem::path& tasks_dir);

}  // namespace ts::artifacts
