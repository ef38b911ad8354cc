// Artifact `sweep manifest` (docs/run-layout.md): <run.dir>/sweep/manifest.jsonl, one row per Slurm
// array task (steer/sweep_plan.h: SweepPoint, its key and JSON form), and plan.json beside it
// (n_tasks, manifest_sha256, vectors_file, the config sections that decide the plan).
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "artifacts/artifact.h"
#include "steer/sweep_plan.h"

namespace ts::artifacts {

inline constexpr Location SWEEP_MANIFEST{"sweep", "manifest.jsonl"};
inline constexpr Location SWEEP_PLAN{"sweep", "plan.json"};

// Rank 0: writes manifest.jsonl and plan.json atomically, only when the manifest's text changes (so a
// re-plan of the same sweep leaves the files, and their times, alone). Returns true when written.
bool write_sweep_manifest(const Config& cfg, const std::vector<SweepPoint>& points, const std::string& vectors_file);

// Every row, validated (steer/sweep_plan.h manifest_read: a row whose key does not match its
// parameters is refused).
std::vector<SweepPoint> read_sweep_manifest(const Config& cfg);

}  // namespace ts::artifacts
