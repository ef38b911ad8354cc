// Stage `vectors`: difference-of-means steering vectors per behaviour and layer (docs/algorithms.md §A.4).
//   in : vectors.generations (default <run.dir>/generate/generations.jsonl), vectors.spans (default
//        <run.dir>/annotate/spans.h5: `annotate` with model.path on exactly those generations, so its
//        token ranges index the sequence `collect` runs: prompt tokens, then generated tokens),
//        model.path
//   out: <run.dir>/vectors/vectors.h5 and vectors.safetensors (io/vectors.h layouts), skipped.jsonl
//        (one line per thing left out), provenance.json, with vectors.gguf = true one llama.cpp
//        control vector <label>.gguf per label; .done marker on vectors.h5 with the config hash
//
// Names in the vector files (hook_measured = hook_applied = the hook, docs/decisions.md):
//   "<label>"       the feature vector f = M_label - M_overall, rescaled per layer to |M_overall| when
//                   vectors.rescale (§A.4 step 5); count = the label's spans
//   "mean.<label>"  the raw mean M_label of the label's span windows; count = spans
//   "mean.overall"  the raw mean M_overall of the per-trace overall means; count = traces
// A label without usable spans keeps its names with count 0 and zero values (io/vectors.h: a missing
// vector) and a line in skipped.jsonl; a zero vector never stands for a result.
//
// §A.4 on token positions: a trace's overall window is [min start, max end) over all its spans (every
// label of the file, whatever vectors.labels selects), its mean o_i; a span's window is
// vectors/windows.h's (s1: the preceding token and the first <= 10 span tokens), its mean s. M_label
// is the arithmetic mean of s over the label's spans, M_overall that of o_i over traces (what the
// reference's running means compute). Spans without a window (empty, at position 0, no tokens) are
// skipped and recorded.
//
// Work: every rank reads and validates every input (a bad input fails alike everywhere before
// anything is written). The traces with windows are sorted by length and cut into batches of
// vectors.batch_size over all traces, whatever the rank layout; data-parallel replicas take contiguous
// shares of the batches balanced by tokens. So a trace runs in the same batch with the same padding on
// 1, 2 or 3 ranks, and results differ between layouts only in the order of fp64 additions. One forward
// pass per batch serves every label and layer: at each hooked layer the window positions are gathered,
// converted to fp64, weighted by 1 / window length and index-added into per-name sums. Sums and counts
// are added over ranks (MPI_Allreduce); rank 0 writes. A stop request ends the run with nothing stored
// (exit 75): the rerun starts over.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "core/sha256.h"
#include "artifacts/generations.h"
#include "artifacts/spans.h"
#include "artifacts/vectors.h"
#include "dist/batch_loop.h"
#include "model/checkpoint_files.h"
#include "model/checkpoint_identity.h"
#include "stages/stage.h"
#include "stages/trace_forward.h"
#include "vectors/contrast.h"
#include "vectors/windows.h"

