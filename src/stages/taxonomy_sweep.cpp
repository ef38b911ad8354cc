// The taxonomy kind of sweep (stages/taxonomy_sweep.h): its plan, the tasks' identities, and the
// summary `reduce` writes (artifacts/taxonomy_summary.h).
//   plan   : [taxonomy] layers (empty: every layer of the sentences file) × clusters × methods × seeds
//   reduce : <run.dir>/taxonomy/summary.h5 + summary.csv: per (layer, K, method) each metric's mean and
//            95% t interval over the finished seeds, and the (layer, K) the offline rule chooses
//            (docs/algorithms.md §B.6 "Choosing (layer, K) offline"): the SAE groups' mean NMI with the
//            reference labels when the sentences carry them, else the mean of (1 − FVU) and centroid
//            orthogonality; ties go to the smaller K, then the earlier layer. With taxonomy.judge = llm
//            the judge (stages/taxonomy_judge.h) scores the judged groups' tasks first and the rule is
//            the mean §B.6 final score.
#include <cmath>
#include <map>
#include <set>
#include <tuple>

#include "artifacts/taxonomy_summary.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "stages/sweep_kind.h"
#include "stages/taxonomy_judge.h"
#include "stages/taxonomy_sweep.h"
#include "annotate/factory.h"
#include "steer/sweep_plan.h"

