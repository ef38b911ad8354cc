// Stage `sweep plan`: the manifest of a steering sweep, one row per Slurm array task
// (docs/algorithms.md §A.5, §A.6; docs/decisions.md "Sweeps are Slurm array tasks").
//   in : [sweep] axes, the vectors file (steer.vectors), attribute's output for layers = auto | selected
//   out: <run.dir>/sweep/manifest.jsonl (artifacts/sweep_manifest.h), plan.json; stdout: one line
//        "--array=0-<N-1>" for sbatch
#include <cstdint>
#include <iostream>
#include <map>
#include <optional>

#include "artifacts/attribution.h"
#include "artifacts/sweep_manifest.h"
#include "artifacts/sweep_task.h"
#include "core/error.h"
#include "core/log.h"
#include "dist/batch_loop.h"
#include "stages/sweep.h"
#include "steer/intervention.h"

namespace ts::stages {
namespace fs = std::filesystem;

namespace {

fs::path attribution_path(const Config& cfg) { return artifacts::input_path(cfg.steer.attribution, cfg, artifacts::ATTRIBUTION_H5); }

// The hook site of a TransformerLens pattern: "blocks.{l}.hook_resid_post" -> "hook_resid_post".
std::string hook_site(const std::string& pattern) {
  const size_t dot = pattern.rfind('.');
  return dot == std::string::npos ? pattern : pattern.substr(dot + 1);
}

std::vector<SweepPoint> make_plan(const Config& cfg, const VectorSet& set, const std::string& vectors_file) {
  SweepAxes a;
  a.datasets = cfg.sweep.datasets.empty() ? std::vector<std::string>{cfg.data.prompts} : cfg.sweep.datasets;
  for (const auto& d : a.datasets)
    if (d.empty()) throw InputError("[sweep]", "sweep.datasets", "no prompts: set data.prompts or sweep.datasets");
  a.vectors = cfg.sweep.vectors;
  a.layers = cfg.sweep.layers;
  for (const auto& c : cfg.sweep.coefficients) a.coefficients.push_back(std::stod(c));
  a.hooks = cfg.sweep.hooks.empty() ? std::vector<std::string>{hook_site(set.hook_applied)} : cfg.sweep.hooks;
  a.ops = cfg.sweep.ops;
  a.positions = cfg.sweep.positions;
  a.controls = cfg.sweep.controls;
  for (const auto& s : cfg.sweep.seeds) a.seeds.push_back(std::stoll(s));
  a.random_directions = cfg.sweep.random_directions;
  for (int64_t s : a.seeds)
    if (a.random_directions > 1 && (s > INT64_MAX / 100 - 100 || s < INT64_MIN / 100 + 100))
      throw InputError("[sweep]", "sweep.seeds", std::to_string(s) + " is too large for sweep.random_directions > 1 (seeds 100*seed + j)");
  a.sampled = cfg.generate.temperature > 0;
  for (const auto& h : a.hooks)
    if (h != hook_site(set.hook_applied))
      spdlog::warn("sweep plan: vectors measured for {} are applied at {} (sweep.hooks)", set.hook_applied, h);
  for (const auto& v : a.vectors)
    if (!set.name_index(v)) throw InputError(vectors_file, "names", "no vector named '" + v + "' (sweep.vectors)");
  std::optional<std::map<std::string, std::vector<int64_t>>> picks;
  auto resolve = [&](const std::string& vector, const std::string& spec) -> std::vector<std::vector<int64_t>> {
    if (spec != "auto" && spec != "selected") return {parse_layer_group(spec, "[sweep]", "sweep.layers")};
    if (!picks) picks = artifacts::read_attribution_picks(attribution_path(cfg), "sweep.layers");
    auto it = picks->find(vector);
    if (it == picks->end() || it->second.empty())
      throw InputError(attribution_path(cfg).string(), "/selected", "no layer was selected for '" + vector + "' (sweep.layers = " + spec + "); list layers instead");
    std::vector<std::vector<int64_t>> out;
    for (int64_t l : it->second) {
      out.push_back({l});
      if (spec == "auto") break;
    }
    return out;
  };
  std::vector<SweepPoint> points = sweep_expand(a, resolve, cfg.steer.divide_by_layers);
  for (const SweepPoint& p : points) (void)point_edits(p, set, vectors_file);  // every vector exists and is not empty
  return points;
}

}  // namespace

std::vector<SweepPoint> plan_sweep(const Config& cfg, Runtime& rt) {
  const std::string vectors_file = artifacts::steer_vectors_path(cfg).string();
  const VectorSet set = vectors_read_h5(vectors_file);
  artifacts::verify_committed(vectors_file, "steer.vectors");
  std::vector<SweepPoint> points = make_plan(cfg, set, vectors_file);
  on_rank0(rt, [&] {
    const fs::path manifest = artifacts::SWEEP_MANIFEST.in(cfg);
    if (artifacts::write_sweep_manifest(cfg, points, vectors_file)) spdlog::info("sweep plan: {} tasks written to {}", points.size(), manifest.string());
    else spdlog::info("sweep plan: {} is up to date ({} tasks)", manifest.string(), points.size());
  });
  return points;
}

namespace sweep_plan {

void run(const Config& cfg, Runtime& rt) {
  const std::vector<SweepPoint> points = plan_sweep(cfg, rt);
  if (rt.rank == 0) {
    const std::string array = "0-" + std::to_string(points.size() - 1);
    spdlog::info("sweep plan: submit with  slurm/submit.sh sweep {}   (or sbatch --array={} slurm/sweep.sbatch ...)",
                 cfg.config_file.empty() ? "<config>" : cfg.config_file, array);
    std::cout << "--array=" << array << std::endl;
  }
}

}  // namespace sweep_plan

}  // namespace ts::stages