namespace ts::stages::vectors {
namespace fs = std::filesystem;

namespace {

constexpr const char* MEAN_PREFIX = "mean.";
constexpr const char* OVERALL = "overall";


// ---------------------------------------------------------------------------------------------------
// Inputs

// Generations and spans: artifacts/generations.h, artifacts/spans.h.
using artifacts::Generation;
using artifacts::Spans;

// Characters io/vectors.h allows in a name.
bool valid_name(const std::string& n) {
  return !n.empty() && std::all_of(n.begin(), n.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("_.+-").find(c) != std::string_view::npos; });
}

// Indices into s.labels of the behaviours to compute (vectors.labels, else all), each usable as a name.
std::vector<int32_t> select_labels(const Config& cfg, const Spans& s) {
  std::vector<int32_t> out;
  if (cfg.vectors.labels.empty()) {
    out.resize(s.labels.size());
    std::iota(out.begin(), out.end(), 0);
  }
  for (const std::string& want : cfg.vectors.labels) {
    const auto it = std::find(s.labels.begin(), s.labels.end(), want);
    if (it == s.labels.end()) throw InputError(s.file, "/labels", "has no label '" + want + "' (asked for in vectors.labels)");
    const int32_t k = static_cast<int32_t>(it - s.labels.begin());
    if (std::find(out.begin(), out.end(), k) != out.end()) throw InputError("<config>", "vectors.labels", "label '" + want + "' listed twice");
    out.push_back(k);
  }
  for (int32_t k : out) {
    const std::string& l = s.labels[static_cast<size_t>(k)];
    if (!valid_name(l) || l == OVERALL || l.rfind(MEAN_PREFIX, 0) == 0 || l.size() > 200)
      throw InputError(s.file, "/labels", "label '" + l + "' cannot name a vector (letters, digits and _.+- only; not 'overall' or 'mean.*')");
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// What to average: windows per trace, counts per name, and the record of what was skipped

// One window whose mean goes into the sum of vector `name` (a selected label's position, or overall).
struct Window {
  TokenRange range;
  int32_t name = 0;
};

struct Plan {
  std::vector<std::string> labels;               // selected labels; name k < labels.size(), overall = labels.size()
  std::vector<std::vector<Window>> windows;      // per trace
  std::vector<int64_t> counts;                   // per name: windows averaged
  std::vector<json> skipped;                     // skipped.jsonl lines
  size_t overall() const { return labels.size(); }
};

json skip_record(const std::string& kind, const Spans& s, int64_t trace, int64_t row, const std::string& detail) {
  json j = {{"kind", kind}, {"trace", trace}, {"id", s.trace_ids[static_cast<size_t>(trace)]}};
  if (row >= 0) j.update({{"span", row}, {"label", s.labels[static_cast<size_t>(s.label[static_cast<size_t>(row)])]},
                          {"token_begin", s.token_begin[static_cast<size_t>(row)]}, {"token_end", s.token_end[static_cast<size_t>(row)]}});
  j["detail"] = detail;
  return j;
}

// The windows of trace t: one per span of a selected label that has one, and the overall window.
void plan_trace(const Spans& s, int64_t t, const std::vector<int32_t>& name_of_label, DomWindow window, Plan& plan) {
  std::vector<TokenRange> with_tokens;
  std::vector<Window>& out = plan.windows[static_cast<size_t>(t)];
  const int64_t b = s.span_offset[static_cast<size_t>(t)];
  for (int64_t r = b; r < b + s.n_spans[static_cast<size_t>(t)]; ++r) {
    const TokenRange tokens{s.token_begin[static_cast<size_t>(r)], s.token_end[static_cast<size_t>(r)]};
    if (tokens.begin < 0) {
      plan.skipped.push_back(skip_record("no_tokens", s, t, r, "no token overlaps the span (see the annotate problems)"));
      continue;
    }
    with_tokens.push_back(tokens);
    const int32_t name = name_of_label[static_cast<size_t>(s.label[static_cast<size_t>(r)])];
    if (name < 0) continue;  // a label not selected: it still bounds the overall window
    const SpanWindow w = dom_span_window(tokens.begin, tokens.end, window);
    if (!w.skip.empty()) plan.skipped.push_back(skip_record(w.skip, s, t, r, "no window to average (docs/algorithms.md §A.4 skips it as NaN)"));
    else out.push_back({w.range, name});
  }
  if (const auto all = dom_overall_window(with_tokens)) out.push_back({*all, static_cast<int32_t>(plan.overall())});
  else plan.skipped.push_back(skip_record("trace_without_spans", s, t, -1, "no span with tokens: the trace has no overall window"));
}

// Labels left without windows: an error when asked for by name, else a recorded skip (count 0).
void check_label_counts(const Config& cfg, const Spans& s, Plan& plan) {
  for (size_t k = 0; k < plan.labels.size(); ++k) {
    if (plan.counts[k] > 0) continue;
    const int64_t rows = std::count(s.label.begin(), s.label.end(), std::find(s.labels.begin(), s.labels.end(), plan.labels[k]) - s.labels.begin());
    const std::string what = "label '" + plan.labels[k] + "' has no usable span (" + std::to_string(rows) + " spans in the file, none with a window)";
    if (!cfg.vectors.labels.empty()) throw InputError(s.file, "/spans/label", what + "; vectors.labels asks for it");
    spdlog::warn("vectors: {}: skipped, its vectors are stored as missing (count 0)", what);
    plan.skipped.push_back({{"kind", "label_without_spans"}, {"label", plan.labels[k]}, {"spans", rows}, {"detail", what}});
  }
  if (std::all_of(plan.counts.begin(), plan.counts.begin() + static_cast<std::ptrdiff_t>(plan.labels.size()), [](int64_t c) { return c == 0; }))
    throw InputError(s.file, "/spans", "no usable span of any selected label: there is nothing to average");
}

Plan make_plan(const Config& cfg, const Spans& s, const std::vector<int32_t>& selected) {
  Plan plan;
  std::vector<int32_t> name_of_label(s.labels.size(), -1);
  for (size_t k = 0; k < selected.size(); ++k) {
    plan.labels.push_back(s.labels[static_cast<size_t>(selected[k])]);
    name_of_label[static_cast<size_t>(selected[k])] = static_cast<int32_t>(k);
  }
  plan.windows.resize(s.trace_ids.size());
  const DomWindow window = cfg.vectors.window;
  for (int64_t t = 0; t < static_cast<int64_t>(s.trace_ids.size()); ++t) plan_trace(s, t, name_of_label, window, plan);
  plan.counts.assign(plan.labels.size() + 1, 0);
  for (const auto& ws : plan.windows)
    for (const Window& w : ws) ++plan.counts[static_cast<size_t>(w.name)];
  check_label_counts(cfg, s, plan);
  return plan;
}

// ---------------------------------------------------------------------------------------------------
// The forward passes (stages/trace_forward.h) and the sums

// Per-name fp64 sums at every hooked layer, and the windows that went into them.
struct Sums {
  at::Tensor sums;              // [names, hooked layers, D] fp64, on the compute device
  std::vector<int64_t> counts;  // [names][hooked layers]
};

// One micro-batch's window positions, flattened (its tokens are trace_forward.h's, right padded to T).
struct Gather {
  at::Tensor position, weight, name;  // [P]: b * T + t, 1 / window size (fp64), name index
  std::vector<int64_t> windows;       // per name: windows in the micro-batch
};

Gather make_gather(const Plan& plan, std::span<const int64_t> traces, int64_t T, c10::Device device) {
  Gather g;
  g.windows.assign(plan.counts.size(), 0);
  std::vector<int64_t> pos, name;
  std::vector<double> weight;
  for (int64_t b = 0; b < static_cast<int64_t>(traces.size()); ++b)
    for (const Window& w : plan.windows[static_cast<size_t>(traces[static_cast<size_t>(b)])]) {
      ++g.windows[static_cast<size_t>(w.name)];
      for (int64_t p = w.range.begin; p < w.range.end; ++p) {
        pos.push_back(b * T + p);
        weight.push_back(1.0 / static_cast<double>(w.range.size()));
        name.push_back(w.name);
      }
    }
  g.position = at::tensor(pos, at::kLong).to(device);
  g.weight = at::tensor(weight, at::kDouble).to(device);
  g.name = at::tensor(name, at::kLong).to(device);
  return g;
}

// At each held hooked layer: sums[name] += sum over the window positions of x[pos] / window size.
void attach_sums(HookSet& hooks, const BlockHook& hp, Range held, const Gather& g, Sums& acc) {
  const size_t n_layers = hp.layers.size();
  for (size_t li = 0; li < n_layers; ++li) {
    if (hp.layers[li] < held.begin || hp.layers[li] >= held.end) continue;
    hooks.add_fn({hp.site, hp.layers[li]}, [&g, &acc, li, n_layers](const at::Tensor& x, const HookContext&) {
      const at::Tensor rows = x.reshape({-1, x.size(-1)}).index_select(0, g.position).to(at::kDouble).mul_(g.weight.unsqueeze(1));
      acc.sums.select(1, static_cast<int64_t>(li)).index_add_(0, g.name, rows);
      for (size_t k = 0; k < g.windows.size(); ++k) acc.counts[k * n_layers + li] += g.windows[k];
      return x;
    });
  }
}

// One forward pass (per micro-batch on a pipeline) for a batch of traces, adding into `acc`.
void forward_batch(TraceModel& model, Runtime& rt, const Plan& plan, const std::vector<Generation>& gens, const BlockHook& hp,
                   const std::vector<int64_t>& batch, Sums& acc) {
  forward_traces(model, rt, gens, batch, [&](HookSet& hooks, std::span<const int64_t> traces, int64_t T, const std::function<void()>& run) {
    const Gather g = make_gather(plan, traces, T, rt.device);
    attach_sums(hooks, hp, model.m.layers, g, acc);
    run();
  });
}

// Every rank's sums and counts added up (COLLECTIVE), checked against the plan.
std::vector<double> reduce_sums(Runtime& rt, Sums& acc, const Plan& plan, size_t n_layers) {
  const at::Tensor cpu = acc.sums.to(at::kCPU).contiguous();
  std::vector<double> sums(cpu.data_ptr<double>(), cpu.data_ptr<double>() + cpu.numel());
  rt.world_comm.allreduce_sum(std::span<double>(sums));
  rt.world_comm.allreduce_sum(std::span<int64_t>(acc.counts));
  for (size_t k = 0; k < plan.counts.size(); ++k)
    for (size_t li = 0; li < n_layers; ++li)
      if (acc.counts[k * n_layers + li] != plan.counts[k])  // every window of every trace, once at every layer
        throw std::logic_error("vectors: name " + std::to_string(k) + " layer index " + std::to_string(li) + " averaged " +
                               std::to_string(acc.counts[k * n_layers + li]) + " windows, planned " + std::to_string(plan.counts[k]));
  return sums;
}

// COLLECTIVE: this replica's batches through the model; every rank ends with the global sums.
std::vector<double> accumulate(const Config& cfg, Runtime& rt, TraceModel& model, const Plan& plan, const std::vector<Generation>& gens, const BlockHook& hp) {
  c10::InferenceMode inference;
  std::vector<int64_t> with_windows;
  for (int64_t t = 0; t < static_cast<int64_t>(gens.size()); ++t)
    if (!plan.windows[static_cast<size_t>(t)].empty()) with_windows.push_back(t);
  const std::vector<std::vector<int64_t>> batches = trace_batches(gens, with_windows, cfg.vectors.batch_size);
  const Range share = trace_batch_share(batches, gens, rt);
  const int64_t n_names = static_cast<int64_t>(plan.counts.size()), n_layers = static_cast<int64_t>(hp.layers.size());
  Sums acc{at::zeros({n_names, n_layers, model.m.config.d_model}, at::TensorOptions().dtype(at::kDouble).device(rt.device)),
           std::vector<int64_t>(static_cast<size_t>(n_names * n_layers), 0)};
  int64_t tokens = 0;
  BatchLoop loop;
  loop.work = [&](int64_t b) {
    const std::vector<int64_t>& batch = batches[static_cast<size_t>(share.begin + b)];
    forward_batch(model, rt, plan, gens, hp, batch, acc);
    for (int64_t t : batch) tokens += static_cast<int64_t>(gens[static_cast<size_t>(t)].ids.size());
  };
  loop.save = [] { return std::string("nothing (vectors keeps no partial sums; the rerun starts over)"); };
  loop.what = "vectors";
  loop.progress_seconds = cfg.log.progress_seconds;
  loop.detail = [&] { return fmt::format("{} tokens on this rank", tokens); };
  run_batches(rt, share.size(), loop);
  return reduce_sums(rt, acc, plan, static_cast<size_t>(n_layers));
}

// ---------------------------------------------------------------------------------------------------
// Results

// The means and feature vectors of §A.4 as one VectorSet: "<label>"..., "mean.<label>"..., "mean.overall".
VectorSet build_set(const Config& cfg, const Plan& plan, const BlockHook& hp, int64_t d, const std::vector<double>& sums, std::vector<json>& skipped) {
  const size_t n_labels = plan.labels.size(), n_layers = hp.layers.size(), D = static_cast<size_t>(d);
  VectorSet set;
  set.hook_measured = set.hook_applied = hp.pattern;
  set.layers = hp.layers;
  set.d_model = d;
  for (const auto& l : plan.labels) set.names.push_back(l);
  for (const auto& l : plan.labels) set.names.push_back(MEAN_PREFIX + l);
  set.names.push_back(std::string(MEAN_PREFIX) + OVERALL);
  set.values.assign(set.names.size() * n_layers * D, 0.0f);
  set.counts.assign(set.names.size() * n_layers, 0);
  auto sum_of = [&](size_t name, size_t li) { return SetSum{std::span<const double>(sums).subspan((name * n_layers + li) * D, D), plan.counts[name]}; };
  auto put = [&](size_t name, size_t li, const std::vector<double>& v, int64_t count) {
    std::transform(v.begin(), v.end(), set.vector(name, li), [](double x) { return static_cast<float>(x); });
    set.counts[name * n_layers + li] = count;
  };
  for (size_t li = 0; li < n_layers; ++li) {
    const SetSum overall = sum_of(plan.overall(), li);
    const std::vector<double> m_overall = set_mean(overall);
    put(2 * n_labels, li, m_overall, overall.count);
    for (size_t k = 0; k < n_labels; ++k) {
      if (plan.counts[k] == 0) continue;  // missing: recorded in make_plan
      put(n_labels + k, li, set_mean(sum_of(k, li)), plan.counts[k]);
      std::vector<double> f = contrast_direction(sum_of(k, li), overall);
      std::optional<std::vector<double>> scaled = cfg.vectors.rescale ? rescale_to_norm(f, l2_norm(m_overall)) : std::optional(f);
      if (!scaled || l2_norm(*scaled) == 0) {
        skipped.push_back({{"kind", "zero_difference"}, {"label", plan.labels[k]}, {"layer", hp.layers[li]}, {"detail", "M_label == M_overall: no direction"}});
        continue;
      }
      put(k, li, *scaled, plan.counts[k]);
    }
  }
  return set;
}

std::string model_type(const fs::path& model_dir) {
  const json c = json_read_file(model_dir / "config.json");
  return c.contains("model_type") && c["model_type"].is_string() ? c["model_type"].get<std::string>() : "";
}

// Per-label GGUF control vectors of the feature vectors (labels present at every layer).
std::vector<std::string> write_gguf(const Config& cfg, const fs::path& out_dir, const VectorSet& set, const Plan& plan) {
  std::vector<std::string> written;
  const GgufLayerMap map = cfg.vectors.gguf_layer_map;
  for (size_t k = 0; k < plan.labels.size(); ++k) {
    bool complete = true;
    for (size_t li = 0; li < set.n_layers(); ++li) complete = complete && set.count(k, li) > 0;
    if (!complete) {
      spdlog::warn("vectors: no GGUF for '{}': its vector is missing at some layer (skipped.jsonl)", plan.labels[k]);
      continue;
    }
    const std::vector<int64_t> layers = vectors_write_gguf(out_dir / (plan.labels[k] + ".gguf"), set, plan.labels[k], 1.0, map);
    written.push_back(plan.labels[k] + ".gguf");
    // llama.cpp adds direction.N at block N's output (io/vectors.h): the range that applies the file.
    const int64_t shift = map == GgufLayerMap::next_block ? 1 : 0;
    const auto [lo, hi] = std::minmax_element(layers.begin(), layers.end());
    spdlog::info("vectors: wrote {}.gguf ({} layers, layer map {}); apply with llama.cpp: --control-vector {}.gguf --control-vector-layer-range {} {}",
                 plan.labels[k], layers.size(), option_name(map), plan.labels[k], layers.empty() ? 0 : *lo + shift, layers.empty() ? 0 : *hi + shift);
  }
  return written;
}

std::string join_lines(const std::vector<json>& lines) {
  std::string s;
  for (const auto& l : lines) s += l.dump() + "\n";
  return s;
}

// Everything every rank knows before the forward passes.
struct Setup {
  fs::path generations, spans, out_dir;
  std::string generations_sha, spans_sha, config_hash, architecture;
  json annotator;  // who labelled the spans (from the spans file's provenance)
  std::vector<Generation> gens;
  Plan plan;
  BlockHook hook;
};

// Rank 0: the files, then the done marker.
void write_outputs(const Config& cfg, StageOutput& out, const Setup& in, const std::vector<double>& sums, int64_t d) {
  std::vector<json> skipped = in.plan.skipped;
  VectorSet set = build_set(cfg, in.plan, in.hook, d, sums, skipped);
  json prov = out.provenance(cfg.model.path);
  json counts = json::object(), kinds = json::object();
  for (size_t k = 0; k < in.plan.labels.size(); ++k) counts[in.plan.labels[k]] = in.plan.counts[k];
  counts[OVERALL] = in.plan.counts[in.plan.overall()];
  for (const json& s : skipped) kinds[s["kind"].get<std::string>()] = kinds.value(s["kind"].get<std::string>(), int64_t{0}) + 1;
  prov.update({{"generations", fs::absolute(in.generations).string()}, {"generations_sha256", in.generations_sha},
               {"spans", fs::absolute(in.spans).string()}, {"spans_sha256", in.spans_sha}, {"annotator", in.annotator},
               {"hook", in.hook.pattern}, {"layers", in.hook.layers},
               {"window", option_text(cfg.vectors.window)}, {"rescale", cfg.vectors.rescale}, {"counts", counts}, {"skipped", kinds},
               {"names", {{"<label>", std::string("feature vector M_label - M_overall") + (cfg.vectors.rescale ? ", rescaled per layer to |M_overall|" : "")},
                          {"mean.<label>", "raw mean of the label's span windows (count = spans)"},
                          {"mean.overall", "raw mean of the per-trace overall means (count = traces)"}}}});
  set.model = fs::absolute(cfg.model.path).string();
  set.architecture = in.architecture;
  set.provenance_json = prov.dump();
  const fs::path out_h5 = in.out_dir / "vectors.h5";
  vectors_write_safetensors(in.out_dir / "vectors.safetensors", set);
  if (cfg.vectors.gguf) prov["gguf"] = write_gguf(cfg, in.out_dir, set, in.plan);
  write_file_atomic(in.out_dir / "skipped.jsonl", join_lines(skipped));
  vectors_write_h5(out_h5, set);
  out.commit_file(prov, {.certified = {in.out_dir / "vectors.safetensors"}});
  for (size_t k = 0; k < in.plan.labels.size(); ++k) spdlog::info("vectors: {:<24} {:>8} spans", in.plan.labels[k], in.plan.counts[k]);
  spdlog::info("vectors: {:<24} {:>8} traces", OVERALL, in.plan.counts[in.plan.overall()]);
  for (const auto& [kind, n] : kinds.items()) spdlog::info("vectors: skipped {:<22} {:>6} (see skipped.jsonl)", kind, n.get<int64_t>());
  spdlog::info("vectors: wrote {} and vectors.safetensors: {} names x {} layers at {}", out_h5.string(), set.n_names(), set.n_layers(), in.hook.pattern);
}

// Reads and checks every input (every rank alike). Throws InputError.
void read_inputs(const Config& cfg, Setup& in) {
  const fs::path model_dir = cfg.model.path;
  const Tokenizer tok = Tokenizer::from_file(model_dir / "tokenizer.json");
  in.gens = artifacts::read_generations(in.generations, tok, "vectors.generations");
  const Spans spans = artifacts::read_spans(in.spans, "vectors.spans");
  artifacts::check_same_generations(spans, in.gens, in.generations, in.generations_sha, sha256_file(model_dir / "tokenizer.json"), "vectors");
  artifacts::verify_committed(in.spans, "vectors.spans");
  in.hook = resolve_block_hook(cfg.vectors.hook, cfg.vectors.layers, checkpoint_open(model_dir).config.n_layer, "vectors");
  in.architecture = model_type(model_dir);
  if (cfg.vectors.gguf && in.hook.site != HookSite::RESID_POST)
    throw InputError("<config>", "vectors.gguf", "llama.cpp control vectors are added at resid_post; vectors.hook is " + cfg.vectors.hook);
  if (cfg.vectors.gguf && in.architecture.empty())
    throw InputError((model_dir / "config.json").string(), "model_type", "missing: a GGUF control vector names the architecture (vectors.gguf)");
  in.plan = make_plan(cfg, spans, select_labels(cfg, spans));
  in.annotator = {{"name", spans.provenance.value("annotator", "")}, {"identity", spans.provenance.value("annotator_identity", "")}};
}

}  // namespace

void run(const Config& cfg, Runtime& rt) {
  if (cfg.model.path.empty()) throw InputError("<config>", "model.path", "no checkpoint directory given");
  Setup in;
  in.generations = artifacts::input_path(cfg.vectors.generations, cfg, artifacts::GENERATIONS_JSONL);
  in.spans = artifacts::input_path(cfg.vectors.spans, cfg, artifacts::SPANS_H5);
  in.out_dir = artifacts::VECTORS_H5.in(cfg).parent_path();
  if (!fs::is_regular_file(in.generations))
    throw InputError(in.generations.string(), "vectors.generations", "no generations file (run `thinksteer generate` first, or set vectors.generations)");
  if (!fs::is_regular_file(in.spans))
    throw InputError(in.spans.string(), "vectors.spans", "no spans file (run `thinksteer annotate` with model.path on the generations first, or set vectors.spans)");
  in.generations_sha = sha256_file(in.generations);
  in.spans_sha = sha256_file(in.spans);
  in.config_hash = artifacts::output_config_hash(cfg, {"model", "vectors"}, in.generations_sha + "\n" + in.spans_sha + "\n" + checkpoint_identity(cfg.model.path));
  StageOutput out(cfg, rt, "vectors", artifacts::VECTORS_H5.in(cfg), in.config_hash);
  if (out.complete()) return;
  read_inputs(cfg, in);
  out.begin();
  if (rt.rank == 0)
    for (const auto& e : fs::directory_iterator(in.out_dir))
      if (e.path().extension() == ".gguf") fs::remove(e.path());  // a previous run's exports
  TraceModel model = load_trace_model(cfg, rt);
  const std::vector<double> sums = accumulate(cfg, rt, model, in.plan, in.gens, in.hook);
  if (rt.rank == 0) write_outputs(cfg, out, in, sums, model.m.config.d_model);
  rt.world_comm.barrier();
}

}  // namespace ts::stages::vectors
