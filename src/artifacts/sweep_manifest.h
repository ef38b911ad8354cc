// Artifact `sweep manifest` (docs/run-layout.md): the plan of a sweep of any kind (sweep.kind: steer,
// taxonomy), <run.dir>/<dir>/manifest.jsonl with one JSON object per Slurm array task, in task order,
// each with at least "task" (0, 1, ...) and "key" (16 hex digits naming the task's parameters; the task
// file is <dir>/tasks/<key>.h5), and plan.json beside it (n_tasks, manifest_sha256, the kind, and what
// the kind records: its inputs and the config sections that decide the plan). What a row holds besides
// task and key is the kind's (steer/sweep_plan.h SweepPoint, taxonomy/sweep_point.h TaxonomyPoint).
// `reduce` writes missing.txt beside it; the kind's summary lives in the same directory.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "artifacts/artifact.h"

namespace ts::artifacts {

// Where a sweep's files live: <run.dir>/<dir>/ ("sweep" for steering, "taxonomy" for the taxonomy).
struct SweepLayout {
  const char* dir;
  std::filesystem::path root(const Config& cfg) const { return std::filesystem::path(cfg.run.dir) / dir; }
  std::filesystem::path manifest(const Config& cfg) const { return root(cfg) / "manifest.jsonl"; }
  std::filesystem::path plan(const Config& cfg) const { return root(cfg) / "plan.json"; }
  std::filesystem::path missing(const Config& cfg) const { return root(cfg) / "missing.txt"; }
  std::filesystem::path task(const Config& cfg, const std::string& key) const { return root(cfg) / "tasks" / (key + ".h5"); }
};
inline constexpr SweepLayout STEER_SWEEP{"sweep"};
inline constexpr Location SWEEP_MANIFEST{"sweep", "manifest.jsonl"};  // the steering sweep's (STEER_SWEEP)
inline constexpr Location SWEEP_PLAN{"sweep", "plan.json"};

// Rank 0: writes manifest.jsonl and plan.json atomically, only when the manifest's text changes (so a
// re-plan of the same sweep leaves the files, and their times, alone). `plan` is what plan.json holds
// besides n_tasks and manifest_sha256. Returns true when written.
bool write_sweep_manifest(const Config& cfg, const SweepLayout& layout, const std::vector<json>& rows, json plan);

// Every row, checked for what all kinds share: a JSON object per line, "task" numbered 0, 1, ... in
// order, "key" of 16 hex digits, keys distinct, at least one row. The kind checks the rest. Throws
// InputError naming the file, the line and the field.
std::vector<json> read_sweep_manifest_rows(const Config& cfg, const SweepLayout& layout);

}  // namespace ts::artifacts
