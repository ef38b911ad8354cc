// The intervention kind of sweep (stages/intervene.h; docs/directions.md): its plan, the tasks' identities,
// the summary `reduce` writes (artifacts/intervene.h), and the whole sweep as `thinksteer intervene`.
//   plan   : per dataset (sweep.datasets, else data.prompts) × mode (intervene.modes) × layer (intervene.layers,
//            else every layer of model.path) one row; mode direction is one row per dataset (layer -1: every layer)
//   reduce : <run.dir>/intervene/summary.h5 + summary.csv: per row the mean log-probability of the answer and
//            the exact share, with and without the intervention, their paired differences and, for patching,
//            the share of the clean-to-source gap recovered, each with a paired bootstrap interval over prompts
//            (reduce.bootstrap, reduce.ci, reduce.seed)
#include <algorithm>
#include <cmath>
#include <filesystem>

#include "artifacts/intervene.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "core/sha256.h"
#include "core/splitmix.h"
#include "model/model_config.h"
#include "stages/intervene.h"
#include "stages/sweep_kind.h"
#include "steer/behaviour.h"

namespace ts::stages {
namespace fs = std::filesystem;

namespace {

std::string point_key(const IntervenePoint& p) {
  return sha256_hex("intervene " + p.dataset + " " + p.mode + " " + std::to_string(p.layer)).substr(0, 16);
}

std::vector<IntervenePoint> intervene_points(const Config& cfg) {
  std::vector<std::string> datasets = cfg.sweep.datasets.empty() ? std::vector<std::string>{cfg.data.prompts} : cfg.sweep.datasets;
  for (const auto& d : datasets)
    if (d.empty()) throw InputError("[sweep]", "sweep.datasets", "no prompts: set data.prompts or sweep.datasets");
  if (cfg.model.path.empty()) throw InputError("<config>", "model.path", "no checkpoint directory given");
  const auto& modes = cfg.intervene.modes;
  const auto has = [&](const char* m) { return std::find(modes.begin(), modes.end(), m) != modes.end(); };
  if (has("patch") && cfg.intervene.source_field.empty() && cfg.intervene.source_model.empty())
    throw InputError("<config>", "intervene.modes", "patch needs a source: intervene.source_field or intervene.source_model");
  if (has("direction") && cfg.directions.direction.empty())
    throw InputError("<config>", "directions.direction", "mode direction needs the direction's vectors file (e.g. <run.dir>/directions/contrast.h5)");
  const int64_t L = model_config_read(fs::path(cfg.model.path) / "config.json").n_layer;
  std::vector<int64_t> layers;
  for (const std::string& l : cfg.intervene.layers) {
    layers.push_back(std::stoll(l));
    if (layers.back() >= L) throw InputError("<config>", "intervene.layers", "layer " + l + " is outside the model's " + std::to_string(L) + " layers");
  }
  if (layers.empty())
    for (int64_t l = 0; l < L; ++l) layers.push_back(l);
  std::vector<IntervenePoint> out;
  for (const std::string& d : datasets)
    for (const std::string& m : cfg.intervene.modes)
      for (int64_t l : m == "direction" ? std::vector<int64_t>{-1} : layers) {
        IntervenePoint p{static_cast<int64_t>(out.size()), "", d, m, l};
        p.key = point_key(p);
        out.push_back(p);
      }
  return out;
}

std::vector<IntervenePoint> points_of(const Config& cfg, const std::vector<json>& rows) {
  std::vector<IntervenePoint> out;
  const std::string manifest = artifacts::INTERVENE_SWEEP.manifest(cfg).string();
  for (const json& row : rows) {
    out.push_back(IntervenePoint::from_json(row, manifest + ":" + std::to_string(out.size() + 1)));
    if (point_key(out.back()) != out.back().key) throw InputError(manifest + ":" + std::to_string(out.size()), "key", "does not match the row's parameters");
  }
  return out;
}

void summarise(const Config& cfg, artifacts::InterveneSummary& s, const artifacts::InterveneTask& t) {
  const size_t P = t.n();
  const uint64_t seed = splitmix64(cfg.reduce.seed ^ splitmix64(static_cast<uint64_t>(t.task) * 1009));
  std::vector<double> dl(P), de(P), ex(P), exc(P), num(P), den(P);
  for (size_t i = 0; i < P; ++i) {
    dl[i] = t.logp[i] - t.logp_clean[i];
    ex[i] = t.exact[i], exc[i] = t.exact_clean[i], de[i] = ex[i] - exc[i];
    num[i] = dl[i], den[i] = t.logp_source[i] - t.logp_clean[i];  // NaN outside patching: the ratio is then NaN
  }
  const auto mean = [](const std::vector<double>& v) {
    double a = 0;
    for (double x : v) a += x;
    return v.empty() ? std::nan("") : a / static_cast<double>(v.size());
  };
  const Interval d_logp = bootstrap_mean(dl, cfg.reduce.bootstrap, cfg.reduce.ci, seed);
  const Interval d_exact = bootstrap_mean(de, cfg.reduce.bootstrap, cfg.reduce.ci, seed + 1);
  const Interval rec = t.mode == "patch" ? bootstrap_ratio(num, den, cfg.reduce.bootstrap, cfg.reduce.ci, seed + 2) : Interval{NAN, NAN, NAN, 0};
  s.task.push_back(t.task), s.layer.push_back(t.layer), s.n.push_back(static_cast<int64_t>(P));
  s.dataset.push_back(t.dataset), s.mode.push_back(t.mode), s.site.push_back(t.mode == "direction" ? "all" : t.site);
  s.logp.push_back(mean(t.logp)), s.logp_clean.push_back(mean(t.logp_clean));
  s.delta_logp.push_back(d_logp.mean), s.delta_logp_lo.push_back(d_logp.lo), s.delta_logp_hi.push_back(d_logp.hi);
  s.exact.push_back(mean(ex)), s.exact_clean.push_back(mean(exc));
  s.delta_exact.push_back(d_exact.mean), s.delta_exact_lo.push_back(d_exact.lo), s.delta_exact_hi.push_back(d_exact.hi);
  s.recovery.push_back(rec.mean), s.recovery_lo.push_back(rec.lo), s.recovery_hi.push_back(rec.hi);
}

class InterveneSweep final : public SweepKind {
 public:
  const char* name() const override { return "intervene"; }
  const artifacts::SweepLayout& layout() const override { return artifacts::INTERVENE_SWEEP; }
  std::vector<json> plan(const Config& cfg, Runtime&) override {
    std::vector<json> rows;
    for (const IntervenePoint& p : intervene_points(cfg)) rows.push_back(p.to_json());
    return rows;
  }
  json plan_record(const Config& cfg) const override { return {{"config", config_to_ini(cfg, {"model", "data", "generate", "intervene", "directions"})}}; }
  void prepare(const Config& cfg, Runtime& rt) override { env_ = std::make_unique<InterveneEnv>(load_intervene_env(cfg, rt)); }
  bool run(const Config& cfg, Runtime& rt, const json& row, size_t index) override {
    const IntervenePoint p = points_of(cfg, {row}).front();
    (void)index;
    return run_intervene_task(cfg, rt, p, *env_);
  }
  std::vector<SweepTaskId> task_ids(const Config& cfg, Runtime&, const std::vector<json>& rows) override {
    const std::string inputs = intervene_inputs(cfg);
    std::vector<SweepTaskId> ids;
    for (const IntervenePoint& p : points_of(cfg, rows)) ids.push_back({artifacts::INTERVENE_SWEEP.task(cfg, p.key), intervene_task_hash(cfg, p, inputs)});
    return ids;
  }
  fs::path summary(const Config& cfg) const override { return artifacts::INTERVENE_SWEEP.root(cfg) / "summary.h5"; }
  std::vector<fs::path> summary_extras(const Config& cfg) const override { return {artifacts::INTERVENE_SWEEP.root(cfg) / "summary.csv"}; }
  void write_summary(const Config& cfg, Runtime& rt, StageOutput& out, const std::vector<json>& rows, const SweepStatus& st) override {
    const std::vector<IntervenePoint> points = points_of(cfg, rows);
    artifacts::InterveneSummary s;
    s.partial = !st.missing.empty();
    for (size_t i : st.done) {
      const fs::path file = artifacts::INTERVENE_SWEEP.task(cfg, points[i].key);
      const artifacts::InterveneTask t = artifacts::read_intervene_task(file);
      if (t.key != points[i].key || t.config_sha256 != st.hash[i]) throw InputError(file.string(), "key", "is not the file of manifest row " + std::to_string(i));
      summarise(cfg, s, t);
    }
    const json prov = artifacts::stage_provenance(cfg, rt, "reduce", out.config_hash(), {});
    artifacts::write_intervene_summary(out.partial(), s, prov);
    out.commit_h5(prov, artifacts::INTERVENE_SUMMARY, artifacts::intervene_summary_datasets(static_cast<int64_t>(s.rows())),
                  {.provenance_json = false, .resolved_config = false, .certified = {}});
    write_file_atomic(summary_extras(cfg)[0], artifacts::intervene_summary_csv(s));
    spdlog::info("reduce: {} of {} intervention tasks ({} missing) -> {}", s.rows(), rows.size(), st.missing.size(), out.path().string());
    for (size_t i = 0; i < s.rows(); ++i)
      spdlog::info("reduce: {:<9} L{:<3} logp {:.3f} (clean {:.3f})  delta {:+.3f} [{:+.3f}, {:+.3f}]  exact {:.3f} (clean {:.3f})  recovery {:.3f}", s.mode[i],
                   s.layer[i], s.logp[i], s.logp_clean[i], s.delta_logp[i], s.delta_logp_lo[i], s.delta_logp_hi[i], s.exact[i], s.exact_clean[i], s.recovery[i]);
  }

 private:
  std::unique_ptr<InterveneEnv> env_;
};

}  // namespace

std::unique_ptr<SweepKind> make_intervene_sweep() { return std::make_unique<InterveneSweep>(); }

namespace intervene {
void run(const Config& cfg, Runtime& rt) { run_whole_sweep(*make_intervene_sweep(), cfg, rt); }
}  // namespace intervene

}  // namespace ts::stages
