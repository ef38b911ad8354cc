// The steering kind's summary (stages/steer_sweep.h): what `reduce` writes for a steering sweep.
//   out: <run.dir>/sweep/summary.h5 (format thinksteer.sweep_summary, layout below) and summary.csv
//        (one row per point × label)
//
// Per point: the mean over prompts of each label's token share (§A.6, S1) and span share (S2),
// accuracy over prompts with a reference answer, mean thinking tokens, share of closed traces; and
// against the point's baseline (same dataset; same sampling seed when generation samples), the mean of
// the per-prompt differences with a percentile bootstrap interval over prompts (reduce.bootstrap
// resamples at level reduce.ci, seeded per point and column, so the summary is reproducible).
//
// summary.h5: /labels [K] str, /steerable [K] u8, /points/<field> [P] (task, key, dataset, kind,
// vector, layers, layer, hook, coef, op, positions, seed, n_prompts, accuracy, think_tokens,
// closed, baseline), /fraction/{token_share,span_share} [P, K] f64, /delta/{token_share,
// span_share}{,_lo,_hi} [P, K] f64, /delta/{accuracy,think_tokens}{,_lo,_hi} [P] f64; root attributes
// format, format_version, partial, n_tasks, n_missing and the provenance.
#include <cmath>
#include <filesystem>
#include <iostream>
#include <limits>
#include <map>

#include "core/atomic_file.h"
#include "core/done_marker.h"
#include "core/error.h"
#include "core/log.h"
#include "core/sha256.h"
#include "core/splitmix.h"
#include "annotate/factory.h"
#include "artifacts/sweep_manifest.h"
#include "artifacts/sweep_summary.h"
#include "artifacts/sweep_task.h"
#include "dist/batch_loop.h"
#include "stages/stage.h"
#include "stages/steer_sweep.h"
#include "steer/behaviour.h"

