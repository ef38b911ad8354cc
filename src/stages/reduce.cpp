// Stage `reduce`: a sweep's finished task files gathered into one summary (DECISIONS.md "Sweeps").
//   in : <run.dir>/sweep/manifest.jsonl, the task files whose done marker matches this config
//   out: <run.dir>/sweep/summary.h5 (format thinksteer.sweep_summary, layout below) and summary.csv
//        (one row per point × label), <run.dir>/sweep/missing.txt (the unfinished tasks as an
//        sbatch --array= list, empty when none); stdout "missing: --array=LIST" when tasks are missing.
// Exit: 0 complete; 3 with tasks missing (the summary is not written, and an older one is removed so
// that nothing stale looks complete), unless reduce.allow_partial, which writes it marked partial.
//
// Per point: the mean over prompts of each label's token share (§A.6, S1) and span share (S2),
// accuracy over prompts with a reference answer, mean thinking tokens, share of closed traces; and
// against the point's baseline (same dataset; same seed when generation samples), the mean of the
// per-prompt differences with a percentile bootstrap interval over prompts (reduce.bootstrap
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
#include "core/error.h"
#include "core/log.h"
#include "core/sha256.h"
#include "core/splitmix.h"
#include "stages/common.h"
#include "stages/stages.h"
#include "stages/sweep_common.h"
#include "steer/behaviour.h"

