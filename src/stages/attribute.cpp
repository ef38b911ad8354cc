// Stage `attribute`: attribution patching of each behaviour's steering vector at each layer
// (docs/algorithms.md §A.7), and the choice of steering layers from it.
//   in : attribute.generations, attribute.spans (defaults under <run.dir>, as `vectors` reads them),
//        attribute.vectors (default <run.dir>/vectors/vectors.h5: the feature vectors "<label>"),
//        model.path
//   out: <run.dir>/attribute/attribution.h5 (format thinksteer.attribution), skipped.jsonl (one line
//        per behaviour left out or left without positions, like `vectors`), provenance.json; .done
//        marker on attribution.h5 with the config hash
//
// Behaviours (attribute.labels, else every feature vector of the vectors file): one is left out, with
// a warning and a line in skipped.jsonl, when the spans file has no such label (label_not_in_spans),
// when its vector has count 0 at an attributed layer, i.e. `vectors` found no usable span of it and
// stored the vector as missing (vector_count_zero), or when its vector is all zero there
// (zero_vector); asked for by name in attribute.labels, each of these is an input error (exit 2). A
// behaviour attributed at no position (every span of the examples is its own: P_X is empty) keeps
// NaN effects, selects no layer, and is recorded (label_without_positions). Never a silent zero.
//
// §A.7, for behaviour X and each of the first attribute.n_examples traces with spans:
//   positions P_X = every span whose label != X (any label of the spans file, selected or not) with a
//   token before it: p = token_begin - 1, the position whose logits predict the span's first token;
//   f^ = f_X[l] / |f_X[l]| at the hook the vectors are applied at (resid_post in §A.5).
// Metrics (docs/decisions.md), a function of the logits z = logits[p]:
//   paper   the gradient §A.7's code actually computes: kl_div(log_softmax(z), log_softmax(z).detach(),
//           'batchmean') differentiates to dm/dy = -y / V for y = log_softmax(z) (the target read as
//           probabilities, V = vocab size), i.e. the surrogate m = -sum(stopgrad(y) * y) / V.
//   logprob log p(token[p + 1] | tokens[0..p]): the log-probability of the observed next token.
// Modes:
//   per-span  §A.7's loop: one forward of tokens [0, p] and one backward of m per span (the gradient
//             g_l = dm/dx_l[p] serves every label X != the span's label, where the original repeats the
//             pass per X; the original forwards [0, end), whose tail cannot change logits[p]).
//             effect = mean over the example's P_X of |f^ . g_l|.
//   trace     one forward and one backward per batch of traces, for every span, label and layer at
//             once: M = the metric summed over all positions of the trace (every label), G = dM/dx_l,
//             e = f^ . sum_{p in P_X} G[p]: the first-order change of M when f^ is added at every
//             position of P_X (what a finite difference with that hook measures); effect = |e| / |P_X|.
//             It differs from per-span by the cross terms dm_s/dx[p_s'] (later positions see earlier
//             ones) and by the sum before |.|: per-span gradients at their own positions, or a metric
//             restricted to P_X per label, would need a backward per span or per label.
// The stored `effect_signed` holds the same quantities before the absolute value (per-span: the mean of
// the signed f^ . g_l). Per behaviour and layer: mean and std (population, ddof 0) of the effect over the
// examples that have positions.
//
// Layer selection (§A.7's end, from train-steering-vectors/cosine_sim.py): per behaviour, the peaks of
// mean |effect| (a layer not below its neighbours among the allowed ones; the highest n_select, then the
// highest remaining layers if there are fewer peaks) among layers [first, n_layer - last). first =
// attribute.exclude_first, or with -1 the larger of ceil(exclude_first_fraction * n_layer) and one past
// the leading run of layers whose vector has max |cos| >= attribute.embed_cos with a row of the token
// embedding (those layers act on tokens, not behaviours); last = attribute.exclude_last, or
// ceil(0.1 * n_layer). The per-layer max |cos| with embedding and unembedding (lm_head) rows is stored.
//
// Work: every rank reads and checks every input. Examples sorted by length are cut into batches
// (attribute.batch_size traces in mode trace, one trace in per-span) the same for any rank layout, and
// replicas take contiguous shares balanced by tokens; each rank fills its examples' rows of the fp64
// result arrays, which are added over ranks (zeros elsewhere), so 1 and 2 ranks give equal results.
// Autograd crosses no rank: parallel.pipeline_stages must be 1.
#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "core/sha256.h"
#include "dist/partition.h"
#include "artifacts/attribution.h"
#include "artifacts/generations.h"
#include "artifacts/spans.h"
#include "artifacts/vectors.h"
#include "dist/batch_loop.h"
#include "dist/rank_model.h"
#include "model/checkpoint_files.h"
#include "model/checkpoint_identity.h"
#include "stages/stage.h"