namespace ts::stages {
namespace fs = std::filesystem;

namespace {

constexpr double NaN = std::numeric_limits<double>::quiet_NaN();

// One finished task, read back.
struct TaskData {
  std::vector<std::string> ids;
  std::vector<int64_t> correct, think;
  std::vector<uint8_t> closed;
  std::vector<std::vector<double>> token_share, span_share;  // [prompt][label]
};

// The task file of point `p` (artifacts/sweep_task.h), checked to be that task's with values in
// range, as shares; its labels must equal `labels` (which the first task read fills).
TaskData read_task(const Config& cfg, const SweepPoint& p, const std::string& hash, std::vector<std::string>& labels) {
  const fs::path file = artifacts::task_file(cfg, p);
  const artifacts::TaskRows rows = artifacts::read_sweep_task(file);
  // A forced close (steer.force_close) adds its text (at most one token per byte) and its tokens.
  const int64_t forced = cfg.steer.force_close ? cfg.steer.force_close_tokens + static_cast<int64_t>(config_unescape(cfg.steer.force_close_text).size()) : 0;
  artifacts::check_sweep_task(file, rows, p, hash, cfg.generate.max_new_tokens + forced);
  if (labels.empty()) labels = rows.labels;
  else if (rows.labels != labels) throw InputError(file.string(), "/labels", "labels differ from the other tasks' (annotator changed?)");
  TaskData t;
  t.ids = rows.ids;
  t.correct = rows.correct;
  t.think = rows.think_tokens;
  t.closed = rows.closed;
  const size_t n = rows.size(), K = labels.size();
  const std::vector<uint8_t> steerable = steerable_mask(labels);
  for (size_t i = 0; i < n; ++i) {
    BehaviourCounts c;
    c.tokens.assign(rows.label_tokens.begin() + static_cast<std::ptrdiff_t>(i * K), rows.label_tokens.begin() + static_cast<std::ptrdiff_t>((i + 1) * K));
    c.spans.assign(rows.label_spans.begin() + static_cast<std::ptrdiff_t>(i * K), rows.label_spans.begin() + static_cast<std::ptrdiff_t>((i + 1) * K));
    t.token_share.push_back(token_share(c, steerable));
    t.span_share.push_back(span_share(c));
  }
  return t;
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  int64_t n = 0;
  for (double x : v)
    if (!std::isnan(x)) s += x, ++n;
  return n > 0 ? s / static_cast<double>(n) : NaN;
}

// A point's parameters and plain means (accuracy, thinking length, closed share, behaviour fractions).
void add_point(artifacts::SweepSummary& s, const SweepPoint& p, const TaskData& t) {
  const size_t n = t.ids.size(), K = s.labels.size();
  s.task.push_back(p.task);
  s.key.push_back(p.key);
  s.dataset.push_back(p.dataset);
  s.kind.push_back(p.kind);
  s.vector.push_back(p.vector);
  s.layers.push_back(p.layers_text());
  s.layer.push_back(p.layers.empty() ? -1 : p.layers.front());
  s.hook.push_back(p.hook);
  s.coef.push_back(p.coef * p.layer_scale);
  s.op.push_back(p.op);
  s.positions.push_back(p.positions);
  s.seed.push_back(p.seed);
  s.n_prompts.push_back(static_cast<int64_t>(n));
  std::vector<double> acc, th, cl;
  for (size_t i = 0; i < n; ++i) {
    acc.push_back(t.correct[i] >= 0 ? static_cast<double>(t.correct[i]) : NaN);
    th.push_back(static_cast<double>(t.think[i]));
    cl.push_back(static_cast<double>(t.closed[i]));
  }
  s.accuracy.push_back(mean_of(acc));
  s.think_tokens.push_back(mean_of(th));
  s.closed.push_back(mean_of(cl));
  for (size_t k = 0; k < K; ++k) {
    std::vector<double> a, b;
    for (size_t i = 0; i < n; ++i) a.push_back(t.token_share[i][k]), b.push_back(t.span_share[i][k]);
    s.token_share.push_back(s.steerable[k] ? mean_of(a) : NaN);
    s.span_share.push_back(mean_of(b));
  }
}

// Summary row r's paired differences from its baseline `base`, with bootstrap intervals seeded per
// point and column (so the summary is reproducible).
void add_deltas(const Config& cfg, artifacts::SweepSummary& s, size_t r, const SweepPoint& p, const TaskData& t, const TaskData& base) {
  const size_t n = t.ids.size(), K = s.labels.size();
  auto interval = [&](const std::vector<double>& diff, uint64_t column, artifacts::Delta& d, size_t at) {
    const Interval iv = bootstrap_mean(diff, cfg.reduce.bootstrap, cfg.reduce.ci, splitmix64(cfg.reduce.seed ^ splitmix64(static_cast<uint64_t>(p.task) * 1009 + column)));
    d.mean[at] = iv.mean, d.lo[at] = iv.lo, d.hi[at] = iv.hi;
  };
  for (size_t k = 0; k < K; ++k) {
    std::vector<double> dt, ds;
    for (size_t i = 0; i < n; ++i) {
      dt.push_back(t.token_share[i][k] - base.token_share[i][k]);
      ds.push_back(t.span_share[i][k] - base.span_share[i][k]);
    }
    if (s.steerable[k]) interval(dt, 2 * k, s.d_token_share, r * K + k);
    interval(ds, 2 * k + 1, s.d_span_share, r * K + k);
  }
  std::vector<double> da, dth;
  for (size_t i = 0; i < n; ++i) {
    da.push_back(t.correct[i] >= 0 && base.correct[i] >= 0 ? static_cast<double>(t.correct[i] - base.correct[i]) : NaN);
    dth.push_back(static_cast<double>(t.think[i] - base.think[i]));
  }
  interval(da, 2 * K, s.d_accuracy, r);
  interval(dth, 2 * K + 1, s.d_think_tokens, r);
}

// The summary of the finished tasks: every point's means and, against its baseline (same dataset;
// same seed when generation samples), the paired differences.
artifacts::SweepSummary summarise(const Config& cfg, const std::vector<SweepPoint>& points, const SweepStatus& st) {
  const std::vector<size_t>& done = st.done;
  artifacts::SweepSummary s;
  std::map<size_t, TaskData> data;
  for (size_t i : done) data[i] = read_task(cfg, points[i], st.hash[i], s.labels);
  const size_t K = s.labels.size(), P = done.size();
  s.steerable = steerable_mask(s.labels);
  s.d_token_share.resize(P * K, NaN);
  s.d_span_share.resize(P * K, NaN);
  s.d_accuracy.resize(P, NaN);
  s.d_think_tokens.resize(P, NaN);
  const bool sampled = cfg.generate.temperature > 0;
  std::map<size_t, int64_t> row_of;  // summary row of each finished task
  for (size_t r = 0; r < P; ++r) row_of[done[r]] = static_cast<int64_t>(r);
  auto baseline_row = [&](const SweepPoint& p) -> int64_t {
    if (p.kind == "baseline") return -1;
    for (const SweepPoint& b : points)
      if (b.kind == "baseline" && b.dataset == p.dataset && (!sampled || b.sample_seed == p.sample_seed)) {
        auto it = row_of.find(static_cast<size_t>(b.task));
        return it == row_of.end() ? -1 : it->second;
      }
    return -1;
  };
  for (size_t r = 0; r < P; ++r) {
    const SweepPoint& p = points[done[r]];
    const TaskData& t = data[done[r]];
    add_point(s, p, t);
    const int64_t br = baseline_row(p);
    s.baseline.push_back(br);
    if (br < 0) continue;
    const size_t base_task = done[static_cast<size_t>(br)];
    if (data[base_task].ids != t.ids)
      throw InputError(artifacts::task_file(cfg, p).string(), "/prompts/id", "the prompts differ from those of its baseline (task " + std::to_string(points[base_task].task) + ")");
    add_deltas(cfg, s, r, p, t, data[base_task]);
  }
  return s;
}

// The table people read in the log: each steered point's own behaviour.
void log_table(const Config& cfg, const artifacts::SweepSummary& s) {
  const size_t K = s.labels.size();
  spdlog::info("reduce: {:<24} {:>6} {:>7} {:>7} {:>8} {:>8} {:>8}  {:<20} {:>6} {:>7}", "vector", "layers", "coef", "kind", "base", "steered", "delta",
               fmt::format("{:.0f}% interval", 100 * cfg.reduce.ci), "acc", "think");
  for (size_t r = 0; r < s.n_points(); ++r) {
    if (s.baseline[r] < 0) continue;
    const auto it = std::find(s.labels.begin(), s.labels.end(), s.vector[r]);
    if (it == s.labels.end()) continue;
    const size_t k = static_cast<size_t>(it - s.labels.begin()), x = r * K + k, bx = static_cast<size_t>(s.baseline[r]) * K + k;
    const bool tok = s.steerable[k] != 0;
    const artifacts::Delta& d = tok ? s.d_token_share : s.d_span_share;
    const std::vector<double>& f = tok ? s.token_share : s.span_share;
    spdlog::info("reduce: {:<24} {:>6} {:>+7.3g} {:>7} {:>8.4f} {:>8.4f} {:>+8.4f}  [{:+.4f}, {:+.4f}] {:>6.3f} {:>7.1f}", s.vector[r], s.layers[r], s.coef[r],
                 s.kind[r], f[bx], f[x], d.mean[x], d.lo[x], d.hi[x], s.accuracy[r], s.think_tokens[r]);
  }
}

}  // namespace

void write_steer_summary(const Config& cfg, Runtime& rt, StageOutput& out, const std::vector<SweepPoint>& points, const SweepStatus& st) {
  const artifacts::SweepSummary s = summarise(cfg, points, st);
  const artifacts::SummaryRun run{!st.missing.empty(), static_cast<int64_t>(points.size()), static_cast<int64_t>(st.missing.size()),
                                  array_spec(st.missing), cfg.reduce.bootstrap, cfg.reduce.ci};
  const json prov = artifacts::stage_provenance(cfg, rt, "reduce", out.config_hash(), cfg.model.path);
  artifacts::write_sweep_summary(out.partial(), s, run, prov);
  out.commit_h5(prov, artifacts::SWEEP_SUMMARY, artifacts::sweep_summary_datasets(static_cast<int64_t>(s.n_points()), static_cast<int64_t>(s.labels.size())),
                {.provenance_json = false, .resolved_config = false, .certified = {}});
  const fs::path out_csv = artifacts::SWEEP_SUMMARY_CSV.in(cfg);
  write_file_atomic(out_csv, artifacts::sweep_summary_csv(s));
  spdlog::info("reduce: {} points ({} tasks, {} missing) -> {}, {}", s.n_points(), points.size(), st.missing.size(), out.path().string(),
               out_csv.string());
  log_table(cfg, s);
}

}  // namespace ts::stages
