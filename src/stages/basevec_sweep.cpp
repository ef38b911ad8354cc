// The base-vector kind of sweep (stages/basevec_train.h): its plan, the tasks' identities, the summary
// `reduce` writes (artifacts/basevec_summary.h), and the whole sweep as `thinksteer basevec train`.
//   plan   : basevec.methods × basevec.seeds, one row (Slurm array task) each
//   reduce : <run.dir>/basevec/summary.h5 + summary.csv + selected.json: per method the seed with the lowest
//            selection metric (the selection rollouts' top-k KL of the steered base for correction sets,
//            their log10 CE for linear sets; docs/algorithms.md §B.10 "best of seeds")
#include <cmath>

#include "artifacts/basevec_summary.h"
#include "core/atomic_file.h"
#include "core/done_marker.h"
#include "core/error.h"
#include "core/log.h"
#include "stages/basevec_pair.h"
#include "stages/basevec_train.h"
#include "stages/sweep_kind.h"
#include "steer/sweep_plan.h"

namespace ts::stages {
namespace fs = std::filesystem;

namespace {

std::vector<BasevecPoint> points_of(const Config& cfg, const std::vector<json>& rows, size_t first = 0) {
  std::vector<BasevecPoint> out;
  const std::string manifest = artifacts::BASEVEC_SWEEP.manifest(cfg).string();
  for (const json& row : rows) out.push_back(BasevecPoint::from_json(row, manifest + ":" + std::to_string(first + out.size() + 1)));
  return out;
}

fs::path records_of(const Config& cfg) {
  const fs::path f = basevec_records_path(cfg);
  if (!fs::is_regular_file(f)) throw InputError(f.string(), "basevec records", "missing: run `thinksteer basevec collect` first");
  return f;
}

class BasevecSweep final : public SweepKind {
 public:
  const char* name() const override { return "basevec"; }
  const artifacts::SweepLayout& layout() const override { return artifacts::BASEVEC_SWEEP; }
  std::vector<json> plan(const Config& cfg, Runtime&) override {
    check_basevec_config(cfg, false);
    std::vector<json> rows;
    for (const BasevecPoint& p : basevec_points(cfg)) rows.push_back(p.to_json());
    return rows;
  }
  json plan_record(const Config& cfg) const override {
    return {{"records_file", basevec_records_path(cfg).string()}, {"config", config_to_ini(cfg, {"run", "basevec"})}};
  }
  void prepare(const Config& cfg, Runtime& rt) override {
    check_basevec_config(cfg, false);
    data_.records_file = records_of(cfg);
    data_.records_hash = certified_content_hash(data_.records_file);
    data_.records = artifacts::read_basevec_records(data_.records_file, "basevec records");
    data_.base = load_base_model(cfg, rt);
    if (data_.records.tokens.size() > 0) {
      const int64_t max_id = *std::max_element(data_.records.tokens.begin(), data_.records.tokens.end());
      if (max_id >= data_.base.config.n_vocab)
        throw InputError(data_.records_file.string(), "/tokens", "holds token id " + std::to_string(max_id) + ", outside the base model's vocabulary (" +
                                                                      std::to_string(data_.base.config.n_vocab) + "): records of another pair?");
    }
  }
  bool run(const Config& cfg, Runtime& rt, const json& row, size_t index) override {
    return run_basevec_task(cfg, rt, points_of(cfg, {row}, index).front(), data_);
  }
  std::vector<SweepTaskId> task_ids(const Config& cfg, Runtime&, const std::vector<json>& rows) override {
    const std::string hash = certified_content_hash(records_of(cfg));
    std::vector<SweepTaskId> ids;
    for (const BasevecPoint& p : points_of(cfg, rows)) ids.push_back({artifacts::BASEVEC_SWEEP.task(cfg, p.key), basevec_task_hash(cfg, p, hash)});
    return ids;
  }
  fs::path summary(const Config& cfg) const override { return artifacts::BASEVEC_SWEEP.root(cfg) / "summary.h5"; }
  std::vector<fs::path> summary_extras(const Config& cfg) const override {
    return {artifacts::BASEVEC_SWEEP.root(cfg) / "summary.csv", artifacts::BASEVEC_SWEEP.root(cfg) / "selected.json"};
  }
  void write_summary(const Config& cfg, Runtime& rt, StageOutput& out, const std::vector<json>& rows, const SweepStatus& st) override {
    const std::vector<BasevecPoint> points = points_of(cfg, rows);
    artifacts::BasevecSummary s;
    s.partial = !st.missing.empty();
    s.rule = "per method, the seed whose vectors give the lowest selection metric (correction: top-k KL of the steered base to the thinking model at the "
             "selection rollouts' disagreement positions; linear: log10 CE of their sentences)";
    for (size_t i : st.done) {
      const BasevecPoint& p = points[i];
      const fs::path file = artifacts::BASEVEC_SWEEP.task(cfg, p.key);
      const artifacts::BasevecTask t = artifacts::read_basevec_task(file);
      if (t.key != p.key || t.config_sha256 != st.hash[i]) throw InputError(file.string(), "key", "is not the file of manifest row " + std::to_string(i) + " (" + p.key + ")");
      s.task.push_back(p.task), s.seed.push_back(p.seed), s.method.push_back(p.method), s.key.push_back(p.key);
      s.selection.push_back(t.metrics.contains("selection_metric") && t.metrics["selection_metric"].is_number() ? t.metrics["selection_metric"].get<double>() : NAN);
      s.metrics.push_back(t.metrics);
      s.selected.push_back(0);
    }
    for (size_t i = 0; i < s.task.size(); ++i) {
      bool best = std::isfinite(s.selection[i]);
      for (size_t j = 0; j < s.task.size() && best; ++j)
        if (j != i && s.method[j] == s.method[i] && std::isfinite(s.selection[j]) && (s.selection[j] < s.selection[i] || (s.selection[j] == s.selection[i] && j < i)))
          best = false;
      s.selected[i] = best ? 1 : 0;
    }
    const json prov = artifacts::stage_provenance(cfg, rt, "reduce", out.config_hash(), {});
    artifacts::write_basevec_summary(out.partial(), s, prov);
    out.commit_h5(prov, artifacts::BASEVEC_SUMMARY, artifacts::basevec_summary_datasets(static_cast<int64_t>(s.task.size())),
                  {.provenance_json = false, .resolved_config = false, .certified = {}});
    write_file_atomic(summary_extras(cfg)[0], artifacts::basevec_summary_csv(s));
    write_file_atomic(summary_extras(cfg)[1], artifacts::basevec_selected_json(s, artifacts::BASEVEC_SWEEP.root(cfg) / "tasks").dump(2) + "\n");
    spdlog::info("reduce: {} of {} basevec tasks ({} missing) -> {}", s.task.size(), rows.size(), st.missing.size(), out.path().string());
    for (size_t i = 0; i < s.task.size(); ++i)
      spdlog::info("reduce: {:<10} seed {:>4}  selection {:.4f}{}", s.method[i], s.seed[i], s.selection[i], s.selected[i] ? "  <- chosen" : "");
  }

 private:
  BasevecData data_;
};

}  // namespace

std::unique_ptr<SweepKind> make_basevec_sweep() { return std::make_unique<BasevecSweep>(); }

namespace basevec_train {
void run(const Config& cfg, Runtime& rt) { run_whole_sweep(*make_basevec_sweep(), cfg, rt); }
}  // namespace basevec_train

}  // namespace ts::stages
