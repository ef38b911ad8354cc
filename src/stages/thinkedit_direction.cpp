// Stage `thinkedit direction`: the reasoning-length direction and the short-reasoning head scores
// (docs/algorithms.md §C.2, §C.4; docs/thinkedit.md).
//   in : thinkedit.generations (default <run.dir>/generate/generations.jsonl: probe traces, prompt +
//        generated tokens), model.path
//   out: <run.dir>/thinkedit/ attn.h5 + attn.safetensors, mlp.h5 + mlp.safetensors, heads.h5,
//        lengths.jsonl, thresholds.json (artifacts/thinkedit.h), provenance.json; .done markers on attn.h5
//        (certifying every file), mlp.h5 and heads.h5 with the config hash
//
// §C.2. A trace's thinking length is its generated tokens before the first </think> (the steering
// sweep measures the same); a trace that never closes is invalid. The long and short sets come from
// thinkedit.split (thinkedit/thinkedit.h). Per trace the window is [n_prompt - 1, n_prompt + length):
// from the last prompt token to the token before </think>, the paper's [start - 1, end - 1). Per trace
// and layer the window means of resid_mid and resid_post; per set the mean over traces (fp64 sums
// over ranks, then the mean); direction = mean(long) - mean(short), not normalised.
// §C.4. Per short trace the window mean of attn.hook_z ([H, E] per layer), summed over short traces:
// the mean of W_O[:, h] z_h over positions and traces is W_O[:, h] times that mean (linear), so one
// pass serves the direction and the head scores.
// Work: every rank reads every input alike; traces are sorted by length and batched the same whatever
// the rank layout (stages/trace_forward.h); replicas share the batches; sums are added over ranks.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <filesystem>

#include "artifacts/generations.h"
#include "artifacts/thinkedit.h"
#include "core/atomic_file.h"
#include "core/done_marker.h"
#include "core/error.h"
#include "core/log.h"
#include "core/sha256.h"
#include "dist/batch_loop.h"
#include "io/vectors.h"
#include "model/checkpoint_edit.h"
#include "model/checkpoint_identity.h"
#include "stages/stage.h"
#include "stages/trace_forward.h"
#include "thinkedit/thinkedit.h"
#include "vectors/windows.h"