namespace ts::stages::attribute {
namespace fs = std::filesystem;

namespace {

using artifacts::Generation;
using artifacts::Spans;
constexpr const char* SECTION = "attribute";

// ---------------------------------------------------------------------------------------------------
// Inputs

// One metric position: the logits at `pos` of trace `trace` predict `target`, the first token of a span.
struct Position {
  int64_t pos = 0, target = 0;
  int64_t label = 0;  // the span's label, an index into the spans file's labels
};

struct Plan {
  std::vector<std::string> labels;           // selected behaviours
  std::vector<int64_t> span_label;           // per selected label: its index in the spans file's labels
  std::vector<int64_t> layers;               // model layers attributed (ascending)
  HookSite site = HookSite::RESID_POST;
  std::string hook;                          // the vectors' hook_applied pattern
  at::Tensor units;                          // [labels, layers, D] fp64: f^ per label and layer
  std::vector<int64_t> examples;             // trace indices, in file order
  std::vector<std::vector<Position>> positions;  // per example: every span with a token before it
  std::vector<json> skipped;
  size_t n_labels() const { return labels.size(); }
  size_t n_layers() const { return layers.size(); }
  size_t n_examples() const { return examples.size(); }
};

HookSite vector_site(const VectorSet& set, const std::string& file, int64_t n_layer) {
  if (set.hook_applied.find("{l}") == std::string::npos)
    throw InputError(file, "hook_applied", "'" + set.hook_applied + "' is not a per-layer pattern blocks.{l}.<hook>");
  const HookPoint p = hook_parse(hook_at(set.hook_applied, 0), n_layer);
  if (p.site == HookSite::ATTN_Z || p.site == HookSite::LN_FINAL)
    throw InputError(file, "hook_applied", "'" + set.hook_applied + "' is not a d_model-sized block hook");
  return p.site;
}

std::vector<int64_t> select_layers(const Config& cfg, const VectorSet& set, const std::string& file, int64_t n_layer) {
  for (int64_t l : set.layers)
    if (l >= n_layer) throw InputError(file, "layers", "layer " + std::to_string(l) + " >= the model's " + std::to_string(n_layer) + " layers");
  if (cfg.attribute.layers.empty()) return set.layers;
  std::vector<int64_t> out;
  for (const std::string& s : cfg.attribute.layers) {
    const int64_t l = std::stoll(s);
    if (!set.layer_index(l)) throw InputError(file, "layers", "holds no vectors at layer " + s + " (asked for in attribute.layers)");
    out.push_back(l);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// Why a feature vector is not usable at every attributed layer (count 0: `vectors` stored it as
// missing; or all zero): {kind, detail}, or an empty kind when it is usable.
std::pair<std::string, std::string> vector_problem(const VectorSet& set, size_t name, const std::vector<int64_t>& layers, int64_t& layer) {
  for (int64_t l : layers) {
    const size_t li = *set.layer_index(l);
    layer = l;
    if (set.count(name, li) == 0)
      return {"vector_count_zero", "its vector has count 0 at layer " + std::to_string(l) +
                                       " (`vectors` found no usable span of it and stored the vector as missing): nothing to attribute"};
    const float* v = set.vector(name, li);
    double n2 = 0;
    for (int64_t i = 0; i < set.d_model; ++i) n2 += static_cast<double>(v[i]) * v[i];
    if (n2 == 0) return {"zero_vector", "its vector is all zero at layer " + std::to_string(l) + ": no direction to attribute"};
  }
  layer = -1;
  return {};
}

// The behaviours: attribute.labels (each must have a vector and spans), else every feature vector of
// the file whose label the spans file has (others recorded as skipped).
void select_labels(const Config& cfg, const VectorSet& set, const std::string& vfile, const Spans& spans, Plan& plan) {
  const bool asked = !cfg.attribute.labels.empty();
  std::vector<std::string> want = cfg.attribute.labels;
  if (!asked)
    for (const std::string& n : set.names)
      if (n.rfind("mean.", 0) != 0) want.push_back(n);
  for (const std::string& l : want) {
    if (std::count(want.begin(), want.end(), l) > 1) throw InputError("<config>", "attribute.labels", "label '" + l + "' listed twice");
    const auto name = set.name_index(l);
    if (!name) throw InputError(vfile, "names", "no vector '" + l + "' (asked for in attribute.labels; the file has " + std::to_string(set.n_names()) + " names)");
    const auto in_spans = std::find(spans.labels.begin(), spans.labels.end(), l);
    int64_t layer = -1;
    auto [kind, problem] = in_spans == spans.labels.end() ? std::pair<std::string, std::string>{"label_not_in_spans", "the spans file " + spans.file + " has no label '" + l + "'"}
                                                          : vector_problem(set, *name, plan.layers, layer);
    if (!kind.empty()) {
      if (asked) throw InputError(in_spans == spans.labels.end() ? spans.file : vfile, in_spans == spans.labels.end() ? "/labels" : "vectors", "'" + l + "': " + problem);
      const int64_t label_index = in_spans - spans.labels.begin();
      const int64_t n_spans = in_spans == spans.labels.end() ? 0 : std::count(spans.label.begin(), spans.label.end(), label_index);
      spdlog::warn("attribute: behaviour '{}' skipped: {} (skipped.jsonl)", l, problem);
      json rec = {{"kind", kind}, {"label", l}, {"spans", n_spans}, {"detail", problem}};
      if (layer >= 0) rec["layer"] = layer;
      plan.skipped.push_back(std::move(rec));
      continue;
    }
    plan.labels.push_back(l);
    plan.span_label.push_back(in_spans - spans.labels.begin());
  }
  if (plan.labels.empty()) throw InputError(vfile, "names", "no feature vector with spans to attribute (see the warnings above)");
}

// f^ = f / |f| in fp64, [labels, layers, D].
at::Tensor unit_vectors(const VectorSet& set, const Plan& plan) {
  at::Tensor u = at::empty({static_cast<int64_t>(plan.n_labels()), static_cast<int64_t>(plan.n_layers()), set.d_model}, at::kDouble);
  for (size_t k = 0; k < plan.n_labels(); ++k)
    for (size_t li = 0; li < plan.n_layers(); ++li) {
      const float* v = set.vector(*set.name_index(plan.labels[k]), *set.layer_index(plan.layers[li]));
      at::Tensor row = at::from_blob(const_cast<float*>(v), {set.d_model}, at::kFloat).to(at::kDouble);
      u[static_cast<int64_t>(k)][static_cast<int64_t>(li)].copy_(row / row.norm());
    }
  return u;
}

// §A.7's examples: the first n_examples traces with at least one span that has a token before it.
void plan_examples(const Config& cfg, const Spans& s, const std::vector<Generation>& gens, Plan& plan) {
  for (size_t t = 0; t < s.trace_ids.size(); ++t) {
    std::vector<Position> ps;
    for (int64_t r = s.span_offset[t]; r < s.span_offset[t] + s.n_spans[t]; ++r) {
      const int64_t b = s.token_begin[static_cast<size_t>(r)];
      if (b >= 1) ps.push_back({b - 1, gens[t].ids[static_cast<size_t>(b)], s.label[static_cast<size_t>(r)]});
    }
    if (ps.empty()) continue;
    plan.examples.push_back(static_cast<int64_t>(t));
    plan.positions.push_back(std::move(ps));
    if (cfg.attribute.n_examples > 0 && static_cast<int64_t>(plan.examples.size()) == cfg.attribute.n_examples) break;
  }
  if (plan.examples.empty()) throw InputError(s.file, "/spans/token_begin", "no span has a token before it: there is no position to attribute");
}

// ---------------------------------------------------------------------------------------------------
// Gradients

// Per label, layer and example: sums of |e| and e, and the positions they hold (fp64, every rank).
struct Results {
  std::vector<double> abs_sum, signed_sum;  // [labels][layers][examples]
  std::vector<int64_t> count;               // [labels][examples]
  size_t at(size_t k, size_t li, size_t e, const Plan& p) const { return (k * p.n_layers() + li) * p.n_examples() + e; }
};

// Grad probes at every attributed layer: x + zeros(requires_grad), kept so autograd::grad can name them.
struct Probes {
  HookSet hooks;
  std::vector<at::Tensor> probes;  // per attributed layer, after forward
  explicit Probes(int64_t n_layer) : hooks(n_layer) {}
};
void attach_probes(Probes& pr, const Plan& plan) {
  pr.probes.assign(plan.n_layers(), at::Tensor());
  for (size_t li = 0; li < plan.n_layers(); ++li)
    pr.hooks.add_fn({plan.site, plan.layers[li]}, [&pr, li](const at::Tensor& x, const HookContext&) {
      pr.probes[li] = at::zeros_like(x).requires_grad_(true);
      return x + pr.probes[li];
    });
}

// m per row of z [S, V] (see the header): paper's surrogate or the target's log-probability.
at::Tensor metric(const at::Tensor& z, const at::Tensor& target, AttributeMetric which) {
  const at::Tensor y = at::log_softmax(z.to(at::kFloat), -1);
  if (which == AttributeMetric::logprob) return y.gather(1, target.unsqueeze(1)).squeeze(1);
  return -(y.detach() * y).sum(-1) / static_cast<double>(z.size(-1));
}

// Logits [B, T, V] of right-padded tokens (causal: the padding after a trace never reaches it).
at::Tensor forward_logits(const StageModel& m, const at::Tensor& tokens, HookSet& hooks, c10::Device device) {
  ForwardArgs args;
  args.tokens = tokens.to(device);
  args.positions = at::arange(tokens.size(1), at::kLong).unsqueeze(0).expand({tokens.size(0), tokens.size(1)}).contiguous().to(device);
  args.hooks = &hooks;
  args.logits = LogitsMode::ALL;
  return m.model->forward(args);
}

at::Tensor token_tensor(const std::vector<int32_t>& ids, int64_t n) {
  return at::tensor(std::vector<int64_t>(ids.begin(), ids.begin() + n), at::kLong);
}

// Mode per-span: one forward of tokens [0, p] and one backward of m per position of example e.
void attribute_per_span(const Config& cfg, const StageModel& m, const Plan& plan, const std::vector<Generation>& gens, size_t e,
                        c10::Device device, Results& r) {
  const std::vector<int32_t>& ids = gens[static_cast<size_t>(plan.examples[e])].ids;
  const at::Tensor units = plan.units.to(device);
  for (const Position& ps : plan.positions[e]) {
    Probes pr(m.config.n_layer);
    attach_probes(pr, plan);
    const at::Tensor logits = forward_logits(m, token_tensor(ids, ps.pos + 1).unsqueeze(0), pr.hooks, device);
    const at::Tensor z = logits[0].narrow(0, ps.pos, 1);
    const at::Tensor mval = metric(z, at::full({1}, ps.target, at::kLong).to(device), cfg.attribute.metric).sum();
    const std::vector<at::Tensor> grads = torch::autograd::grad({mval}, pr.probes, {}, false, false, true);
    for (size_t li = 0; li < plan.n_layers(); ++li) {
      const at::Tensor g = grads[li].defined() ? grads[li][0][ps.pos].to(at::kDouble) : at::zeros({m.config.d_model}, units.options());
      const at::Tensor dots = units.select(1, static_cast<int64_t>(li)).matmul(g).cpu();  // [labels]
      for (size_t k = 0; k < plan.n_labels(); ++k) {
        if (plan.span_label[k] == ps.label) continue;  // §A.7: only spans of other behaviours
        const double d = dots[static_cast<int64_t>(k)].item<double>();
        r.abs_sum[r.at(k, li, e, plan)] += std::abs(d);
        r.signed_sum[r.at(k, li, e, plan)] += d;
      }
    }
    for (size_t k = 0; k < plan.n_labels(); ++k) r.count[k * plan.n_examples() + e] += plan.span_label[k] != ps.label;
  }
}

// Mode trace: one forward and one backward of M = the metric summed over every position of the batch;
// per label X the gradient is read at P_X.
void attribute_batch(const Config& cfg, const StageModel& m, const Plan& plan, const std::vector<Generation>& gens,
                     const std::vector<size_t>& batch, c10::Device device, Results& r) {
  int64_t T = 0;
  for (size_t e : batch) T = std::max<int64_t>(T, static_cast<int64_t>(gens[static_cast<size_t>(plan.examples[e])].ids.size()));
  at::Tensor tokens = at::full({static_cast<int64_t>(batch.size()), T}, m.pad_id, at::kLong);
  std::vector<int64_t> flat, target, row, label;
  for (size_t b = 0; b < batch.size(); ++b) {
    const std::vector<int32_t>& ids = gens[static_cast<size_t>(plan.examples[batch[b]])].ids;
    tokens[static_cast<int64_t>(b)].narrow(0, 0, static_cast<int64_t>(ids.size())).copy_(token_tensor(ids, static_cast<int64_t>(ids.size())));
    for (const Position& ps : plan.positions[batch[b]]) {
      flat.push_back(static_cast<int64_t>(b) * T + ps.pos);
      target.push_back(ps.target);
      row.push_back(static_cast<int64_t>(b));
      label.push_back(ps.label);
    }
  }
  Probes pr(m.config.n_layer);
  attach_probes(pr, plan);
  const at::Tensor logits = forward_logits(m, tokens, pr.hooks, device);
  const at::Tensor idx = at::tensor(flat, at::kLong).to(device), rows = at::tensor(row, at::kLong).to(device);
  const at::Tensor M = metric(logits.reshape({-1, logits.size(-1)}).index_select(0, idx), at::tensor(target, at::kLong).to(device), cfg.attribute.metric).sum();
  const std::vector<at::Tensor> grads = torch::autograd::grad({M}, pr.probes, {}, false, false, true);
  const at::Tensor labels = at::tensor(label, at::kLong).to(device), units = plan.units.to(device);
  const int64_t B = static_cast<int64_t>(batch.size());
  for (size_t li = 0; li < plan.n_layers(); ++li) {
    if (!grads[li].defined()) continue;
    const at::Tensor g = grads[li].reshape({-1, grads[li].size(-1)}).index_select(0, idx).to(at::kDouble);  // [S, D]
    const at::Tensor dots = g.matmul(units.select(1, static_cast<int64_t>(li)).t());                       // [S, labels]
    for (size_t k = 0; k < plan.n_labels(); ++k) {
      const at::Tensor w = labels.ne(plan.span_label[k]).to(at::kDouble);  // P_X: spans of other behaviours
      const at::Tensor per_row = at::zeros({B}, at::kDouble).to(device).index_add_(0, rows, dots.select(1, static_cast<int64_t>(k)) * w).cpu();
      for (int64_t b = 0; b < B; ++b) {
        const double v = per_row[b].item<double>();
        r.abs_sum[r.at(k, li, batch[static_cast<size_t>(b)], plan)] += std::abs(v);
        r.signed_sum[r.at(k, li, batch[static_cast<size_t>(b)], plan)] += v;
      }
    }
  }
  for (size_t b = 0; b < batch.size(); ++b)
    for (const Position& ps : plan.positions[batch[b]])
      for (size_t k = 0; k < plan.n_labels(); ++k) r.count[k * plan.n_examples() + batch[b]] += plan.span_label[k] != ps.label;
}

// Batches of example indices, longest trace first, the same for every rank layout.
std::vector<std::vector<size_t>> make_batches(const Plan& plan, const std::vector<Generation>& gens, int64_t batch_size) {
  std::vector<size_t> order(plan.n_examples());
  std::iota(order.begin(), order.end(), size_t{0});
  auto len = [&](size_t e) { return gens[static_cast<size_t>(plan.examples[e])].ids.size(); };
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return len(a) > len(b); });
  std::vector<std::vector<size_t>> out;
  for (size_t i = 0; i < order.size(); i += static_cast<size_t>(batch_size))
    out.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(i), order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), i + static_cast<size_t>(batch_size))));
  return out;
}