namespace ts::stages::reduce {
namespace fs = std::filesystem;

namespace {

constexpr const char* FORMAT = "thinksteer.sweep_summary";
constexpr double NaN = std::numeric_limits<double>::quiet_NaN();

// One finished task, read back.
struct TaskData {
  std::vector<std::string> ids;
  std::vector<int64_t> correct, think;
  std::vector<uint8_t> closed;
  std::vector<std::vector<double>> token_share, span_share;  // [prompt][label]
};

// One task file; its labels must equal `labels` (which the first task read fills).
TaskData read_task(const fs::path& file, std::vector<std::string>& labels) {
  h5::SerialFile f(file, h5::SerialFile::Mode::READ_ONLY);
  TaskData t;
  const std::vector<std::string> l = f.read_strings("/labels");
  if (labels.empty()) labels = l;
  else if (l != labels) throw InputError(file.string(), "/labels", "labels differ from the other tasks' (annotator changed?)");
  t.ids = f.read_strings("/prompts/id");
  t.correct = f.read_i64("/prompts/correct");
  t.think = f.read_i64("/prompts/think_tokens");
  const std::vector<int64_t> closed = f.read_i64("/prompts/closed");
  const std::vector<int64_t> tokens = f.read_i64("/prompts/label_tokens"), spans = f.read_i64("/prompts/label_spans");
  const size_t n = t.ids.size(), K = labels.size();
  if (t.correct.size() != n || t.think.size() != n || closed.size() != n || tokens.size() != n * K || spans.size() != n * K)
    throw InputError(file.string(), "/prompts", "datasets disagree in length");
  const std::vector<uint8_t> steerable = steerable_mask(labels);
  for (size_t i = 0; i < n; ++i) {
    t.closed.push_back(static_cast<uint8_t>(closed[i]));
    BehaviourCounts c;
    c.tokens.assign(tokens.begin() + static_cast<std::ptrdiff_t>(i * K), tokens.begin() + static_cast<std::ptrdiff_t>((i + 1) * K));
    c.spans.assign(spans.begin() + static_cast<std::ptrdiff_t>(i * K), spans.begin() + static_cast<std::ptrdiff_t>((i + 1) * K));
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

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string num(double x) {
  if (std::isnan(x)) return "";
  return fmt::format("{:.6g}", x);
}

}  // namespace

void run(const Config& cfg, Runtime& rt) {
  int64_t n_missing = 0;
  on_rank0(rt, [&] {
    const fs::path dir = sweep_dir(cfg);
    const fs::path manifest = dir / "manifest.jsonl";
    const std::vector<SweepPoint> points = manifest_read(manifest.string());
    const std::unique_ptr<Annotator> annotator = make_sweep_annotator(cfg);
    const TaskInputs inputs = task_inputs(cfg, *annotator);
    std::vector<int64_t> missing;
    std::vector<size_t> done;
    std::string hashes;
    for (const SweepPoint& p : points) {
      const std::string h = task_hash(cfg, p, inputs);
      if (done_marker_matches(task_file(cfg, p), h)) {
        done.push_back(static_cast<size_t>(p.task));
        hashes += h + "\n";
      } else {
        missing.push_back(p.task);
      }
    }
    n_missing = static_cast<int64_t>(missing.size());
    const std::string missing_list = array_spec(missing);
    write_file_atomic(dir / "missing.txt", missing_list + "\n");
    const fs::path out_h5 = dir / "summary.h5", out_csv = dir / "summary.csv";
    if (!missing.empty()) {
      std::cout << "missing: --array=" << missing_list << std::endl;
      spdlog::warn("reduce: {} of {} tasks are not finished: --array={} (resubmit: slurm/submit.sh sweep <config> --array={})", missing.size(),
                   points.size(), missing_list, missing_list);
      if (!cfg.reduce.allow_partial) {
        for (const fs::path& f : {out_h5, done_marker_path(out_h5), out_csv}) fs::remove(f);
        return;
      }
    }
    if (done.empty()) throw InputError(manifest.string(), "tasks", "no task is finished: nothing to reduce");

    // Read every finished task.
    std::vector<std::string> labels;
    std::map<size_t, TaskData> data;
    for (size_t i : done) data[i] = read_task(task_file(cfg, points[i]), labels);
    const size_t K = labels.size(), P = done.size();
    const std::vector<uint8_t> steerable = steerable_mask(labels);
    const bool sampled = cfg.generate.temperature > 0;

    // Row (in the summary) of each point's baseline.
    std::map<size_t, int64_t> row_of;
    for (size_t r = 0; r < P; ++r) row_of[done[r]] = static_cast<int64_t>(r);
    auto baseline_row = [&](const SweepPoint& p) -> int64_t {
      if (p.kind == "baseline") return -1;
      for (const SweepPoint& b : points)
        if (b.kind == "baseline" && b.dataset == p.dataset && (!sampled || b.seed == p.seed)) {
          auto it = row_of.find(static_cast<size_t>(b.task));
          return it == row_of.end() ? -1 : it->second;
        }
      return -1;
    };

    std::vector<int64_t> task, layer, seed, n_prompts, baseline;
    std::vector<std::string> key, dataset, kind, vector, layers, hook, op, positions;
    std::vector<double> coef, accuracy, think, closed;
    std::vector<double> frac_tok(P * K), frac_span(P * K);
    std::vector<double> d_tok(P * K, NaN), d_tok_lo(P * K, NaN), d_tok_hi(P * K, NaN), d_span(P * K, NaN), d_span_lo(P * K, NaN), d_span_hi(P * K, NaN);
    std::vector<double> d_acc(P, NaN), d_acc_lo(P, NaN), d_acc_hi(P, NaN), d_think(P, NaN), d_think_lo(P, NaN), d_think_hi(P, NaN);
    for (size_t r = 0; r < P; ++r) {
      const SweepPoint& p = points[done[r]];
      const TaskData& t = data[done[r]];
      const size_t n = t.ids.size();
      task.push_back(p.task);
      key.push_back(p.key);
      dataset.push_back(p.dataset);
      kind.push_back(p.kind);
      vector.push_back(p.vector);
      layers.push_back(p.layers_text());
      layer.push_back(p.layers.empty() ? -1 : p.layers.front());
      hook.push_back(p.hook);
      coef.push_back(p.coef * p.layer_scale);
      op.push_back(p.op);
      positions.push_back(p.positions);
      seed.push_back(p.seed);
      n_prompts.push_back(static_cast<int64_t>(n));
      std::vector<double> acc, th, cl;
      for (size_t i = 0; i < n; ++i) {
        acc.push_back(t.correct[i] >= 0 ? static_cast<double>(t.correct[i]) : NaN);
        th.push_back(static_cast<double>(t.think[i]));
        cl.push_back(static_cast<double>(t.closed[i]));
      }
      accuracy.push_back(mean_of(acc));
      think.push_back(mean_of(th));
      closed.push_back(mean_of(cl));
      for (size_t k = 0; k < K; ++k) {
        std::vector<double> a, b;
        for (size_t i = 0; i < n; ++i) a.push_back(t.token_share[i][k]), b.push_back(t.span_share[i][k]);
        frac_tok[r * K + k] = steerable[k] ? mean_of(a) : NaN;
        frac_span[r * K + k] = mean_of(b);
      }
      const int64_t br = baseline_row(p);
      baseline.push_back(br);
      if (br < 0) continue;
      const TaskData& base = data[done[static_cast<size_t>(br)]];
      if (base.ids != t.ids)
        throw InputError(task_file(cfg, p).string(), "/prompts/id", "the prompts differ from those of its baseline (task " + std::to_string(points[done[static_cast<size_t>(br)]].task) + ")");
      auto interval = [&](const std::vector<double>& diff, uint64_t column, double* m, double* lo, double* hi) {
        const Interval iv = bootstrap_mean(diff, cfg.reduce.bootstrap, cfg.reduce.ci, splitmix64(cfg.reduce.seed ^ splitmix64(static_cast<uint64_t>(p.task) * 1009 + column)));
        *m = iv.mean, *lo = iv.lo, *hi = iv.hi;
      };
      for (size_t k = 0; k < K; ++k) {
        std::vector<double> dt, ds;
        for (size_t i = 0; i < n; ++i) {
          dt.push_back(t.token_share[i][k] - base.token_share[i][k]);
          ds.push_back(t.span_share[i][k] - base.span_share[i][k]);
        }
        if (steerable[k]) interval(dt, 2 * k, &d_tok[r * K + k], &d_tok_lo[r * K + k], &d_tok_hi[r * K + k]);
        interval(ds, 2 * k + 1, &d_span[r * K + k], &d_span_lo[r * K + k], &d_span_hi[r * K + k]);
      }
      std::vector<double> da, dth;
      for (size_t i = 0; i < n; ++i) {
        da.push_back(t.correct[i] >= 0 && base.correct[i] >= 0 ? static_cast<double>(t.correct[i] - base.correct[i]) : NaN);
        dth.push_back(static_cast<double>(t.think[i] - base.think[i]));
      }
      interval(da, 2 * K, &d_acc[r], &d_acc_lo[r], &d_acc_hi[r]);
      interval(dth, 2 * K + 1, &d_think[r], &d_think_lo[r], &d_think_hi[r]);
    }

    // summary.h5
    const std::string hash = sha256_hex(read_file(manifest) + hashes + config_to_ini(cfg, {"reduce"}));
    using h5::DType;
    const int64_t p64 = static_cast<int64_t>(P), k64 = static_cast<int64_t>(K);
    std::vector<h5::DatasetSpec> specs = {
        {"/steerable", DType::U8, {k64}, {"label"}, {{"description", "1: in the token-share denominator (the four steerable labels)"}}},
        {"/points/task", DType::I64, {p64}, {"point"}, {}},
        {"/points/layer", DType::I64, {p64}, {"point"}, {{"description", "first layer (-1: baseline)"}}},
        {"/points/seed", DType::I64, {p64}, {"point"}, {}},
        {"/points/n_prompts", DType::I64, {p64}, {"point"}, {}},
        {"/points/baseline", DType::I64, {p64}, {"point"}, {{"description", "row of this point's baseline (-1: none)"}}},
        {"/points/coef", DType::F64, {p64}, {"point"}, {{"description", "coefficient per layer (coef x layer_scale)"}}},
        {"/points/accuracy", DType::F64, {p64}, {"point"}, {{"description", "share correct among prompts with a reference answer"}}},
        {"/points/think_tokens", DType::F64, {p64}, {"point"}, {{"description", "mean generated tokens before </think>"}}},
        {"/points/closed", DType::F64, {p64}, {"point"}, {{"description", "share of traces that closed </think>"}}},
        {"/fraction/token_share", DType::F64, {p64, k64}, {"point", "label"}, {{"description", "mean token share among steerable labels (S1)"}}},
        {"/fraction/span_share", DType::F64, {p64, k64}, {"point", "label"}, {{"description", "mean span share among all labels (S2)"}}},
    };
    std::vector<const void*> data_ptrs = {steerable.data(), task.data(), layer.data(), seed.data(), n_prompts.data(), baseline.data(), coef.data(),
                                          accuracy.data(), think.data(), closed.data(), frac_tok.data(), frac_span.data()};
    const std::pair<const char*, std::vector<double>*> deltas_pk[] = {
        {"token_share", &d_tok}, {"token_share_lo", &d_tok_lo}, {"token_share_hi", &d_tok_hi},
        {"span_share", &d_span}, {"span_share_lo", &d_span_lo}, {"span_share_hi", &d_span_hi}};
    for (const auto& [name, v] : deltas_pk) {
      specs.push_back({std::string("/delta/") + name, DType::F64, {p64, k64}, {"point", "label"}, {{"description", "paired difference from the baseline (mean, bootstrap interval)"}}});
      data_ptrs.push_back(v->data());
    }
    const std::pair<const char*, std::vector<double>*> deltas_p[] = {
        {"accuracy", &d_acc}, {"accuracy_lo", &d_acc_lo}, {"accuracy_hi", &d_acc_hi},
        {"think_tokens", &d_think}, {"think_tokens_lo", &d_think_lo}, {"think_tokens_hi", &d_think_hi}};
    for (const auto& [name, v] : deltas_p) {
      specs.push_back({std::string("/delta/") + name, DType::F64, {p64}, {"point"}, {{"description", "paired difference from the baseline (mean, bootstrap interval)"}}});
      data_ptrs.push_back(v->data());
    }
    const fs::path tmp = out_h5.string() + ".partial";
    {
      h5::SerialFile f(tmp, h5::SerialFile::Mode::CREATE);
      for (size_t i = 0; i < specs.size(); ++i) f.write_dataset(specs[i], data_ptrs[i]);
      f.write_strings("/labels", labels, "label");
      const std::pair<const char*, std::vector<std::string>*> strs[] = {{"key", &key},   {"dataset", &dataset}, {"kind", &kind}, {"vector", &vector},
                                                                        {"layers", &layers}, {"hook", &hook},     {"op", &op},     {"positions", &positions}};
      for (const auto& [name, v] : strs) f.write_strings(std::string("/points/") + name, *v, "point");
      write_h5_provenance(f, stage_provenance(cfg, rt, "reduce", hash, cfg.model.path), FORMAT);
      f.set_attr("/", "format_version", int64_t{1});
      f.set_attr("/", "partial", int64_t{missing.empty() ? 0 : 1});
      f.set_attr("/", "n_tasks", static_cast<int64_t>(points.size()));
      f.set_attr("/", "n_missing", n_missing);
      f.set_attr("/", "missing", missing_list);
      f.set_attr("/", "bootstrap", cfg.reduce.bootstrap);
      f.set_attr("/", "ci", cfg.reduce.ci);
    }
    h5::commit_h5(tmp, out_h5, FORMAT, specs, hash);

    // summary.csv: one row per point x label.
    std::string csv =
        "task,key,dataset,kind,vector,layers,hook,op,positions,coef,seed,n_prompts,accuracy,think_tokens,closed,baseline_task,label,steerable,"
        "token_share,token_share_delta,token_share_lo,token_share_hi,span_share,span_share_delta,span_share_lo,span_share_hi,"
        "accuracy_delta,accuracy_lo,accuracy_hi,think_tokens_delta,think_tokens_lo,think_tokens_hi\n";
    for (size_t r = 0; r < P; ++r)
      for (size_t k = 0; k < K; ++k) {
        const size_t x = r * K + k;
        const std::string base_task = baseline[r] < 0 ? "" : std::to_string(task[static_cast<size_t>(baseline[r])]);
        csv += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", task[r], key[r],
                           csv_field(dataset[r]), kind[r], vector[r], layers[r], hook[r], op[r], positions[r], num(coef[r]), seed[r], n_prompts[r],
                           num(accuracy[r]), num(think[r]), num(closed[r]), base_task, labels[k], static_cast<int>(steerable[k]), num(frac_tok[x]),
                           num(d_tok[x]), num(d_tok_lo[x]), num(d_tok_hi[x]), num(frac_span[x]), num(d_span[x]), num(d_span_lo[x]), num(d_span_hi[x]),
                           num(d_acc[r]), num(d_acc_lo[r]), num(d_acc_hi[r]), num(d_think[r]), num(d_think_lo[r]), num(d_think_hi[r]));
      }
    write_file_atomic(out_csv, csv);

    // The table people read in the log: each steered point's own behaviour.
    spdlog::info("reduce: {} points ({} tasks, {} missing) -> {}, {}", P, points.size(), n_missing, out_h5.string(), out_csv.string());
    spdlog::info("reduce: {:<24} {:>6} {:>7} {:>7} {:>8} {:>8} {:>8}  {:<20} {:>6} {:>7}", "vector", "layers", "coef", "kind", "base", "steered", "delta",
                 fmt::format("{:.0f}% interval", 100 * cfg.reduce.ci), "acc", "think");
    for (size_t r = 0; r < P; ++r) {
      if (baseline[r] < 0) continue;
      const auto it = std::find(labels.begin(), labels.end(), vector[r]);
      if (it == labels.end()) continue;
      const size_t k = static_cast<size_t>(it - labels.begin()), x = r * K + k;
      const bool tok = steerable[k] != 0;
      const double base_f = tok ? frac_tok[static_cast<size_t>(baseline[r]) * K + k] : frac_span[static_cast<size_t>(baseline[r]) * K + k];
      spdlog::info("reduce: {:<24} {:>6} {:>+7.3g} {:>7} {:>8.4f} {:>8.4f} {:>+8.4f}  [{:+.4f}, {:+.4f}] {:>6.3f} {:>7.1f}", vector[r], layers[r], coef[r],
                   kind[r], base_f, tok ? frac_tok[x] : frac_span[x], tok ? d_tok[x] : d_span[x], tok ? d_tok_lo[x] : d_span_lo[x],
                   tok ? d_tok_hi[x] : d_span_hi[x], accuracy[r], think[r]);
    }
  });
  int64_t code = n_missing;
  rt.world_comm.bcast(std::span<int64_t>(&code, 1), 0);
  if (code > 0 && !cfg.reduce.allow_partial)
    throw IncompleteError("reduce: " + std::to_string(code) + " sweep tasks are not finished (see " + (sweep_dir(cfg) / "missing.txt").string() + ")");
}

}  // namespace ts::stages::reduce