namespace ts::stages::thinkedit_direction {
namespace fs = std::filesystem;
using thinkedit::LengthSet;

namespace {

constexpr int64_t LONG = 0, SHORT = 1;  // set index in the sums

struct Trace {
  int64_t think = 0;
  bool closed = false;
  LengthSet set = LengthSet::invalid;
  TokenRange window;  // positions in prompt + generated tokens
};

struct Plan {
  std::vector<Trace> traces;
  thinkedit::LengthSplit split;
  int64_t n_long = 0, n_short = 0, n_valid = 0;
  std::vector<int64_t> used;  // traces in the long or short set
};

// Lengths, the split and the windows. Throws InputError when a set is empty.
Plan make_plan(const Config& cfg, const std::vector<artifacts::Generation>& gens, int32_t think_close, const fs::path& file) {
  Plan plan;
  std::vector<int64_t> closed;
  for (const auto& g : gens) {
    Trace t;
    const auto len = artifacts::thinking_length(std::span<const int32_t>(g.ids).subspan(static_cast<size_t>(g.n_prompt)), think_close);
    t.think = len.tokens;
    t.closed = len.closed && g.n_prompt >= 1;
    if (t.closed) closed.push_back(t.think);
    plan.traces.push_back(t);
  }
  const Config::ThinkEdit& e = cfg.thinkedit;
  const bool tokens = e.split == ThinkEditSplit::tokens;
  plan.split = thinkedit::length_split(e.split, tokens ? e.long_tokens : e.long_percentile, tokens ? e.short_tokens : e.short_percentile, closed);
  for (size_t i = 0; i < gens.size(); ++i) {
    Trace& t = plan.traces[i];
    t.set = plan.split.of(t.think, t.closed);
    t.window = {gens[i].n_prompt - 1, gens[i].n_prompt + t.think};
    plan.n_valid += t.closed ? 1 : 0;
    plan.n_long += t.set == LengthSet::long_ ? 1 : 0;
    plan.n_short += t.set == LengthSet::short_ ? 1 : 0;
    if (t.set == LengthSet::long_ || t.set == LengthSet::short_) plan.used.push_back(static_cast<int64_t>(i));
  }
  const std::string rule = tokens ? fmt::format("thinking > {:g} / < {:g} tokens", plan.split.long_above, plan.split.short_below)
                                  : fmt::format("thinking >= {:g} / <= {:g} tokens (percentiles {:g} / {:g})", plan.split.long_above,
                                                plan.split.short_below, e.long_percentile, e.short_percentile);
  for (const auto& [n, name] : {std::pair{plan.n_long, "long"}, std::pair{plan.n_short, "short"}})
    if (n == 0)
      throw InputError(file.string(), "thinkedit.split", fmt::format("the {} set is empty: {} of {} traces closed their thinking, none with {}; "
                                                                     "change the thresholds or use thinkedit.split = percentile",
                                                                     name, plan.n_valid, gens.size(), rule));
  spdlog::info("thinkedit direction: {} traces, {} closed; long {} and short {} ({})", gens.size(), plan.n_valid, plan.n_long, plan.n_short, rule);
  return plan;
}

// Per-set fp64 sums of window means, and the short traces' z sums.
struct Sums {
  at::Tensor resid;             // [2 sites (mid, post), L, 2 sets, D]
  at::Tensor z;                 // [L, H E]
  std::vector<int64_t> seen;    // [2 sites + 1 (z)][L]: windows added, checked against the plan
};

struct Gather {
  at::Tensor position, weight, set;   // every used trace's window
  at::Tensor z_position, z_weight;    // the short traces' windows
  int64_t windows = 0, short_windows = 0;
};

Gather make_gather(const Plan& plan, std::span<const int64_t> traces, int64_t T, c10::Device device) {
  std::vector<int64_t> pos, set, zpos;
  std::vector<double> w, zw;
  Gather g;
  for (int64_t b = 0; b < static_cast<int64_t>(traces.size()); ++b) {
    const Trace& t = plan.traces[static_cast<size_t>(traces[static_cast<size_t>(b)])];
    const double inv = 1.0 / static_cast<double>(t.window.size());
    const bool is_short = t.set == LengthSet::short_;
    ++g.windows;
    g.short_windows += is_short ? 1 : 0;
    for (int64_t p = t.window.begin; p < t.window.end; ++p) {
      pos.push_back(b * T + p);
      w.push_back(inv);
      set.push_back(is_short ? SHORT : LONG);
      if (is_short) zpos.push_back(b * T + p), zw.push_back(inv);
    }
  }
  g.position = at::tensor(pos, at::kLong).to(device);
  g.weight = at::tensor(w, at::kDouble).to(device).unsqueeze(1);
  g.set = at::tensor(set, at::kLong).to(device);
  g.z_position = at::tensor(zpos, at::kLong).to(device);
  g.z_weight = at::tensor(zw, at::kDouble).to(device).unsqueeze(1);
  return g;
}

void attach(HookSet& hooks, Range held, int64_t L, const Gather& g, Sums& acc) {
  for (int64_t l = held.begin; l < held.end; ++l) {
    for (const auto& [site, s] : {std::pair{HookSite::RESID_MID, 0}, std::pair{HookSite::RESID_POST, 1}})
      hooks.add_fn({site, l}, [&g, &acc, l, s, L](const at::Tensor& x, const HookContext&) {
        const at::Tensor rows = x.reshape({-1, x.size(-1)}).index_select(0, g.position).to(at::kDouble).mul_(g.weight);
        acc.resid[s][l].index_add_(0, g.set, rows);
        acc.seen[static_cast<size_t>(s * L + l)] += g.windows;
        return x;
      });
    hooks.add_fn({HookSite::ATTN_Z, l}, [&g, &acc, l, L](const at::Tensor& z, const HookContext&) {
      if (g.short_windows > 0) {
        const at::Tensor rows = z.reshape({-1, z.size(2) * z.size(3)}).index_select(0, g.z_position).to(at::kDouble).mul_(g.z_weight);
        acc.z[l].add_(rows.sum(0));
      }
      acc.seen[static_cast<size_t>(2 * L + l)] += g.short_windows;
      return z;
    });
  }
}

// COLLECTIVE: every used trace through the model; every rank ends with the global sums.
Sums accumulate(const Config& cfg, Runtime& rt, TraceModel& model, const Plan& plan, const std::vector<artifacts::Generation>& gens) {
  c10::InferenceMode inference;
  const ModelConfig& c = model.m.config;
  const int64_t L = c.n_layer;
  const auto batches = trace_batches(gens, plan.used, cfg.thinkedit.batch_size);
  const Range share = trace_batch_share(batches, gens, rt);
  const auto f64 = at::TensorOptions().dtype(at::kDouble).device(rt.device);
  Sums acc{at::zeros({2, L, 2, c.d_model}, f64), at::zeros({L, c.n_head * c.d_head}, f64), std::vector<int64_t>(static_cast<size_t>(3 * L), 0)};
  int64_t tokens = 0;
  BatchLoop loop;
  loop.work = [&](int64_t b) {
    const std::vector<int64_t>& batch = batches[static_cast<size_t>(share.begin + b)];
    forward_traces(model, rt, gens, batch, [&](HookSet& hooks, std::span<const int64_t> traces, int64_t T, const std::function<void()>& run) {
      const Gather g = make_gather(plan, traces, T, rt.device);
      attach(hooks, model.m.layers, L, g, acc);
      run();
    });
    for (int64_t t : batch) tokens += static_cast<int64_t>(gens[static_cast<size_t>(t)].ids.size());
  };
  loop.save = [] { return std::string("nothing (the direction keeps no partial sums; the rerun starts over)"); };
  loop.what = "thinkedit direction";
  loop.progress_seconds = cfg.log.progress_seconds;
  loop.detail = [&] { return fmt::format("{} tokens on this rank", tokens); };
  run_batches(rt, share.size(), loop);

  acc.resid = acc.resid.to(at::kCPU).contiguous();
  acc.z = acc.z.to(at::kCPU).contiguous();
  rt.world_comm.allreduce_sum(std::span<double>(acc.resid.data_ptr<double>(), static_cast<size_t>(acc.resid.numel())));
  rt.world_comm.allreduce_sum(std::span<double>(acc.z.data_ptr<double>(), static_cast<size_t>(acc.z.numel())));
  rt.world_comm.allreduce_sum(std::span<int64_t>(acc.seen));
  for (int64_t l = 0; l < L; ++l)
    for (int64_t s = 0; s < 3; ++s)
      if (acc.seen[static_cast<size_t>(s * L + l)] != (s < 2 ? plan.n_long + plan.n_short : plan.n_short))
        throw std::logic_error(fmt::format("thinkedit direction: layer {} hook {} averaged {} windows, planned {}", l, s, acc.seen[static_cast<size_t>(s * L + l)],
                                           s < 2 ? plan.n_long + plan.n_short : plan.n_short));
  return acc;
}

// ---------------------------------------------------------------------------------------------------
// Results (rank 0)

// The direction at one site: "length", "mean.long", "mean.short" per layer.
VectorSet direction_set(const Sums& acc, int64_t site, const Plan& plan, const std::string& measured, const std::string& applied) {
  const at::Tensor means = acc.resid[site].clone();  // [L, 2, D]
  means.select(1, LONG).div_(static_cast<double>(plan.n_long));
  means.select(1, SHORT).div_(static_cast<double>(plan.n_short));
  const at::Tensor dir = means.select(1, LONG) - means.select(1, SHORT);
  const at::Tensor all = at::stack({dir, means.select(1, LONG), means.select(1, SHORT)}).to(at::kFloat).contiguous();  // [3, L, D]
  VectorSet set;
  set.hook_measured = measured;
  set.hook_applied = applied;
  set.d_model = means.size(2);
  for (int64_t l = 0; l < means.size(0); ++l) set.layers.push_back(l);
  set.names = {artifacts::LENGTH_DIRECTION, "mean.long", "mean.short"};
  set.values.assign(all.data_ptr<float>(), all.data_ptr<float>() + all.numel());
  for (const int64_t n : {plan.n_long + plan.n_short, plan.n_long, plan.n_short}) set.counts.insert(set.counts.end(), set.layers.size(), n);
  return set;
}

std::string lengths_jsonl(const Plan& plan, const std::vector<artifacts::Generation>& gens) {
  std::string out;
  for (size_t i = 0; i < gens.size(); ++i)
    out += json{{"id", gens[i].id}, {"think_tokens", plan.traces[i].think}, {"closed", plan.traces[i].closed},
                {"set", thinkedit::length_set_name(plan.traces[i].set)}}.dump() + "\n";
  return out;
}

struct Setup {
  fs::path generations, dir;
  std::string generations_sha, hash;
  std::vector<artifacts::Generation> gens;
  Plan plan;
};

artifacts::HeadScores score_heads(const Config& cfg, const Sums& acc, const Plan& plan, const VectorSet& attn, const ModelConfig& c) {
  std::vector<at::Tensor> o_proj;
  const CheckpointFiles ck = checkpoint_open(cfg.model.path);
  for (int64_t l = 0; l < c.n_layer; ++l) o_proj.push_back(checkpoint_tensor_f32(ck, "model.layers." + std::to_string(l) + ".self_attn.o_proj.weight"));
  const at::Tensor zbar = (acc.z / static_cast<double>(plan.n_short)).view({c.n_layer, c.n_head, c.d_head});
  const at::Tensor dir = at::from_blob(const_cast<float*>(attn.values.data()), {c.n_layer, c.d_model}, at::kFloat);  // name 0 = length
  const at::Tensor scores = thinkedit::head_scores(zbar, o_proj, dir).contiguous();
  artifacts::HeadScores s;
  s.layers = c.n_layer;
  s.heads = c.n_head;
  s.scores.assign(scores.data_ptr<double>(), scores.data_ptr<double>() + scores.numel());
  for (const thinkedit::Head& h : thinkedit::head_ranking(scores)) s.ranking.insert(s.ranking.end(), {h.layer, h.head});
  s.n_short = plan.n_short;
  return s;
}

void write_outputs(const Config& cfg, StageOutput& out, const Setup& in, const Sums& acc, const ModelConfig& c) {
  json prov = out.provenance(cfg.model.path);
  const Plan& plan = in.plan;
  const json thresholds = {{"split", option_text(cfg.thinkedit.split)}, {"long_above", plan.split.long_above}, {"short_below", plan.split.short_below},
                           {"n_long", plan.n_long}, {"n_short", plan.n_short}, {"n_valid", plan.n_valid}, {"n_traces", in.gens.size()}};
  prov.update({{"generations", fs::absolute(in.generations).string()}, {"generations_sha256", in.generations_sha}, {"thresholds", thresholds},
               {"model_identity", checkpoint_identity(cfg.model.path)},
               {"names", {{"length", "mean.long - mean.short (not normalised)"}, {"mean.long", "mean over long traces of the window means"},
                          {"mean.short", "mean over short traces of the window means"}}}});
  const fs::path attn_h5 = in.dir / "attn.h5", mlp_h5 = in.dir / "mlp.h5", heads_h5 = in.dir / "heads.h5";
  VectorSet attn = direction_set(acc, 0, plan, "blocks.{l}.hook_resid_mid", "blocks.{l}.hook_attn_out");
  VectorSet mlp = direction_set(acc, 1, plan, "blocks.{l}.hook_resid_post", "blocks.{l}.hook_mlp_out");
  for (VectorSet* s : {&attn, &mlp}) {
    s->model = fs::absolute(cfg.model.path).string();
    s->provenance_json = prov.dump();
  }
  write_file_atomic(in.dir / "lengths.jsonl", lengths_jsonl(plan, in.gens));
  write_file_atomic(in.dir / "thresholds.json", thresholds.dump(2) + "\n");
  vectors_write_safetensors(in.dir / "attn.safetensors", attn);
  vectors_write_safetensors(in.dir / "mlp.safetensors", mlp);
  vectors_write_h5(mlp_h5, mlp);
  vectors_write_h5(attn_h5, attn);
  artifacts::HeadScores heads = score_heads(cfg, acc, plan, attn, c);
  heads.direction = attn_h5.string();
  heads.direction_sha256 = sha256_file(attn_h5);
  const fs::path tmp = temp_path_for(heads_h5);
  artifacts::write_head_scores(tmp, heads, prov);
  commit_file(tmp, heads_h5);
  done_marker_write(mlp_h5, in.hash);
  done_marker_write(heads_h5, in.hash);
  out.commit_file(prov, {.certified = {mlp_h5, heads_h5, in.dir / "lengths.jsonl", in.dir / "thresholds.json", in.dir / "attn.safetensors",
                                       in.dir / "mlp.safetensors"}});
  spdlog::info("thinkedit direction: wrote {} and mlp.h5 ({} layers; |length| at the middle layer {:.4g} (attn), {:.4g} (mlp)), heads.h5 (top head {}.{}), lengths.jsonl",
               attn_h5.string(), c.n_layer, at::from_blob(attn.vector(0, static_cast<size_t>(c.n_layer / 2)), {c.d_model}, at::kFloat).norm().item<double>(),
               at::from_blob(mlp.vector(0, static_cast<size_t>(c.n_layer / 2)), {c.d_model}, at::kFloat).norm().item<double>(), heads.ranking[0], heads.ranking[1]);
}

}  // namespace

void run(const Config& cfg, Runtime& rt) {
  if (cfg.model.path.empty()) throw InputError("<config>", "model.path", "no checkpoint directory given");
  Setup in;
  in.generations = artifacts::input_path(cfg.thinkedit.generations, cfg, artifacts::GENERATIONS_JSONL);
  in.dir = artifacts::THINKEDIT_ATTN_H5.in(cfg).parent_path();
  if (!fs::is_regular_file(in.generations))
    throw InputError(in.generations.string(), "thinkedit.generations", "no generations file (run `thinksteer generate` first, or set thinkedit.generations)");
  in.generations_sha = sha256_file(in.generations);
  const Config::ThinkEdit& e = cfg.thinkedit;  // the keys of the split: the edit's keys do not change the direction
  in.hash = artifacts::output_config_hash(cfg, {"model"}, fmt::format("{}\n{}\n{} {} {} {} {}", in.generations_sha, checkpoint_identity(cfg.model.path),
                                                                      option_text(e.split), e.long_tokens, e.short_tokens, e.long_percentile, e.short_percentile));
  StageOutput out(cfg, rt, "thinkedit direction", artifacts::THINKEDIT_ATTN_H5.in(cfg), in.hash);
  if (out.complete()) return;
  const Tokenizer tok = Tokenizer::from_file(fs::path(cfg.model.path) / "tokenizer.json");
  const auto close = tok.token_to_id("</think>");
  if (!close)
    throw InputError((fs::path(cfg.model.path) / "tokenizer.json").string(), "</think>", "no single </think> token: the thinking length is not defined");
  in.gens = artifacts::read_generations(in.generations, tok, "thinkedit.generations");
  in.plan = make_plan(cfg, in.gens, *close, in.generations);
  out.begin();
  if (rt.rank == 0)
    for (const char* f : {"mlp.h5", "heads.h5"}) fs::remove(done_marker_path(in.dir / f));
  TraceModel model = load_trace_model(cfg, rt);
  const Sums acc = accumulate(cfg, rt, model, in.plan, in.gens);
  if (rt.rank == 0) write_outputs(cfg, out, in, acc, model.m.config);
  rt.world_comm.barrier();
}

}  // namespace ts::stages::thinkedit_direction