// COLLECTIVE: this replica's batches; every rank ends with every example's sums. Returns the seconds
// the slowest rank spent in forward and backward passes.
double run_attribution(const Config& cfg, Runtime& rt, const StageModel& m, const Plan& plan, const std::vector<Generation>& gens, Results& r) {
  const bool per_span = cfg.attribute.mode == AttributeMode::per_span;
  const auto batches = make_batches(plan, gens, per_span ? 1 : cfg.attribute.batch_size);
  std::vector<int64_t> costs;
  for (const auto& b : batches) costs.push_back(static_cast<int64_t>(b.size() * gens[static_cast<size_t>(plan.examples[b.front()])].ids.size()));
  const Range share = partition_contiguous(costs, rt.n_replicas)[static_cast<size_t>(rt.replica)];
  double seconds = 0;
  BatchLoop loop;
  loop.work = [&](int64_t b) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::vector<size_t>& batch = batches[static_cast<size_t>(share.begin + b)];
    if (per_span) attribute_per_span(cfg, m, plan, gens, batch.front(), rt.device, r);
    else attribute_batch(cfg, m, plan, gens, batch, rt.device, r);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  loop.save = [] { return std::string("nothing (attribute keeps no partial results; the rerun starts over)"); };
  loop.what = "attribute";
  loop.progress_seconds = cfg.log.progress_seconds;
  run_batches(rt, share.size(), loop);
  rt.world_comm.allreduce_sum(std::span<double>(r.abs_sum));
  rt.world_comm.allreduce_sum(std::span<double>(r.signed_sum));
  rt.world_comm.allreduce_sum(std::span<int64_t>(r.count));
  std::vector<double> s{seconds};
  rt.world_comm.allreduce_sum(std::span<double>(s));  // summed over ranks: the compute spent
  return s[0];
}

