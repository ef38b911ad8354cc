// The hybrid kind of sweep (stages/hybrid.h): its plan, the tasks' identities, the summary `reduce`
// writes (artifacts/hybrid_summary.h), and the whole sweep as `thinksteer hybrid`.
//   plan   : per dataset (sweep.datasets, else data.prompts): base, thinking, then per steering layer
//            (hybrid.layers, else the vectors' layer) × rule (hybrid.rules) × ablation (hybrid.ablations)
//            one row, × hybrid.seeds for the random ablations; randpos rows last; the oracle rule (no vector) only
//            with none and randpos
//   reduce : <run.dir>/hybrid/summary.h5 + summary.csv: accuracy, gap recovered, paired difference from
//            the hybrid, steered share, category usage (bootstrap intervals over prompts, reduce.*)
#include <cmath>
#include <map>

#include "artifacts/basevec_summary.h"
#include "artifacts/hybrid_summary.h"
#include "core/atomic_file.h"
#include "core/done_marker.h"
#include "core/error.h"
#include "core/log.h"
#include "core/sha256.h"
#include "core/splitmix.h"
#include "stages/hybrid.h"
#include "stages/sweep_kind.h"
#include "steer/behaviour.h"

namespace ts::stages {
namespace fs = std::filesystem;

json HybridPoint::to_json() const {
  return {{"task", task}, {"key", key}, {"dataset", dataset}, {"role", role}, {"rule", rule}, {"ablation", ablation}, {"layer", layer}, {"seed", seed}};
}

HybridPoint HybridPoint::from_json(const json& row, const std::string& where) {
  HybridPoint p;
  p.task = json_int(row, "task", where), p.layer = json_int(row, "layer", where), p.seed = json_int(row, "seed", where);
  p.key = json_string(row, "key", where), p.dataset = json_string(row, "dataset", where), p.role = json_string(row, "role", where);
  p.rule = json_string(row, "rule", where), p.ablation = json_string(row, "ablation", where);
  if (p.role != "base" && p.role != "thinking" && p.role != "hybrid") throw InputError(where, "role", "'" + p.role + "' is not base, thinking or hybrid");
  if (p.role == "hybrid" && (!option_parse<HybridRule>(p.rule) || !option_parse<HybridAblation>(p.ablation)))
    throw InputError(where, "rule", "'" + p.rule + "' / '" + p.ablation + "' is not a coefficient rule and ablation");
  return p;
}

namespace {

std::string point_key(const HybridPoint& p) {
  return sha256_hex("hybrid " + p.dataset + " " + p.role + " " + p.rule + " " + p.ablation + " " + std::to_string(p.layer) + " " + std::to_string(p.seed))
      .substr(0, 16);
}

bool random_ablation(const std::string& a) { return a != "none" && a != "only-bias"; }

// A point of `dataset` and `role`, everything else at its default (the base and thinking rows; hybrid rows add the rest).
HybridPoint dataset_row(const std::string& dataset, const std::string& role) {
  HybridPoint p;
  p.dataset = dataset, p.role = role;
  return p;
}

}  // namespace

HybridPoint HybridPoint::source() const {
  HybridPoint s = *this;
  s.ablation = "none", s.seed = 0, s.task = -1;
  s.key = point_key(s);
  return s;
}

fs::path hybrid_vectors_path(const Config& cfg) {
  if (cfg.hybrid.vectors != "selected") return cfg.hybrid.vectors;
  const fs::path sel = artifacts::BASEVEC_SWEEP.root(cfg) / "selected.json";
  if (!fs::is_regular_file(sel)) throw InputError(sel.string(), "hybrid.vectors", "hybrid.vectors = selected needs `thinksteer basevec train` run in this run directory first");
  const json j = json_read_file(sel);
  if (!j.contains(cfg.hybrid.method) || !j[cfg.hybrid.method].contains("file") || !j[cfg.hybrid.method]["file"].is_string())
    throw InputError(sel.string(), cfg.hybrid.method, "no " + cfg.hybrid.method + " set was selected (hybrid.method)");
  return j[cfg.hybrid.method]["file"].get<std::string>();
}

void check_hybrid_vectors(const Config& cfg, const artifacts::BasevecTask& v, const fs::path& file) {
  for (const std::string& r : cfg.hybrid.rules)
    if (r == "mlp" && v.w1.empty()) throw InputError(file.string(), "/mlp", "the set has no coefficient MLP, which hybrid.rules = mlp needs");
}

std::vector<HybridPoint> hybrid_points(const Config& cfg, int64_t vectors_layer) {
  std::vector<std::string> datasets = cfg.sweep.datasets.empty() ? std::vector<std::string>{cfg.data.prompts} : cfg.sweep.datasets;
  for (const auto& d : datasets)
    if (d.empty()) throw InputError("[sweep]", "sweep.datasets", "no prompts: set data.prompts or sweep.datasets");
  std::vector<int64_t> layers;
  for (const std::string& l : cfg.hybrid.layers) layers.push_back(std::stoll(l));
  if (layers.empty()) layers.push_back(vectors_layer);
  std::vector<HybridPoint> out;
  auto add = [&](HybridPoint p) {
    p.task = static_cast<int64_t>(out.size());
    p.key = point_key(p);
    out.push_back(p);
  };
  for (const std::string& d : datasets) {
    add(dataset_row(d, "base"));
    add(dataset_row(d, "thinking"));
    for (int pass = 0; pass < 2; ++pass)  // randpos rows after the hybrid rows they take their share from
      for (int64_t l : layers)
        for (const std::string& r : cfg.hybrid.rules)
          for (const std::string& a : cfg.hybrid.ablations) {
            if ((a == "randpos") != (pass == 1)) continue;
            if (r == "oracle" && a != "none" && a != "randpos") continue;  // the oracle adds no vector: only where it steers can vary
            const std::vector<std::string> seeds = random_ablation(a) ? cfg.hybrid.seeds : std::vector<std::string>{"0"};
            for (const std::string& s : seeds) {
              HybridPoint p = dataset_row(d, "hybrid");
              p.layer = l, p.seed = std::stoll(s), p.rule = r, p.ablation = a;
              add(p);
            }
          }
  }
  return out;
}

namespace {

std::vector<HybridPoint> points_of(const Config& cfg, const std::vector<json>& rows, size_t first = 0) {
  std::vector<HybridPoint> out;
  const std::string manifest = artifacts::HYBRID_SWEEP.manifest(cfg).string();
  for (const json& row : rows) {
    out.push_back(HybridPoint::from_json(row, manifest + ":" + std::to_string(first + out.size() + 1)));
    if (point_key(out.back()) != out.back().key) throw InputError(manifest + ":" + std::to_string(first + out.size()), "key", "does not match the row's parameters");
  }
  return out;
}

// Summary columns of row r against the base and thinking rows of its dataset and its hybrid.
void summarise(const Config& cfg, artifacts::HybridSummary& s, const artifacts::HybridTask& t, const artifacts::HybridTask* base,
               const artifacts::HybridTask* thinking, const artifacts::HybridTask* hyb) {
  const size_t P = t.ids.size();
  const double nan = std::nan("");
  const uint64_t seed = splitmix64(cfg.reduce.seed ^ splitmix64(static_cast<uint64_t>(t.task) * 1009));
  auto values = [&](const artifacts::HybridTask& x) {
    std::vector<double> v(P, nan);
    for (size_t i = 0; i < P && i < x.correct.size(); ++i) v[i] = x.correct[i] < 0 ? nan : static_cast<double>(x.correct[i]);
    return v;
  };
  const std::vector<double> mine = values(t);
  const Interval acc = bootstrap_mean(mine, cfg.reduce.bootstrap, cfg.reduce.ci, seed);
  s.accuracy.push_back(acc.mean), s.accuracy_lo.push_back(acc.lo), s.accuracy_hi.push_back(acc.hi), s.n.push_back(acc.n);
  Interval gap{nan, nan, nan, 0}, vs{nan, nan, nan, 0};
  if (t.role == "hybrid" && base && thinking) {
    const std::vector<double> b = values(*base), th = values(*thinking);
    std::vector<double> num(P), den(P);
    for (size_t i = 0; i < P; ++i) num[i] = mine[i] - b[i], den[i] = th[i] - b[i];
    gap = bootstrap_ratio(num, den, cfg.reduce.bootstrap, cfg.reduce.ci, seed + 1);
  }
  if (t.role == "hybrid" && t.ablation != "none" && hyb) {
    const std::vector<double> h = values(*hyb);
    std::vector<double> d(P);
    for (size_t i = 0; i < P; ++i) d[i] = h[i] - mine[i];
    vs = bootstrap_mean(d, cfg.reduce.bootstrap, cfg.reduce.ci, seed + 2);
  }
  s.gap.push_back(gap.mean), s.gap_lo.push_back(gap.lo), s.gap_hi.push_back(gap.hi);
  s.vs_hybrid.push_back(vs.mean), s.vs_hybrid_lo.push_back(vs.lo), s.vs_hybrid_hi.push_back(vs.hi);
  double st = 0, dis = 0, hit = 0, think = 0, hit_n = 0;
  std::vector<double> usage(static_cast<size_t>(s.categories), 0.0);
  double used = 0;
  for (size_t i = 0; i < P; ++i) {
    const double n = std::max<double>(1.0, static_cast<double>(t.new_tokens[i]));
    st += static_cast<double>(t.steered[i]) / n, dis += static_cast<double>(t.disagree[i]) / n, think += static_cast<double>(t.think_tokens[i]);
    if (t.steered[i] > 0) hit += static_cast<double>(t.hits[i]) / static_cast<double>(t.steered[i]), hit_n += 1;
    for (int64_t c = 0; c < s.categories && c < t.categories; ++c) {
      usage[static_cast<size_t>(c)] += static_cast<double>(t.category_counts[i * static_cast<size_t>(t.categories) + static_cast<size_t>(c)]);
      used += static_cast<double>(t.category_counts[i * static_cast<size_t>(t.categories) + static_cast<size_t>(c)]);
    }
  }
  const double np = std::max<double>(1.0, static_cast<double>(P));
  s.steered_share.push_back(st / np), s.disagree_share.push_back(dis / np), s.think_tokens.push_back(think / np);
  s.hit_share.push_back(hit_n > 0 ? hit / hit_n : nan);
  for (double u : usage) s.category_usage.push_back(used > 0 ? u / used : 0.0);
}

class HybridSweep final : public SweepKind {
 public:
  const char* name() const override { return "hybrid"; }
  const artifacts::SweepLayout& layout() const override { return artifacts::HYBRID_SWEEP; }
  std::vector<json> plan(const Config& cfg, Runtime&) override {
    check_basevec_config(cfg, true);
    const fs::path vf = hybrid_vectors_path(cfg);
    const artifacts::BasevecTask v = artifacts::read_basevec_task(vf);
    check_hybrid_vectors(cfg, v, vf);
    std::vector<json> rows;
    for (const HybridPoint& p : hybrid_points(cfg, v.layer)) rows.push_back(p.to_json());
    return rows;
  }
  json plan_record(const Config& cfg) const override {
    return {{"vectors_file", hybrid_vectors_path(cfg).string()}, {"config", config_to_ini(cfg, {"model", "run", "data", "generate", "basevec", "hybrid"})}};
  }
  void prepare(const Config& cfg, Runtime& rt) override { env_ = std::make_unique<HybridEnv>(load_hybrid_env(cfg, rt)); }
  bool run(const Config& cfg, Runtime& rt, const json& row, size_t index) override {
    const HybridPoint p = points_of(cfg, {row}, index).front();
    if (p.layer >= env_->base.config.n_layer)
      throw InputError(artifacts::HYBRID_SWEEP.manifest(cfg).string(), "layer", std::to_string(p.layer) + " is beyond the base model's " + std::to_string(env_->base.config.n_layer) + " layers");
    if (p.role == "hybrid" && p.layer != env_->vectors.layer)
      spdlog::warn("hybrid: task {} steers at layer {} with vectors trained at layer {}", p.task, p.layer, env_->vectors.layer);
    return run_hybrid_task(cfg, rt, p, *env_);
  }
  std::vector<SweepTaskId> task_ids(const Config& cfg, Runtime&, const std::vector<json>& rows) override {
    const std::string inputs = hybrid_sweep_inputs(cfg, certified_content_hash(hybrid_vectors_path(cfg)));
    std::vector<SweepTaskId> ids;
    for (const HybridPoint& p : points_of(cfg, rows)) ids.push_back({artifacts::HYBRID_SWEEP.task(cfg, p.key), hybrid_task_hash(cfg, p, inputs)});
    return ids;
  }
  fs::path summary(const Config& cfg) const override { return artifacts::HYBRID_SWEEP.root(cfg) / "summary.h5"; }
  std::vector<fs::path> summary_extras(const Config& cfg) const override { return {artifacts::HYBRID_SWEEP.root(cfg) / "summary.csv"}; }
  void write_summary(const Config& cfg, Runtime& rt, StageOutput& out, const std::vector<json>& rows, const SweepStatus& st) override {
    const std::vector<HybridPoint> points = points_of(cfg, rows);
    std::map<std::string, artifacts::HybridTask> tasks;  // by key
    for (size_t i : st.done) {
      const fs::path file = artifacts::HYBRID_SWEEP.task(cfg, points[i].key);
      artifacts::HybridTask t = artifacts::read_hybrid_task(file);
      if (t.key != points[i].key || t.config_sha256 != st.hash[i]) throw InputError(file.string(), "key", "is not the file of manifest row " + std::to_string(i));
      tasks.emplace(t.key, std::move(t));
    }
    artifacts::HybridSummary s;
    s.partial = !st.missing.empty(), s.bootstrap = cfg.reduce.bootstrap, s.ci = cfg.reduce.ci;
    for (const auto& [k, t] : tasks) s.categories = std::max(s.categories, t.categories);
    auto find = [&](const HybridPoint& q) -> const artifacts::HybridTask* {
      auto it = tasks.find(point_key(q));
      return it == tasks.end() ? nullptr : &it->second;
    };
    for (size_t i : st.done) {
      const HybridPoint& p = points[i];
      const artifacts::HybridTask& t = tasks.at(p.key);
      s.task.push_back(p.task), s.layer.push_back(p.layer), s.seed.push_back(p.seed);
      s.key.push_back(p.key), s.dataset.push_back(p.dataset), s.role.push_back(p.role), s.rule.push_back(p.rule), s.ablation.push_back(p.ablation);
      summarise(cfg, s, t, find(dataset_row(p.dataset, "base")), find(dataset_row(p.dataset, "thinking")), p.role == "hybrid" ? find(p.source()) : nullptr);
    }
    const json prov = artifacts::stage_provenance(cfg, rt, "reduce", out.config_hash(), {});
    artifacts::write_hybrid_summary(out.partial(), s, prov);
    out.commit_h5(prov, artifacts::HYBRID_SUMMARY, artifacts::hybrid_summary_datasets(static_cast<int64_t>(s.rows()), s.categories),
                  {.provenance_json = false, .resolved_config = false, .certified = {}});
    write_file_atomic(summary_extras(cfg)[0], artifacts::hybrid_summary_csv(s));
    spdlog::info("reduce: {} of {} hybrid tasks ({} missing) -> {}", s.rows(), rows.size(), st.missing.size(), out.path().string());
    for (size_t i = 0; i < s.rows(); ++i)
      spdlog::info("reduce: {:<8} {:<9} {:<15} L{} s{}  accuracy {:.3f} [{:.3f}, {:.3f}]  gap {:.3f} [{:.3f}, {:.3f}]  hybrid-minus {:+.3f} [{:+.3f}, {:+.3f}]  steered {:.3f}",
                   s.role[i], s.rule[i], s.ablation[i], s.layer[i], s.seed[i], s.accuracy[i], s.accuracy_lo[i], s.accuracy_hi[i], s.gap[i], s.gap_lo[i],
                   s.gap_hi[i], s.vs_hybrid[i], s.vs_hybrid_lo[i], s.vs_hybrid_hi[i], s.steered_share[i]);
  }

 private:
  std::unique_ptr<HybridEnv> env_;
};

}  // namespace

std::unique_ptr<SweepKind> make_hybrid_sweep() { return std::make_unique<HybridSweep>(); }

namespace hybrid_stage {
void run(const Config& cfg, Runtime& rt) { run_whole_sweep(*make_hybrid_sweep(), cfg, rt); }
}  // namespace hybrid_stage

}  // namespace ts::stages
