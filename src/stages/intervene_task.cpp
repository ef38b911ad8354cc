// One row of the intervention sweep (stages/intervene.h; docs/directions.md "Interventions").
//   sequences : per prompt, the chat-formatted prompt + intervene.answer_prefix (the prefix) and the answer's
//               tokens after it; for patching also the source: the same ids on intervene.source_model, or the
//               prompt of intervene.source_field with the same answer
//   metric    : logp = sum over answer tokens of log p(token | everything before it); exact = every answer
//               token is the argmax. Each task scores the clean run, the source run (patching) and the
//               intervened run, so a task file is complete on its own
//   modes     : at hook intervene.site of the row's layer, on every position (intervene.positions = all) or the
//               prefix's last token (last), the activation becomes 0 (zero), the dataset's mean activation there
//               (mean; over every position of every prompt), N(0, noise_std^2) drawn per (seed, prompt id, layer)
//               (noise) or the source run's activation at the same position (patch; with positions = all the
//               source and the prompt must have the same number of tokens); direction projects
//               directions.direction out at every layer (directions/orthogonalize.h ablate_with_hooks)
// Prompts are dealt over the ranks in contiguous shares; per-prompt results are added up over ranks.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include <filesystem>

#include "artifacts/intervene.h"
#include "artifacts/prompts.h"
#include "core/error.h"
#include "core/log.h"
#include "core/sha256.h"
#include "core/splitmix.h"
#include "directions/orthogonalize.h"
#include "dist/partition.h"
#include "model/checkpoint_identity.h"
#include "stages/intervene.h"
#include "stages/stage.h"
#include "tokenizer/chat_format.h"