// ---------------------------------------------------------------------------------------------------
// Summary, cosines, selection, output

struct Summary {
  std::vector<float> effect, effect_signed;  // [labels][layers][examples], NaN where the example has no position
  std::vector<float> mean, std;              // [labels][layers]
  std::vector<int64_t> n_examples;           // [labels]: examples with positions
  std::vector<float> cos_embed, cos_unembed; // [labels][layers]
  std::vector<int64_t> first, last;          // [labels]: layers excluded at the start and end
  std::vector<int64_t> selected;             // [labels][n_select], -1 padded
};

void summarise(const Plan& p, const Results& r, Summary& s) {
  const size_t K = p.n_labels(), L = p.n_layers(), E = p.n_examples();
  s.effect.assign(K * L * E, NAN);
  s.effect_signed.assign(K * L * E, NAN);
  s.mean.assign(K * L, NAN);
  s.std.assign(K * L, NAN);
  s.n_examples.assign(K, 0);
  for (size_t k = 0; k < K; ++k) {
    for (size_t e = 0; e < E; ++e) s.n_examples[k] += r.count[k * E + e] > 0;
    for (size_t li = 0; li < L; ++li) {
      double sum = 0, sq = 0;
      for (size_t e = 0; e < E; ++e) {
        const int64_t c = r.count[k * E + e];
        if (c == 0) continue;
        const double v = r.abs_sum[r.at(k, li, e, p)] / static_cast<double>(c);
        s.effect[r.at(k, li, e, p)] = static_cast<float>(v);
        s.effect_signed[r.at(k, li, e, p)] = static_cast<float>(r.signed_sum[r.at(k, li, e, p)] / static_cast<double>(c));
        sum += v;
        sq += v * v;
      }
      if (s.n_examples[k] == 0) continue;
      const double n = static_cast<double>(s.n_examples[k]), mu = sum / n;
      s.mean[k * L + li] = static_cast<float>(mu);
      s.std[k * L + li] = static_cast<float>(std::sqrt(std::max(0.0, sq / n - mu * mu)));
    }
  }
}