namespace ts::stages {
namespace fs = std::filesystem;
using taxonomy::TaxonomyPoint;

namespace {

std::vector<int64_t> integers(const std::vector<std::string>& v) {
  std::vector<int64_t> out;
  for (const std::string& s : v) out.push_back(std::stoll(s));
  return out;
}

std::vector<TaxonomyPoint> taxonomy_points(const Config& cfg, const std::vector<json>& rows, size_t first_index = 0) {
  std::vector<TaxonomyPoint> points;
  const std::string manifest = artifacts::TAXONOMY_SWEEP.manifest(cfg).string();
  for (const json& row : rows) points.push_back(TaxonomyPoint::from_json(row, manifest + ":" + std::to_string(first_index + points.size() + 1)));
  return points;
}

// Student's t quantile at 0.975 for df degrees of freedom (a table to 30, then t ≈ z + (z³ + z)/(4 df)).
double t975(int64_t df) {
  static const double table[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
                                 2.120,  2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
  return df <= 30 ? table[df - 1] : 1.959964 + 2.373 / static_cast<double>(df);
}

// Mean and 95% t interval of finite values (NaN bounds with fewer than two).
void interval(const std::vector<double>& v, double& mean, double& lo, double& hi) {
  std::vector<double> x;
  for (double a : v)
    if (std::isfinite(a)) x.push_back(a);
  mean = lo = hi = NAN;
  if (x.empty()) return;
  double s = 0;
  for (double a : x) s += a;
  mean = s / static_cast<double>(x.size());
  if (x.size() < 2) return;
  double ss = 0;
  for (double a : x) ss += (a - mean) * (a - mean);
  const double half = t975(static_cast<int64_t>(x.size()) - 1) * std::sqrt(ss / static_cast<double>(x.size() - 1) / static_cast<double>(x.size()));
  lo = mean - half, hi = mean + half;
}

// The offline choice of (layer, K): scores per group and the chosen group (see the file comment).
void choose(artifacts::TaxonomySummary& s) {
  const auto col = [&](const std::string& m) { return std::find(s.metrics.begin(), s.metrics.end(), m) - s.metrics.begin(); };
  const size_t M = s.metrics.size();
  const bool reference = static_cast<size_t>(col("nmi")) < M;
  // The judge's final score decides when it gave one to some group; when every reply was unusable the
  // rule falls back (and says so in its text).
  bool judged = false;
  if (static_cast<size_t>(col("final")) < M)
    for (size_t g = 0; g < s.n_groups(); ++g) judged = judged || std::isfinite(s.mean[g * M + static_cast<size_t>(col("final"))]);
  const bool unjudged = !judged && static_cast<size_t>(col("final")) < M;
  const bool any_sae = std::count(s.method.begin(), s.method.end(), "sae") > 0;
  s.rule = judged ? "highest mean §B.6 final score (the LLM judge's mean of avg_f1 and avg_confidence) among the " + std::string(any_sae ? "SAE" : "k-means") +
                        " groups; ties: smaller K, then earlier layer"
           : reference ? "highest mean NMI with the reference labels among the " + std::string(any_sae ? "SAE" : "k-means") + " groups; ties: smaller K, then earlier layer"
                     : "highest mean of (1 - FVU) and centroid orthogonality among the " + std::string(any_sae ? "SAE" : "k-means") +
                           " groups (no reference labels, no LLM judge); ties: smaller K, then earlier layer";
  if (unjudged) s.rule = "the LLM judge gave no group a final score (its replies were unusable): " + s.rule;
  s.score.assign(s.n_groups(), NAN);
  for (size_t g = 0; g < s.n_groups(); ++g) {
    if ((s.method[g] == "sae") != any_sae) continue;
    s.score[g] = judged      ? s.mean[g * M + static_cast<size_t>(col("final"))]
                 : reference ? s.mean[g * M + static_cast<size_t>(col("nmi"))]
                           : 0.5 * ((1 - s.mean[g * M + static_cast<size_t>(col("fvu"))]) + s.mean[g * M + static_cast<size_t>(col("orthogonality"))]);
    if (!std::isfinite(s.score[g])) continue;
    const auto better = [&](size_t a, size_t b) {  // a before b?
      if (s.score[a] != s.score[b]) return s.score[a] > s.score[b];
      return s.k[a] != s.k[b] ? s.k[a] < s.k[b] : s.layer[a] < s.layer[b];
    };
    if (s.selected < 0 || better(g, static_cast<size_t>(s.selected))) s.selected = static_cast<int64_t>(g);
  }
}

// The rule judges the SAE groups when there are any, else the k-means groups.
bool judged_method(const std::vector<TaxonomyPoint>& points, const SweepStatus& st, const std::string& method) {
  const bool any_sae = std::any_of(st.done.begin(), st.done.end(), [&](size_t i) { return points[i].method == "sae"; });
  return method == (any_sae ? "sae" : "kmeans");
}

// taxonomy.judge = llm: the judge's scores of every finished task of the judged method, by key.
std::map<std::string, json> judge_all(const Config& cfg, const Runtime& rt, const std::vector<TaxonomyPoint>& points, const SweepStatus& st) {
  std::map<std::string, json> out;
  if (cfg.taxonomy.judge != TaxonomyJudge::llm) return out;
  const std::shared_ptr<const LlmBackend> backend = make_llm_judge_backend(cfg, rt);
  const SentenceSet set = open_sentence_set(cfg);
  const JudgeData data = load_judge_data(set);
  for (size_t i : st.done) {
    const TaxonomyPoint& p = points[i];
    if (!judged_method(points, st, p.method)) continue;
    const artifacts::TaxonomyTask t = artifacts::read_taxonomy_task(artifacts::TAXONOMY_SWEEP.task(cfg, p.key));
    const json j = judge_task(cfg, *backend, set, data, p, t, st.hash[i]);
    out[p.key] = {{"avg_f1", j["avg_f1"]}, {"avg_confidence", j["avg_confidence"]}, {"final", j["final"]}};
  }
  return out;
}

artifacts::TaxonomySummary summarise(const Config& cfg, const Runtime& rt, const std::vector<TaxonomyPoint>& points, const SweepStatus& st) {
  const std::map<std::string, json> judged = judge_all(cfg, rt, points, st);
  std::vector<std::tuple<int64_t, int64_t, std::string>> groups;  // in row order
  std::map<std::tuple<int64_t, int64_t, std::string>, std::vector<json>> metrics;
  std::set<std::string> names;
  for (size_t i : st.done) {
    const TaxonomyPoint& p = points[i];
    const fs::path file = artifacts::TAXONOMY_SWEEP.task(cfg, p.key);
    const artifacts::TaxonomyTask t = artifacts::read_taxonomy_task(file);
    artifacts::check_taxonomy_task(file, t, p, st.hash[i]);
    const auto key = std::make_tuple(p.layer, p.k, p.method);
    if (!metrics.count(key)) groups.push_back(key);
    json m = t.metrics;
    if (judged.count(p.key)) m.update(judged.at(p.key));
    metrics[key].push_back(m);
    for (const auto& [name, value] : m.items())
      if (value.is_number()) names.insert(name);
  }
  if (!judged.empty()) names.insert({"final", "avg_f1", "avg_confidence"});  // columns even when every reply was unusable
  artifacts::TaxonomySummary s;
  for (const char* m : {"final", "avg_f1", "avg_confidence", "fvu", "orthogonality", "dead", "nmi", "ari", "majority", "matched", "epochs", "best_epoch", "objective", "reseeded"})
    if (names.count(m)) s.metrics.push_back(m);
  for (const auto& key : groups) {
    const auto& [layer, k, method] = key;
    s.layer.push_back(layer), s.k.push_back(k), s.method.push_back(method);
    s.n_seeds.push_back(static_cast<int64_t>(metrics[key].size()));
    for (const std::string& m : s.metrics) {
      std::vector<double> v;
      for (const json& j : metrics[key]) v.push_back(j.contains(m) && j[m].is_number() ? j[m].get<double>() : NAN);
      double mean = 0, lo = 0, hi = 0;
      interval(v, mean, lo, hi);
      s.mean.push_back(mean), s.lo.push_back(lo), s.hi.push_back(hi);
    }
  }
  choose(s);
  return s;
}

void log_summary(const artifacts::TaxonomySummary& s) {
  const size_t M = s.metrics.size();
  const auto cell = [&](size_t g, const char* m) -> std::string {
    const auto it = std::find(s.metrics.begin(), s.metrics.end(), m);
    if (it == s.metrics.end()) return "-";
    const size_t j = g * M + static_cast<size_t>(it - s.metrics.begin());
    return std::isfinite(s.lo[j]) ? fmt::format("{:.3f} [{:.3f}, {:.3f}]", s.mean[j], s.lo[j], s.hi[j]) : fmt::format("{:.3f}", s.mean[j]);
  };
  spdlog::info("reduce: {:>5} {:>4} {:<7} {:>5}  {:<26} {:<26} {:<26} {:>7}", "layer", "K", "method", "seeds", "FVU", "orthogonality", "NMI", "score");
  for (size_t g = 0; g < s.n_groups(); ++g)
    spdlog::info("reduce: {:>5} {:>4} {:<7} {:>5}  {:<26} {:<26} {:<26} {:>7.4f}{}", s.layer[g], s.k[g], s.method[g], s.n_seeds[g], cell(g, "fvu"),
                 cell(g, "orthogonality"), cell(g, "nmi"), s.score[g], static_cast<int64_t>(g) == s.selected ? "  <- chosen" : "");
  if (s.selected >= 0)
    spdlog::info("reduce: chosen: layer {}, K = {} ({}), by the rule: {}", s.layer[static_cast<size_t>(s.selected)], s.k[static_cast<size_t>(s.selected)],
                 s.method[static_cast<size_t>(s.selected)], s.rule);
}

class TaxonomySweep final : public SweepKind {
 public:
  const char* name() const override { return "taxonomy"; }
  const artifacts::SweepLayout& layout() const override { return artifacts::TAXONOMY_SWEEP; }

  std::vector<json> plan(const Config& cfg, Runtime&) override {
    const SentenceSet set = open_sentence_set(cfg);
    std::vector<int64_t> layers = cfg.taxonomy.layers.empty() ? set.layers : integers(cfg.taxonomy.layers);
    for (int64_t l : layers)
      if (std::find(set.layers.begin(), set.layers.end(), l) == set.layers.end())
        throw InputError("[taxonomy]", "taxonomy.layers", "layer " + std::to_string(l) + " is not in " + set.file.string());
    const std::vector<int64_t> ks = integers(cfg.taxonomy.clusters);
    for (int64_t k : ks) {
      if (k < 2) throw InputError("[taxonomy]", "taxonomy.clusters", "K = " + std::to_string(k) + ": at least 2 clusters");
      if (k > set.n) throw InputError("[taxonomy]", "taxonomy.clusters", "K = " + std::to_string(k) + " exceeds the " + std::to_string(set.n) + " sentences of " + set.file.string());
      if (cfg.taxonomy.topk > k && std::count(cfg.taxonomy.methods.begin(), cfg.taxonomy.methods.end(), "sae"))
        throw InputError("[taxonomy]", "taxonomy.topk", std::to_string(cfg.taxonomy.topk) + " exceeds K = " + std::to_string(k));
    }
    std::vector<json> rows;
    for (const TaxonomyPoint& p : taxonomy::taxonomy_expand(layers, ks, cfg.taxonomy.methods, integers(cfg.taxonomy.seeds))) rows.push_back(p.to_json());
    return rows;
  }
  json plan_record(const Config& cfg) const override {
    return {{"sentences_file", (cfg.taxonomy.sentences.empty() ? artifacts::SENTENCES_H5.in(cfg) : fs::path(cfg.taxonomy.sentences)).string()},
            {"config", config_to_ini(cfg, {"run", "taxonomy"})}};
  }
  void prepare(const Config& cfg, Runtime&) override { set_ = open_sentence_set(cfg); }
  bool run(const Config& cfg, Runtime& rt, const json& row, size_t index) override {
    return run_taxonomy_task(cfg, rt, taxonomy_points(cfg, {row}, index).front(), set_);
  }
  std::vector<SweepTaskId> task_ids(const Config& cfg, Runtime&, const std::vector<json>& rows) override {
    const SentenceSet set = open_sentence_set(cfg);
    std::vector<SweepTaskId> ids;
    for (const TaxonomyPoint& p : taxonomy_points(cfg, rows)) ids.push_back({artifacts::TAXONOMY_SWEEP.task(cfg, p.key), taxonomy_task_hash(cfg, p, set)});
    return ids;
  }
  fs::path summary(const Config& cfg) const override { return artifacts::TAXONOMY_SWEEP.root(cfg) / "summary.h5"; }
  std::vector<fs::path> summary_extras(const Config& cfg) const override { return {artifacts::TAXONOMY_SWEEP.root(cfg) / "summary.csv"}; }
  void write_summary(const Config& cfg, Runtime& rt, StageOutput& out, const std::vector<json>& rows, const SweepStatus& st) override {
    const std::vector<TaxonomyPoint> points = taxonomy_points(cfg, rows);
    const artifacts::TaxonomySummary s = summarise(cfg, rt, points, st);
    const artifacts::TaxonomySummaryRun run{!st.missing.empty(), static_cast<int64_t>(rows.size()), static_cast<int64_t>(st.missing.size()),
                                            array_spec(st.missing)};
    const json prov = artifacts::stage_provenance(cfg, rt, "reduce", out.config_hash(), {});
    artifacts::write_taxonomy_summary(out.partial(), s, run, prov);
    out.commit_h5(prov, artifacts::TAXONOMY_SUMMARY, artifacts::taxonomy_summary_datasets(s), {.provenance_json = false, .resolved_config = false, .certified = {}});
    write_file_atomic(summary_extras(cfg).front(), artifacts::taxonomy_summary_csv(s));
    spdlog::info("reduce: {} groups of {} tasks ({} missing) -> {}", s.n_groups(), rows.size(), st.missing.size(), out.path().string());
    log_summary(s);
  }

 private:
  SentenceSet set_;
};

}  // namespace

std::unique_ptr<SweepKind> make_taxonomy_sweep() { return std::make_unique<TaxonomySweep>(); }

}  // namespace ts::stages
