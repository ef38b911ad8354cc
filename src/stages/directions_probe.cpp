// Stage `directions probe`: per-layer linear probes (docs/directions.md; docs/algorithms.md §E) —
// multinomial logistic regression with L2 on standardised activations (directions/probe.h), one per
// hook, trained on a seeded split by trace and scored on the held-out traces.
//   in : directions.a (default <run.dir>/collect/activations.h5). Labels: the rows' span labels
//        (collect.positions = spans or span_tokens; unlabelled rows are left out), or, with directions.b,
//        the file a row comes from (classes directions.classes: e.g. reasoning against control)
//   out: <run.dir>/directions/probes.h5 (accuracy and macro-F1 with 95% cluster-bootstrap intervals, the
//        shuffled-label control, weights and biases per hook), probes.csv, and the .done marker
// Every check of the labels (two classes at least, directions.min_per_class training rows each) runs
// before anything is written. Hooks are dealt over the ranks.
#include <ATen/ATen.h>
#include <fmt/format.h>

#include <filesystem>
#include <map>
#include <set>

#include "artifacts/directions.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "directions/probe.h"
#include "stages/directions_inputs.h"
#include "stages/stage.h"

namespace ts::stages::directions_probe {
namespace fs = std::filesystem;
namespace dir = ts::directions;

namespace {

// The labelled rows: which rows of A (and B) enter, their class and trace, and the split.
struct Labels {
  std::vector<std::string> classes;
  std::vector<int64_t> rows_a, rows_b;  // rows used, per file
  at::Tensor y, group, test;            // [N] int64, int64, bool over rows_a then rows_b
  int64_t n_train = 0, n_test = 0, train_traces = 0, test_traces = 0;
  double majority = 0;
};

Labels make_labels(const Config& cfg, const ActivationInput& a, const ActivationInput* b) {
  const Config::Directions& d = cfg.directions;
  Labels l;
  std::vector<int64_t> y, group;
  if (b) {
    if (d.classes.size() != 2) throw InputError("<config>", "directions.classes", "needs two names (directions.a's class, then directions.b's)");
    l.classes = d.classes;
    const int64_t offset = static_cast<int64_t>(a.index.sequences.size());
    for (int64_t r = 0; r < a.n_rows(); ++r) l.rows_a.push_back(r), y.push_back(0), group.push_back(a.row_sequence[static_cast<size_t>(r)]);
    for (int64_t r = 0; r < b->n_rows(); ++r) l.rows_b.push_back(r), y.push_back(1), group.push_back(offset + b->row_sequence[static_cast<size_t>(r)]);
  } else {
    std::set<std::string> names;
    for (const std::string& s : a.row_label)
      if (!s.empty()) names.insert(s);
    if (names.empty())
      throw InputError(a.file.string(), "/activations/label", "the rows carry no labels (collect.positions = spans or span_tokens), and directions.b "
                                                              "gives no second class");
    l.classes.assign(names.begin(), names.end());
    for (int64_t r = 0; r < a.n_rows(); ++r) {
      const std::string& s = a.row_label[static_cast<size_t>(r)];
      if (s.empty()) continue;
      l.rows_a.push_back(r);
      y.push_back(std::distance(names.begin(), names.find(s)));
      group.push_back(a.row_sequence[static_cast<size_t>(r)]);
    }
  }
  const fs::path& file = a.file;
  if (l.classes.size() < 2) throw InputError(file.string(), "/activations/label", "holds a single class ('" + l.classes[0] + "'): a probe needs two");
  l.y = at::tensor(y, at::kLong);
  l.group = at::tensor(group, at::kLong);
  l.test = dir::group_split(l.group, d.test_share, d.seed);
  const at::Tensor train = l.test.logical_not();
  l.n_test = l.test.sum().item<int64_t>();
  l.n_train = static_cast<int64_t>(y.size()) - l.n_test;
  l.test_traces = std::get<0>(at::_unique(l.group.index({l.test}))).numel();
  l.train_traces = std::get<0>(at::_unique(l.group.index({train}))).numel();
  const at::Tensor counts = at::bincount(l.y.index({train}), {}, static_cast<int64_t>(l.classes.size()));
  for (size_t c = 0; c < l.classes.size(); ++c)
    if (counts[static_cast<int64_t>(c)].item<int64_t>() < d.min_per_class)
      throw InputError(file.string(), "directions.min_per_class",
                       fmt::format("class '{}' has {} training rows (of {} traces in training); it needs at least {}", l.classes[c],
                                   counts[static_cast<int64_t>(c)].item<int64_t>(), l.train_traces, d.min_per_class));
  if (l.n_test == 0) throw InputError(file.string(), "directions.test_share", "leaves no held-out rows");
  const int64_t major = counts.argmax().item<int64_t>();
  l.majority = l.y.index({l.test}).eq(major).to(at::kDouble).mean().item<double>();
  return l;
}

// Per hook: the 8 scores, then its weights and bias (zeros on the ranks that did not fit it).
struct Fits {
  at::Tensor scores;                    // [H, 8]: acc, lo, hi, f1, lo, hi, shuffled acc, shuffled f1
  std::vector<at::Tensor> weight, bias; // [C, D], [C] fp32
};

void fit_hook(const Config& cfg, const Labels& l, const at::Tensor& x, int64_t h, Fits& out) {
  const Config::Directions& d = cfg.directions;
  const int64_t C = static_cast<int64_t>(l.classes.size());
  const at::Tensor train = l.test.logical_not();
  const dir::ProbeOptions o{d.l2, d.max_iter};
  const at::Tensor xt = x.index({train}), yt = l.y.index({train}), xs = x.index({l.test}), ys = l.y.index({l.test}), gs = l.group.index({l.test});
  const dir::ProbeFit fit = dir::fit_probe(xt, yt, C, o);
  if (!fit.converged) spdlog::warn("directions probe: hook {} stopped after {} iterations without converging", h, fit.iterations);
  const at::Tensor pred = dir::probe_predict(fit, xs);
  const auto acc_ci = dir::bootstrap_interval(ys, pred, gs, C, false, d.bootstrap, d.seed);
  const auto f1_ci = dir::bootstrap_interval(ys, pred, gs, C, true, d.bootstrap, d.seed);
  const dir::ProbeFit shuffled = dir::fit_probe(xt, dir::shuffled_labels(yt, d.seed + 1), C, o);
  const at::Tensor spred = dir::probe_predict(shuffled, xs);
  const double row[8] = {dir::accuracy(ys, pred), acc_ci.lo, acc_ci.hi, dir::macro_f1(ys, pred, C), f1_ci.lo, f1_ci.hi,
                         dir::accuracy(ys, spred), dir::macro_f1(ys, spred, C)};
  out.scores[h].copy_(at::tensor(std::vector<double>(row, row + 8), at::kDouble));
  out.weight[static_cast<size_t>(h)].copy_(fit.weight);
  out.bias[static_cast<size_t>(h)].copy_(fit.bias);
}

Fits fit_all(const Config& cfg, Runtime& rt, const ActivationInput& a, const ActivationInput* b, const Labels& l) {
  const int64_t H = static_cast<int64_t>(a.hooks.size()), C = static_cast<int64_t>(l.classes.size());
  Fits f{at::zeros({H, 8}, at::kDouble), {}, {}};
  for (const auto& h : a.hooks) {
    f.weight.push_back(at::zeros({C, h.width}, at::kFloat));
    f.bias.push_back(at::zeros({C}, at::kFloat));
  }
  for (int64_t h = 0; h < H; ++h) {
    if (!my_hook(rt, static_cast<size_t>(h))) continue;
    const std::string& name = a.hooks[static_cast<size_t>(h)].name;
    at::Tensor x = hook_rows(a, name).index({at::tensor(l.rows_a, at::kLong)});
    if (b) x = at::cat({x, hook_rows(*b, name).index({at::tensor(l.rows_b, at::kLong)})});
    fit_hook(cfg, l, x, h, f);
    spdlog::info("directions probe: {} held-out accuracy {:.3f} [{:.3f}, {:.3f}], macro-F1 {:.3f}; shuffled labels {:.3f}", name,
                 f.scores[h][0].item<double>(), f.scores[h][1].item<double>(), f.scores[h][2].item<double>(), f.scores[h][3].item<double>(),
                 f.scores[h][6].item<double>());
  }
  rt.world_comm.allreduce_sum(std::span<double>(f.scores.data_ptr<double>(), static_cast<size_t>(f.scores.numel())));
  for (size_t h = 0; h < f.weight.size(); ++h) {
    rt.world_comm.allreduce_sum(std::span<float>(f.weight[h].data_ptr<float>(), static_cast<size_t>(f.weight[h].numel())));
    rt.world_comm.allreduce_sum(std::span<float>(f.bias[h].data_ptr<float>(), static_cast<size_t>(C)));
  }
  return f;
}

artifacts::ProbeResults results(const Config& cfg, const ActivationInput& a, const Labels& l, const Fits& f) {
  artifacts::ProbeResults r;
  r.classes = l.classes;
  for (size_t h = 0; h < a.hooks.size(); ++h) {
    r.hooks.push_back(a.hooks[h].name);
    r.layer.push_back(a.hooks[h].layer);
    r.width.push_back(a.hooks[h].width);
    const auto s = f.scores[static_cast<int64_t>(h)];
    const auto v = [&](int64_t i) { return s[i].item<double>(); };
    for (const auto& [dst, i] : {std::pair{&r.accuracy, 0}, {&r.accuracy_lo, 1}, {&r.accuracy_hi, 2}, {&r.macro_f1, 3}, {&r.macro_f1_lo, 4},
                                 {&r.macro_f1_hi, 5}, {&r.shuffled_accuracy, 6}, {&r.shuffled_macro_f1, 7}})
      dst->push_back(v(i));
    r.weights.emplace_back(f.weight[h].data_ptr<float>(), f.weight[h].data_ptr<float>() + f.weight[h].numel());
    r.bias.emplace_back(f.bias[h].data_ptr<float>(), f.bias[h].data_ptr<float>() + f.bias[h].numel());
  }
  r.n_train = l.n_train;
  r.n_test = l.n_test;
  r.n_train_traces = l.train_traces;
  r.n_test_traces = l.test_traces;
  r.majority_accuracy = l.majority;
  r.l2 = cfg.directions.l2;
  r.seed = static_cast<int64_t>(cfg.directions.seed);
  r.input = fs::absolute(a.file).string();
  return r;
}

}  // namespace

void run(const Config& cfg, Runtime& rt) {
  const Config::Directions& d = cfg.directions;
  const ActivationInput a = read_activation_input(cfg, directions_a(cfg), "directions.a");
  std::optional<ActivationInput> b;
  if (!d.b.empty()) {
    b = read_activation_input(cfg, d.b, "directions.b");
    for (const auto& h : a.hooks) require_hook(*b, h);
  }
  const Labels labels = make_labels(cfg, a, b ? &*b : nullptr);
  const std::string hash = artifacts::output_config_hash(cfg, {"directions"}, fmt::format("probe\n{}\n{}", a.sha256, b ? b->sha256 : ""));
  StageOutput out(cfg, rt, "directions probe", artifacts::PROBES_H5.in(cfg), hash);
  if (out.complete()) return;
  out.begin();
  spdlog::info("directions probe: {} classes, {} training rows ({} traces), {} held-out rows ({} traces), {} hooks over {} ranks", labels.classes.size(),
               labels.n_train, labels.train_traces, labels.n_test, labels.test_traces, a.hooks.size(), rt.world);
  const Fits fits = fit_all(cfg, rt, a, b ? &*b : nullptr, labels);
  if (rt.rank == 0) {
    const artifacts::ProbeResults r = results(cfg, a, labels, fits);
    const json prov = out.provenance();
    artifacts::write_probes(out.partial(), r, prov);
    const fs::path csv = artifacts::PROBES_CSV.in(cfg);
    write_file_atomic(csv, artifacts::probes_csv(r));
    out.commit_h5(prov, artifacts::PROBES, artifacts::probes_datasets(r), {.certified = {csv}});
  }
  rt.world_comm.barrier();
}

}  // namespace ts::stages::directions_probe