// Per label and layer: max over rows of |cos(f, row)| of a [V, D] matrix.
std::vector<float> max_abs_cos(const at::Tensor& rows, const at::Tensor& units) {
  const at::Tensor r = rows.to(at::kCPU).to(at::kDouble);
  const at::Tensor rn = r / r.norm(2, {1}, true).clamp_min(1e-30);
  const at::Tensor u = units.reshape({-1, units.size(-1)});
  const at::Tensor c = rn.matmul(u.t()).abs().amax(0).to(at::kFloat).contiguous();  // [labels * layers]
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

// Selection (see the header) for label k.
void select_layers_for(const Config& cfg, const Plan& p, int64_t n_layer, size_t k, Summary& s) {
  const size_t L = p.n_layers();
  int64_t first = cfg.attribute.exclude_first;
  if (first < 0) {
    first = static_cast<int64_t>(std::ceil(cfg.attribute.exclude_first_fraction * static_cast<double>(n_layer) - 1e-9));
    for (size_t li = 0; li < L && s.cos_embed[k * L + li] >= cfg.attribute.embed_cos; ++li) first = std::max(first, p.layers[li] + 1);
  }
  const int64_t last = cfg.attribute.exclude_last >= 0 ? cfg.attribute.exclude_last : static_cast<int64_t>(std::ceil(0.1 * static_cast<double>(n_layer) - 1e-9));
  s.first.push_back(first);
  s.last.push_back(last);
  std::vector<size_t> allowed;
  for (size_t li = 0; li < L; ++li)
    if (p.layers[li] >= first && p.layers[li] < n_layer - last && !std::isnan(s.mean[k * L + li])) allowed.push_back(li);
  auto mean = [&](size_t li) { return s.mean[k * L + li]; };
  std::vector<size_t> peaks, rest;
  for (size_t i = 0; i < allowed.size(); ++i) {
    const bool left = i == 0 || mean(allowed[i]) >= mean(allowed[i - 1]), right = i + 1 == allowed.size() || mean(allowed[i]) >= mean(allowed[i + 1]);
    (left && right ? peaks : rest).push_back(allowed[i]);
  }
  auto by_mean = [&](size_t a, size_t b) { return mean(a) > mean(b); };
  std::stable_sort(peaks.begin(), peaks.end(), by_mean);
  std::stable_sort(rest.begin(), rest.end(), by_mean);
  peaks.insert(peaks.end(), rest.begin(), rest.end());
  for (int64_t j = 0; j < cfg.attribute.n_select; ++j)
    s.selected.push_back(j < static_cast<int64_t>(peaks.size()) ? p.layers[peaks[static_cast<size_t>(j)]] : -1);
  if (peaks.empty() && s.n_examples[k] > 0) spdlog::warn("attribute: '{}': no layer left in [{}, {}) to select", p.labels[k], first, n_layer - last);
}

void log_table(const Plan& p, const Summary& s, int64_t n_select) {
  const size_t L = p.n_layers();
  for (size_t k = 0; k < p.n_labels(); ++k) {
    spdlog::info("attribute: {} ({} examples; layers < {} and >= the last {} excluded)", p.labels[k], s.n_examples[k], s.first[k], s.last[k]);
    spdlog::info("attribute:   layer   mean|effect|        std   cos(embed) cos(unembed)");
    for (size_t li = 0; li < L; ++li) {
      const bool chosen = std::find(s.selected.begin() + static_cast<std::ptrdiff_t>(k) * n_select, s.selected.begin() + static_cast<std::ptrdiff_t>(k + 1) * n_select, p.layers[li]) !=
                          s.selected.begin() + static_cast<std::ptrdiff_t>(k + 1) * n_select;
      spdlog::info("attribute:   {:>5} {:>14.6g} {:>10.4g} {:>12.4f} {:>12.4f}{}", p.layers[li], s.mean[k * L + li], s.std[k * L + li], s.cos_embed[k * L + li],
                   s.cos_unembed[k * L + li], chosen ? "  <- selected" : "");
    }
  }
}

// Everything every rank knows before the passes.
struct Setup {
  fs::path generations, spans, vectors;
  std::string generations_sha, spans_sha, vectors_sha, config_hash;
  std::vector<Generation> gens;
  Plan plan;
};

void write_h5(const Config& cfg, StageOutput& out, const Setup& in, const Summary& s, double seconds) {
  const Plan& p = in.plan;
  const int64_t K = static_cast<int64_t>(p.n_labels()), L = static_cast<int64_t>(p.n_layers()), E = static_cast<int64_t>(p.n_examples());
  std::vector<json> skipped = p.skipped;
  for (size_t k = 0; k < p.n_labels(); ++k)
    if (s.n_examples[k] == 0) {
      const std::string what = "no example has a span of another behaviour (P_X is empty): its effects are NaN and no layer is selected";
      spdlog::warn("attribute: behaviour '{}': {} (skipped.jsonl)", p.labels[k], what);
      skipped.push_back({{"kind", "label_without_positions"}, {"label", p.labels[k]}, {"examples", E}, {"detail", what}});
    }
  json kinds = json::object();
  for (const json& r : skipped) kinds[r["kind"].get<std::string>()] = kinds.value(r["kind"].get<std::string>(), int64_t{0}) + 1;
  json prov = out.provenance(cfg.model.path);
  prov.update({{"generations", fs::absolute(in.generations).string()}, {"generations_sha256", in.generations_sha},
               {"spans", fs::absolute(in.spans).string()}, {"spans_sha256", in.spans_sha},
               {"vectors", fs::absolute(in.vectors).string()}, {"vectors_sha256", in.vectors_sha}, {"hook", p.hook},
               {"metric", option_text(cfg.attribute.metric)}, {"mode", option_text(cfg.attribute.mode)}, {"seconds", seconds}, {"skipped", kinds},
               {"effect", cfg.attribute.mode == AttributeMode::trace ? "|f^ . sum_{p in P_X} dM/dx[p]| / |P_X|, M = sum of the metric over all span positions"
                                                          : "mean over P_X of |f^ . dm_p/dx[p]| (docs/algorithms.md §A.7)"}});
  const std::vector<h5::DatasetSpec> specs = artifacts::attribution_datasets(K, L, E, cfg.attribute.n_select);
  std::vector<int64_t> positions(static_cast<size_t>(K * E));
  for (size_t k = 0; k < p.n_labels(); ++k)
    for (size_t e = 0; e < p.n_examples(); ++e) {
      int64_t c = 0;
      for (const Position& ps : p.positions[e]) c += ps.label != p.span_label[k];
      positions[k * p.n_examples() + e] = c;
    }
  std::vector<std::string> ids;
  for (int64_t t : p.examples) ids.push_back(in.gens[static_cast<size_t>(t)].id);
  {
    h5::SerialFile f(out.partial(), h5::SerialFile::Mode::CREATE);
    const void* data[] = {s.effect.data(), s.effect_signed.data(), s.mean.data(), s.std.data(), s.cos_embed.data(), s.cos_unembed.data(),
                          s.n_examples.data(), s.first.data(), s.last.data(), s.selected.data(), p.layers.data(), positions.data()};
    for (size_t i = 0; i < specs.size(); ++i) f.write_dataset(specs[i], data[i]);
    f.write_strings("/labels", p.labels, "label");
    f.write_strings("/example_id", ids, "example");
    artifacts::write_h5_identity(f, prov, artifacts::ATTRIBUTION);
    f.set_attr("/", "metric", option_text(cfg.attribute.metric));
    f.set_attr("/", "mode", option_text(cfg.attribute.mode));
    f.set_attr("/", "hook", p.hook);
  }
  std::string lines;
  for (const json& r : skipped) lines += r.dump() + "\n";
  write_file_atomic(out.dir() / "skipped.jsonl", lines);
  out.commit_h5(prov, artifacts::ATTRIBUTION, specs);
  for (const auto& [kind, count] : kinds.items()) spdlog::info("attribute: skipped {:<24} {:>4} (see skipped.jsonl)", kind, count.get<int64_t>());
  spdlog::info("attribute: wrote {} ({} labels x {} layers x {} examples, metric {}, mode {}, {:.3f} s of passes)", out.path().string(), K, L, E,
               option_name(cfg.attribute.metric), option_name(cfg.attribute.mode), seconds);
}

void read_inputs(const Config& cfg, Setup& in) {
  const fs::path model_dir = cfg.model.path;
  const Tokenizer tok = Tokenizer::from_file(model_dir / "tokenizer.json");
  in.gens = artifacts::read_generations(in.generations, tok, std::string(SECTION) + ".generations");
  const Spans spans = artifacts::read_spans(in.spans, std::string(SECTION) + ".spans");
  artifacts::check_same_generations(spans, in.gens, in.generations, in.generations_sha, sha256_file(model_dir / "tokenizer.json"), SECTION);
  artifacts::verify_committed(in.spans, std::string(SECTION) + ".spans");
  const ModelConfig mc = checkpoint_open(model_dir).config;
  const VectorSet set = vectors_read_h5(in.vectors);
  artifacts::verify_committed(in.vectors, "attribute.vectors");
  const std::string vfile = in.vectors.string();
  if (set.d_model != mc.d_model)
    throw InputError(vfile, "d_model", std::to_string(set.d_model) + ", but model.path's model has d_model " + std::to_string(mc.d_model) + ": vectors of another model");
  Plan& p = in.plan;
  p.site = vector_site(set, vfile, mc.n_layer);
  p.hook = set.hook_applied;
  p.layers = select_layers(cfg, set, vfile, mc.n_layer);
  select_labels(cfg, set, vfile, spans, p);
  p.units = unit_vectors(set, p);
  plan_examples(cfg, spans, in.gens, p);
}

}  // namespace

