// Artifacts of the intervention sweep (sweep.kind = intervene; docs/directions.md), under <run.dir>/intervene/:
//   tasks/<key>.h5   one manifest row (format thinksteer.intervene_task): per prompt /prompt_id, /logp,
//                    /logp_clean, /logp_source (NaN unless patching), /exact, /exact_clean, /n_answer_tokens;
//                    root attributes task, key, dataset, mode, layer, site, positions, config_sha256
//   summary.h5/.csv  `reduce` (format thinksteer.intervene_summary): one row per finished task with the means and
//                    paired-bootstrap intervals of docs/directions.md
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "artifacts/artifact.h"
#include "artifacts/sweep_manifest.h"
#include "core/json.h"
#include "io/h5store.h"

namespace ts::artifacts {

inline constexpr Format INTERVENE_TASK{"thinksteer.intervene_task", 1, "sweep run"};
inline constexpr Format INTERVENE_SUMMARY{"thinksteer.intervene_summary", 1, "reduce"};
inline constexpr SweepLayout INTERVENE_SWEEP{"intervene"};

struct InterveneTask {
  int64_t task = 0, layer = -1;
  std::string key, dataset, mode, site, positions, config_sha256;
  std::vector<std::string> prompt_id;
  std::vector<double> logp, logp_clean, logp_source;
  std::vector<uint8_t> exact, exact_clean;
  std::vector<int64_t> n_answer_tokens;
  size_t n() const { return prompt_id.size(); }
};
std::vector<h5::DatasetSpec> intervene_task_datasets(int64_t n);
void write_intervene_task(const std::filesystem::path& file, const InterveneTask& t, const json& provenance);
InterveneTask read_intervene_task(const std::filesystem::path& file);

struct InterveneSummary {
  bool partial = false;
  std::vector<std::string> dataset, mode, site;
  std::vector<int64_t> task, layer, n;
  // Per row; NaN where a column does not apply (recovery outside patching).
  std::vector<double> logp, logp_clean, delta_logp, delta_logp_lo, delta_logp_hi, exact, exact_clean, delta_exact, delta_exact_lo,
      delta_exact_hi, recovery, recovery_lo, recovery_hi;
  size_t rows() const { return task.size(); }
};
std::vector<h5::DatasetSpec> intervene_summary_datasets(int64_t rows);
void write_intervene_summary(const std::filesystem::path& file, const InterveneSummary& s, const json& provenance);
std::string intervene_summary_csv(const InterveneSummary& s);

}  // namespace ts::artifacts
