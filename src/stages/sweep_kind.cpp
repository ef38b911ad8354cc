// The sweep machinery shared by every kind (stages/sweep_kind.h): manifest, task status, reduce, and
// the whole sweep in one job.
#include "stages/sweep_kind.h"

#include <iostream>

#include "core/atomic_file.h"
#include "core/done_marker.h"
#include "core/error.h"
#include "core/log.h"
#include "core/sha256.h"
#include "dist/batch_loop.h"
#include "steer/sweep_plan.h"

namespace ts::stages {
namespace fs = std::filesystem;

std::unique_ptr<SweepKind> make_sweep_kind(const Config& cfg) {
  if (cfg.sweep.kind == SweepKindName::basevec) return make_basevec_sweep();
  if (cfg.sweep.kind == SweepKindName::hybrid) return make_hybrid_sweep();
  if (cfg.sweep.kind == SweepKindName::intervene) return make_intervene_sweep();
  return cfg.sweep.kind == SweepKindName::taxonomy ? make_taxonomy_sweep() : make_steer_sweep();
}

std::vector<json> plan_and_write(SweepKind& kind, const Config& cfg, Runtime& rt) {
  std::vector<json> rows = kind.plan(cfg, rt);
  on_rank0(rt, [&] {
    json record = kind.plan_record(cfg);
    record["kind"] = kind.name();
    const fs::path manifest = kind.layout().manifest(cfg);
    if (artifacts::write_sweep_manifest(cfg, kind.layout(), rows, record))
      spdlog::info("sweep plan: {} {} tasks written to {}", rows.size(), kind.name(), manifest.string());
    else
      spdlog::info("sweep plan: {} is up to date ({} {} tasks)", manifest.string(), rows.size(), kind.name());
  });
  return rows;
}

SweepStatus sweep_status(SweepKind& kind, const Config& cfg, Runtime& rt, const std::vector<json>& rows) {
  SweepStatus st;
  const std::vector<SweepTaskId> ids = kind.task_ids(cfg, rt, rows);
  for (size_t i = 0; i < ids.size(); ++i) {
    st.hash.push_back(ids[i].hash);
    if (done_marker_matches(ids[i].file, ids[i].hash)) {
      st.done.push_back(i);
      st.hashes += ids[i].hash + "\n";
    } else {
      st.missing.push_back(static_cast<int64_t>(i));
    }
  }
  return st;
}

void reduce_sweep(SweepKind& kind, const Config& cfg, Runtime& rt) {
  const artifacts::SweepLayout& layout = kind.layout();
  std::vector<json> rows;
  SweepStatus st;
  std::string hash;
  int64_t n_missing = 0;
  on_rank0(rt, [&] {
    rows = artifacts::read_sweep_manifest_rows(cfg, layout);
    st = sweep_status(kind, cfg, rt, rows);
    const std::string missing_list = array_spec(st.missing);
    write_file_atomic(layout.missing(cfg), missing_list + "\n");
    if (!st.missing.empty()) {
      std::cout << "missing: --array=" << missing_list << std::endl;
      spdlog::warn("reduce: {} of {} tasks are not finished: --array={} (resubmit: slurm/submit.sh sweep <config> --array={})", st.missing.size(),
                   rows.size(), missing_list, missing_list);
    }
    hash = sha256_hex(read_file(layout.manifest(cfg)) + st.hashes + config_to_ini(cfg, {"reduce"}));
    n_missing = static_cast<int64_t>(st.missing.size());
  });
  rt.world_comm.bcast(hash, 0);
  rt.world_comm.bcast(std::span<int64_t>(&n_missing, 1), 0);
  StageOutput out(cfg, rt, "reduce", kind.summary(cfg), hash);
  out.begin();
  if (n_missing > 0 && !cfg.reduce.allow_partial) {
    on_rank0(rt, [&] {  // nothing stale may look complete
      std::vector<fs::path> stale = {out.path(), done_marker_path(out.path())};
      for (const fs::path& f : kind.summary_extras(cfg)) stale.push_back(f);
      for (const fs::path& f : stale) fs::remove(f);
    });
    throw IncompleteError("reduce: " + std::to_string(n_missing) + " sweep tasks are not finished (see " + layout.missing(cfg).string() + ")");
  }
  on_rank0(rt, [&] {
    if (st.done.empty()) throw InputError(layout.manifest(cfg).string(), "tasks", "no task is finished: nothing to reduce");
    kind.write_summary(cfg, rt, out, rows, st);
  });
}

void run_whole_sweep(SweepKind& kind, const Config& cfg, Runtime& rt) {
  const std::vector<json> rows = plan_and_write(kind, cfg, rt);
  kind.prepare(cfg, rt);
  int64_t ran = 0;
  for (size_t i = 0; i < rows.size(); ++i) ran += kind.run(cfg, rt, rows[i], i) ? 1 : 0;
  spdlog::info("{}: {} of {} tasks run, {} were finished before", kind.name(), ran, rows.size(), static_cast<int64_t>(rows.size()) - ran);
  reduce_sweep(kind, cfg, rt);
}

}  // namespace ts::stages