namespace ts::stages {
namespace fs = std::filesystem;

namespace {

struct Item {
  std::string id;
  std::vector<int32_t> ids, source_ids;  // prefix + answer; the source's (patching)
  int64_t n_prefix = 0, n_source_prefix = 0, n_answer = 0;
  std::vector<int64_t> span_tokens;      // positions = spans: the prefix tokens overlapping a span of the prompt
};

// The prefix tokens whose code points overlap one of `spans` (code points of the prompt text, shifted by `shift`).
std::vector<int64_t> span_tokens(const Encoding& e, const std::vector<PromptSpan>& spans, int64_t shift) {
  std::vector<int64_t> out;
  for (size_t t = 0; t < e.ids.size(); ++t)
    for (const PromptSpan& sp : spans)
      if (e.offsets[t].second > sp.begin + shift && e.offsets[t].first < sp.end + shift) {
        out.push_back(static_cast<int64_t>(t));
        break;
      }
  return out;
}

HookPoint site_point(const Config& cfg, int64_t layer) {
  static constexpr HookSite SITES[] = {HookSite::RESID_PRE, HookSite::RESID_MID, HookSite::RESID_POST, HookSite::ATTN_OUT, HookSite::MLP_OUT};
  return {SITES[static_cast<size_t>(cfg.intervene.site)], layer};
}

std::vector<int32_t> encode_ids(const Tokenizer& tok, const std::string& text) { return tok.encode(text).ids; }

std::vector<Item> load_items(const Config& cfg, const std::string& dataset, const Tokenizer& tok) {
  Config c = cfg;
  c.data.prompts = dataset;
  const bool spans = cfg.intervene.positions == PatchPositions::spans;
  if (spans && dataset.rfind("builtin:", 0) == 0) throw InputError("<config>", "intervene.positions", "spans need a JSONL dataset; " + dataset + " has none");
  const std::vector<Prompt> prompts = artifacts::load_prompts(c, spans ? cfg.intervene.spans_field : "");
  const int64_t shift = chat_format_prefix_code_points(cfg.generate.chat_format, cfg.generate.system);
  std::map<std::string, std::string> sources;
  if (!cfg.intervene.source_field.empty()) {
    if (dataset.rfind("builtin:", 0) == 0) throw InputError("<config>", "intervene.source_field", "needs a JSONL dataset; " + dataset + " has no source prompts");
    for (const Prompt& p : prompts_read_jsonl(dataset, cfg.intervene.source_field, cfg.data.id_field, cfg.data.answer_field, cfg.data.limit))
      sources[p.id] = p.text;
  }
  const std::string tail = config_unescape(cfg.intervene.answer_prefix);
  const auto prefix_of = [&](const std::string& text) { return chat_format_apply(cfg.generate.chat_format, text, cfg.generate.system) + tail; };
  std::vector<Item> out;
  for (const Prompt& p : prompts) {
    if (p.answer.empty()) throw InputError(dataset, "prompt " + p.id, "has no answer (data.answer_field): the intervention metric is the answer's log-probability");
    const Encoding prefix = tok.encode(prefix_of(p.text));
    Item it{p.id, prefix.ids, {}, 0, 0, 0, spans ? span_tokens(prefix, p.spans, shift) : std::vector<int64_t>{}};
    if (spans && it.span_tokens.empty()) throw InputError(dataset, "prompt " + p.id, "has no tokens inside its spans (" + cfg.intervene.spans_field + ")");
    const std::vector<int32_t> answer = encode_ids(tok, p.answer);
    it.n_prefix = static_cast<int64_t>(it.ids.size());
    it.n_answer = static_cast<int64_t>(answer.size());
    if (it.n_prefix == 0 || it.n_answer == 0) throw InputError(dataset, "prompt " + p.id, "encodes to no prompt or no answer tokens");
    it.ids.insert(it.ids.end(), answer.begin(), answer.end());
    if (!sources.empty()) {
      it.source_ids = encode_ids(tok, prefix_of(sources.at(p.id)));
      it.n_source_prefix = static_cast<int64_t>(it.source_ids.size());
      it.source_ids.insert(it.source_ids.end(), answer.begin(), answer.end());
      if (cfg.intervene.positions != PatchPositions::last && it.source_ids.size() != it.ids.size())
        throw InputError(dataset, "prompt " + p.id, fmt::format("its source has {} tokens, the prompt {}: intervene.positions = all patches position by "
                                                                "position (intervene.positions = all or spans; use last, or sources of the same length)", it.source_ids.size(), it.ids.size()));
    } else {
      it.source_ids = it.ids, it.n_source_prefix = it.n_prefix;
    }
    out.push_back(std::move(it));
  }
  return out;
}

// A right-padded batch (causal attention: real tokens never attend to the padding after them).
struct Batch {
  std::vector<const Item*> items;
  bool source = false;
  at::Tensor tokens, mask;  // [B, T]; mask: the positions the intervention touches (bool)
  int64_t T = 0;
  int64_t n_prefix(size_t b) const { return source ? items[b]->n_source_prefix : items[b]->n_prefix; }
  const std::vector<int32_t>& ids(size_t b) const { return source ? items[b]->source_ids : items[b]->ids; }
};

Batch make_batch(const Config& cfg, std::vector<const Item*> items, bool source, int64_t pad) {
  Batch b{std::move(items), source, {}, {}, 0};
  for (size_t i = 0; i < b.items.size(); ++i) b.T = std::max<int64_t>(b.T, static_cast<int64_t>(b.ids(i).size()));
  const int64_t B = static_cast<int64_t>(b.items.size());
  b.tokens = at::full({B, b.T}, pad, at::kLong);
  b.mask = at::zeros({B, b.T}, at::kBool);
  for (int64_t i = 0; i < B; ++i) {
    const auto& ids = b.ids(static_cast<size_t>(i));
    for (size_t t = 0; t < ids.size(); ++t) b.tokens[i][static_cast<int64_t>(t)] = ids[t];
    if (cfg.intervene.positions == PatchPositions::all) b.mask[i].narrow(0, 0, static_cast<int64_t>(ids.size())).fill_(true);
    else if (cfg.intervene.positions == PatchPositions::last) b.mask[i][b.n_prefix(static_cast<size_t>(i)) - 1] = true;
    else
      for (int64_t t : b.items[static_cast<size_t>(i)]->span_tokens) b.mask[i][t] = true;
  }
  return b;
}

struct Scores {
  std::vector<double> logp;
  std::vector<uint8_t> exact;
};

// The forward pass with `hooks`; scores of the answer tokens.
// The forward pass with `hooks`, no logits: the residual stream after the last layer [B, T, D].
at::Tensor forward(const StageModel& m, const Batch& b, HookSet* hooks, c10::Device device) {
  ForwardArgs args;
  args.tokens = b.tokens.to(device);
  args.positions = at::arange(b.T, at::kLong).unsqueeze(0).expand({b.tokens.size(0), b.T}).contiguous().to(device);
  args.hooks = hooks;
  args.logits = LogitsMode::NONE;
  return m.model->forward(args);
}

Scores score(const StageModel& m, const Batch& b, HookSet* hooks, c10::Device device) {
  const at::Tensor resid = forward(m, b, hooks, device);
  std::vector<int64_t> rows, targets, owner;
  for (size_t i = 0; i < b.items.size(); ++i) {
    const auto& ids = b.ids(i);
    for (int64_t t = b.n_prefix(i) - 1; t + 1 < static_cast<int64_t>(ids.size()); ++t) {
      rows.push_back(static_cast<int64_t>(i) * b.T + t);
      targets.push_back(ids[static_cast<size_t>(t + 1)]);
      owner.push_back(static_cast<int64_t>(i));
    }
  }
  const at::Tensor flat = resid.reshape({-1, resid.size(2)}).index_select(0, at::tensor(rows, at::kLong).to(device));
  const at::Tensor logp = at::log_softmax(m.model->head(flat).to(at::kDouble), -1).cpu();
  const at::Tensor tgt = at::tensor(targets, at::kLong);
  const at::Tensor tok_logp = logp.gather(1, tgt.unsqueeze(1)).squeeze(1), hit = logp.argmax(-1).eq(tgt);
  Scores s{std::vector<double>(b.items.size(), 0.0), std::vector<uint8_t>(b.items.size(), 1)};
  for (size_t r = 0; r < owner.size(); ++r) {
    s.logp[static_cast<size_t>(owner[r])] += tok_logp[static_cast<int64_t>(r)].item<double>();
    if (!hit[static_cast<int64_t>(r)].item<bool>()) s.exact[static_cast<size_t>(owner[r])] = 0;
  }
  return s;
}

// Replaces the activation at the batch's masked positions with `value` ([B, T, D], or [D] broadcast; undefined: 0).
void replace_masked(HookSet& hooks, HookPoint point, const at::Tensor& mask, at::Tensor value) {
  hooks.add_fn(point, [mask, value](const at::Tensor& x, const HookContext&) {
    const at::Tensor m = mask.to(x.device()).unsqueeze(-1);
    return value.defined() ? at::where(m, value.to(x.options()), x) : x.masked_fill(m, 0);
  });
}

// The site's activation at the rank's items, recorded in a pass of `model` (the source run).
// `scores` null: the forward pass only (no head), for the site's mean.
at::Tensor record_site(const StageModel& m, const Batch& b, HookPoint point, c10::Device device, Scores* scores) {
  HookSet hooks(m.config.n_layer);
  hooks.record(point);
  if (scores) *scores = score(m, b, &hooks, device);
  else forward(m, b, &hooks, device);
  return hooks.recorded(point);  // [B, T, D]
}

// The source's activation placed at the target's positions.
at::Tensor patch_value(const Config& cfg, const Batch& target, const Batch& source, const at::Tensor& recorded) {
  if (cfg.intervene.positions != PatchPositions::last) return recorded.narrow(1, 0, std::min(source.T, target.T));  // same lengths
  at::Tensor v = at::zeros({recorded.size(0), target.T, recorded.size(2)}, recorded.options());
  for (size_t i = 0; i < target.items.size(); ++i)
    v[static_cast<int64_t>(i)][target.n_prefix(i) - 1].copy_(recorded[static_cast<int64_t>(i)][source.n_prefix(i) - 1]);
  return v;
}

at::Tensor noise_value(const Config& cfg, const Batch& b, int64_t layer, int64_t d_model) {
  at::Tensor v = at::zeros({static_cast<int64_t>(b.items.size()), b.T, d_model});
  for (size_t i = 0; i < b.items.size(); ++i) {
    const uint64_t seed = splitmix64(cfg.intervene.seed ^ splitmix64(std::hash<std::string>{}(b.items[i]->id) + static_cast<uint64_t>(layer) * 7919));
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    v[static_cast<int64_t>(i)].copy_(at::randn({b.T, d_model}, gen) * cfg.intervene.noise_std);
  }
  return v;
}

// The dataset's mean activation at the site (every real position of every prompt), added over ranks.
at::Tensor site_mean(const Config& cfg, Runtime& rt, const StageModel& m, const std::vector<const Item*>& mine, HookPoint point) {
  at::Tensor sum = at::zeros({m.config.d_model}, at::kDouble);
  double count = 0;
  for (size_t b0 = 0; b0 < mine.size(); b0 += static_cast<size_t>(cfg.intervene.batch_size)) {
    const Batch b = make_batch(cfg, {mine.begin() + static_cast<std::ptrdiff_t>(b0), mine.begin() + static_cast<std::ptrdiff_t>(std::min(mine.size(), b0 + static_cast<size_t>(cfg.intervene.batch_size)))}, false, m.pad_id);
    at::Tensor real = at::zeros({b.tokens.size(0), b.T}, at::kBool);
    for (size_t i = 0; i < b.items.size(); ++i) real[static_cast<int64_t>(i)].narrow(0, 0, static_cast<int64_t>(b.ids(i).size())).fill_(true);
    const at::Tensor x = record_site(m, b, point, rt.device, nullptr).cpu().to(at::kDouble);
    sum += x.index({real}).sum(0);
    count += real.sum().item<double>();
  }
  rt.world_comm.allreduce_sum(std::span<double>(sum.data_ptr<double>(), static_cast<size_t>(sum.numel())));
  std::vector<double> c{count};
  rt.world_comm.allreduce_sum(std::span<double>(c));
  return (sum / c[0]).to(at::kFloat);
}

}  // namespace

json IntervenePoint::to_json() const { return {{"task", task}, {"key", key}, {"dataset", dataset}, {"mode", mode}, {"layer", layer}}; }

IntervenePoint IntervenePoint::from_json(const json& row, const std::string& where) {
  IntervenePoint p;
  p.task = json_int(row, "task", where), p.layer = json_int(row, "layer", where);
  p.key = json_string(row, "key", where), p.dataset = json_string(row, "dataset", where), p.mode = json_string(row, "mode", where);
  if (!option_parse<InterveneMode>(p.mode)) throw InputError(where, "mode", "'" + p.mode + "' is not " + option_names_joined<InterveneMode>(", ", " or "));
  return p;
}

std::string intervene_inputs(const Config& cfg) {
  std::string s = "model=" + checkpoint_identity(cfg.model.path);
  if (!cfg.intervene.source_model.empty()) s += "\nsource=" + checkpoint_identity(cfg.intervene.source_model);
  const auto& modes = cfg.intervene.modes;
  if (std::find(modes.begin(), modes.end(), "direction") != modes.end())
    s += fmt::format("\ndirection={} {} {} {}", cfg.directions.direction.empty() ? "" : sha256_file(cfg.directions.direction), cfg.directions.vector,
                     cfg.directions.layer, cfg.directions.name);
  return s;
}

std::string intervene_task_hash(const Config& cfg, const IntervenePoint& p, const std::string& inputs) {
  Config c = cfg;  // the axes do not decide a task
  c.intervene.modes.clear(), c.intervene.layers.clear();
  Config d = cfg;
  d.data.prompts = p.dataset;
  json point = p.to_json();
  point.erase("task");
  c.data.prompts.clear();
  return artifacts::output_config_hash(c, {"data", "generate", "intervene"}, point.dump() + "\n" + inputs + "\nprompts=" + artifacts::prompts_identity(d));
}

InterveneEnv load_intervene_env(const Config& cfg, Runtime& rt) {
  if (rt.n_stages > 1) throw InputError("<config>", "parallel.pipeline_stages", "the intervention sweep runs data parallel only (1 pipeline stage)");
  InterveneEnv env{load_stage_model(cfg, rt), nullptr, std::nullopt, intervene_inputs(cfg), {}};
  if (!cfg.intervene.source_model.empty()) {
    if (!cfg.intervene.source_field.empty())
      throw InputError("<config>", "intervene.source_model", "give a source model or a source field (intervene.source_field), not both");
    Config c = cfg;
    c.model.path = cfg.intervene.source_model;
    env.source = std::make_unique<StageModel>(load_stage_model(c, rt));
    if (sha256_file(fs::path(c.model.path) / "tokenizer.json") != sha256_file(fs::path(cfg.model.path) / "tokenizer.json"))
      throw InputError(c.model.path, "intervene.source_model", "has another tokenizer than model.path: patching needs the same token stream");
    if (env.source->config.d_model != env.model.config.d_model || env.source->config.n_layer != env.model.config.n_layer)
      throw InputError(c.model.path, "intervene.source_model", "has another shape (d_model, n_layer) than model.path");
  }
  const auto& modes = cfg.intervene.modes;
  if (std::find(modes.begin(), modes.end(), "direction") != modes.end()) env.direction = read_direction(cfg, env.model.config.d_model);
  if (std::find(modes.begin(), modes.end(), "patch") != modes.end() && !env.source && cfg.intervene.source_field.empty())
    throw InputError("<config>", "intervene.modes", "patch needs a source: intervene.source_field or intervene.source_model");
  return env;
}

namespace {

// The intervention of the row on a target batch (hooks attached to `hooks`, state kept alive in `keep`).
void attach(const Config& cfg, const IntervenePoint& p, const InterveneEnv& env, const Batch& target, const at::Tensor& mean, const at::Tensor& patch,
            HookSet& hooks) {
  const InterveneMode mode = *option_parse<InterveneMode>(p.mode);
  if (mode == InterveneMode::direction) {
    directions::ablate_with_hooks(hooks, env.model.config.n_layer, env.direction->vector);
    return;
  }
  const HookPoint point = site_point(cfg, p.layer);
  if (mode == InterveneMode::zero) replace_masked(hooks, point, target.mask, {});
  else if (mode == InterveneMode::mean) replace_masked(hooks, point, target.mask, mean);
  else if (mode == InterveneMode::noise) replace_masked(hooks, point, target.mask, noise_value(cfg, target, p.layer, env.model.config.d_model));
  else replace_masked(hooks, point, target.mask, patch);
}

}  // namespace

bool run_intervene_task(const Config& cfg, Runtime& rt, const IntervenePoint& p, InterveneEnv& env) {
  const fs::path file = artifacts::INTERVENE_SWEEP.task(cfg, p.key);
  const std::string hash = intervene_task_hash(cfg, p, env.inputs);
  StageOutput out(cfg, rt, "sweep run", file, hash);
  if (out.complete()) return false;
  const int64_t L = env.model.config.n_layer;
  if (p.layer >= L || p.layer < -1 || (p.layer < 0 && p.mode != "direction"))
    throw InputError(artifacts::INTERVENE_SWEEP.manifest(cfg).string(), "layer", fmt::format("{} is outside the model's {} layers", p.layer, L));
  const std::vector<Item> items = load_items(cfg, p.dataset, *env.model.tokenizer);
  out.begin();
  const int64_t N = static_cast<int64_t>(items.size());
  const Range share = even_ranges(N, rt.world)[static_cast<size_t>(rt.rank)];
  std::vector<const Item*> mine;
  for (int64_t i = share.begin; i < share.end; ++i) mine.push_back(&items[static_cast<size_t>(i)]);
  const bool patching = p.mode == "patch";
  const at::Tensor mean = p.mode == "mean" ? site_mean(cfg, rt, env.model, mine, site_point(cfg, p.layer)) : at::Tensor();
  std::vector<double> res(static_cast<size_t>(5 * N), 0.0);  // logp, logp_clean, logp_source, exact, exact_clean
  const auto put = [&](int64_t col, int64_t i, double v) { res[static_cast<size_t>(col * N + i)] = v; };
  const int64_t bs = cfg.intervene.batch_size;
  for (size_t b0 = 0; b0 < mine.size(); b0 += static_cast<size_t>(bs)) {
    const std::vector<const Item*> part(mine.begin() + static_cast<std::ptrdiff_t>(b0), mine.begin() + static_cast<std::ptrdiff_t>(std::min(mine.size(), b0 + static_cast<size_t>(bs))));
    const Batch target = make_batch(cfg, part, false, env.model.pad_id);
    std::string batch_key = p.dataset;
    for (const Item* it : part) batch_key += "\n" + it->id;
    if (!env.clean.count(batch_key)) {
      Scores c = score(env.model, target, nullptr, rt.device);
      env.clean[batch_key] = {std::move(c.logp), std::move(c.exact)};
    }
    const Scores clean{env.clean[batch_key].first, env.clean[batch_key].second};
    Scores source{std::vector<double>(part.size(), std::nan("")), std::vector<uint8_t>(part.size(), 0)};
    at::Tensor patch;
    if (patching) {
      const StageModel& sm = env.source ? *env.source : env.model;
      const Batch src = make_batch(cfg, part, !env.source, sm.pad_id);
      patch = patch_value(cfg, target, src, record_site(sm, src, site_point(cfg, p.layer), rt.device, &source));
    }
    HookSet hooks(L);
    attach(cfg, p, env, target, mean, patch, hooks);
    const Scores hit = score(env.model, target, &hooks, rt.device);
    for (size_t i = 0; i < part.size(); ++i) {
      const int64_t idx = share.begin + static_cast<int64_t>(b0 + i);
      put(0, idx, hit.logp[i]), put(1, idx, clean.logp[i]), put(2, idx, source.logp[i]), put(3, idx, hit.exact[i]), put(4, idx, clean.exact[i]);
    }
  }
  rt.world_comm.allreduce_sum(std::span<double>(res));
  if (rt.rank == 0) {
    artifacts::InterveneTask t;
    t.task = p.task, t.layer = p.layer, t.key = p.key, t.dataset = p.dataset, t.mode = p.mode, t.config_sha256 = hash;
    t.site = option_text(cfg.intervene.site), t.positions = option_text(cfg.intervene.positions);
    for (int64_t i = 0; i < N; ++i) {
      const Item& it = items[static_cast<size_t>(i)];
      t.prompt_id.push_back(it.id);
      t.n_answer_tokens.push_back(it.n_answer);
      t.logp.push_back(res[static_cast<size_t>(i)]), t.logp_clean.push_back(res[static_cast<size_t>(N + i)]);
      t.logp_source.push_back(patching ? res[static_cast<size_t>(2 * N + i)] : std::nan(""));
      t.exact.push_back(static_cast<uint8_t>(res[static_cast<size_t>(3 * N + i)])), t.exact_clean.push_back(static_cast<uint8_t>(res[static_cast<size_t>(4 * N + i)]));
    }
    const json prov = out.provenance(cfg.model.path);
    artifacts::write_intervene_task(out.partial(), t, prov);
    out.commit_h5(prov, artifacts::INTERVENE_TASK, artifacts::intervene_task_datasets(N), {.provenance_json = false, .resolved_config = false, .certified = {}});
    double d = 0;
    for (int64_t i = 0; i < N; ++i) d += t.logp[static_cast<size_t>(i)] - t.logp_clean[static_cast<size_t>(i)];
    spdlog::info("intervene: task {} {} layer {} ({} prompts): mean change of the answer's log-probability {:+.4f}", p.task, p.mode, p.layer, N, d / static_cast<double>(N));
  }
  rt.world_comm.barrier();
  return true;
}

}  // namespace ts::stages