void run(const Config& cfg, Runtime& rt) {
  if (cfg.model.path.empty()) throw InputError("<config>", "model.path", "no checkpoint directory given");
  if (rt.n_stages > 1) throw InputError("<config>", "parallel.pipeline_stages", "attribute needs gradients through the whole model: use 1 stage (data-parallel ranks only)");
  Setup in;
  in.generations = artifacts::input_path(cfg.attribute.generations, cfg, artifacts::GENERATIONS_JSONL);
  in.spans = artifacts::input_path(cfg.attribute.spans, cfg, artifacts::SPANS_H5);
  in.vectors = artifacts::input_path(cfg.attribute.vectors, cfg, artifacts::VECTORS_H5);
  const std::tuple<const fs::path*, const char*, const char*> files[] = {{&in.generations, "attribute.generations", "generate"},
                                                                         {&in.spans, "attribute.spans", "annotate"},
                                                                         {&in.vectors, "attribute.vectors", "vectors"}};
  for (const auto& [path, key, stage] : files)
    if (!fs::is_regular_file(*path)) throw InputError(path->string(), key, std::string("no such file (run `thinksteer ") + stage + "` first, or set " + key + ")");
  in.generations_sha = sha256_file(in.generations);
  in.spans_sha = sha256_file(in.spans);
  in.vectors_sha = sha256_file(in.vectors);
  in.config_hash = artifacts::output_config_hash(cfg, {"model", "attribute"}, in.generations_sha + "\n" + in.spans_sha + "\n" + in.vectors_sha + "\n" +
                                                                      checkpoint_identity(cfg.model.path));
  StageOutput out(cfg, rt, SECTION, artifacts::ATTRIBUTION_H5.in(cfg), in.config_hash);
  if (out.complete()) return;
  read_inputs(cfg, in);
  out.begin();
  if (rt.rank == 0) {
    fs::remove(out.path());
    fs::remove(out.dir() / "skipped.jsonl");
  }
  const StageModel m = load_stage_model(cfg, rt);
  const Plan& p = in.plan;
  Results r{std::vector<double>(p.n_labels() * p.n_layers() * p.n_examples(), 0.0), std::vector<double>(p.n_labels() * p.n_layers() * p.n_examples(), 0.0),
            std::vector<int64_t>(p.n_labels() * p.n_examples(), 0)};
  const double seconds = run_attribution(cfg, rt, m, p, in.gens, r);
  if (rt.rank == 0) {
    Summary s;
    summarise(p, r, s);
    s.cos_embed = max_abs_cos(m.model->weights().embed, p.units);
    s.cos_unembed = max_abs_cos(m.model->weights().lm_head, p.units);
    for (size_t k = 0; k < p.n_labels(); ++k) select_layers_for(cfg, p, m.config.n_layer, k, s);
    log_table(p, s, cfg.attribute.n_select);
    write_h5(cfg, out, in, s, seconds);
  }
  rt.world_comm.barrier();
}

}  // namespace ts::stages::attribute
