// One task of a hybrid sweep (stages/hybrid.h): the models, SAE and vectors every task uses, a task's
// identity, and the running of one row: the base model alone, the thinking model alone, or the hybrid
// (hybrid/lockstep.h), on the row's dataset.
//   in : model.path (thinking), basevec.base_model, basevec.sae (+ sae_layer), hybrid.vectors, the dataset
//   out: <run.dir>/hybrid/tasks/<key>.h5 (+ .done; artifacts/hybrid_task.h)
// Prompts are shared over the ranks (balanced by length), run in batches of hybrid.batch_size; a stop
// request saves the finished prompts (<key>.h5.progress.jsonl, for this task's hash) and the rerun
// generates only the others.
#include <algorithm>
#include <fstream>
#include <numeric>

#include "artifacts/prompts.h"
#include "core/atomic_file.h"
#include "core/done_marker.h"
#include "core/error.h"
#include "core/log.h"
#include "dist/batch_loop.h"
#include "dist/partition.h"
#include "model/checkpoint_identity.h"
#include "stages/hybrid.h"
#include "stages/stage.h"
#include "steer/answer.h"
#include "tokenizer/chat_format.h"

namespace ts::stages {
namespace fs = std::filesystem;

std::string hybrid_answer_prefix(const Config& cfg) { return config_unescape(cfg.hybrid.answer_prefix); }

namespace {

// The tokens the hybrid relies on must be the same ids in both tokenizers.
void check_hybrid_tokens(const HybridEnv& env, const std::string& prefix) {
  const std::string file = (env.base.dir / "tokenizer.json").string();
  const auto base_close = env.base.tokenizer->token_to_id("</think>");
  if (base_close && *base_close != env.think_close)
    throw InputError(file, "added_tokens", "</think> is id " + std::to_string(*base_close) + " here and " + std::to_string(env.think_close) +
                                               " in the thinking model's tokenizer (the pair must share its special tokens)");
  if (env.base.tokenizer->encode_ids(prefix) != env.answer_prefix)
    throw InputError(file, "hybrid.answer_prefix", "encodes differently in the two tokenizers (the pair must share its tokenizer)");
  for (int64_t e : env.base.eos_ids)
    if (e >= env.thinking.config.n_vocab) throw InputError((env.base.dir / "generation_config.json").string(), "eos_token_id", "outside the shared vocabulary");
}

}  // namespace

HybridEnv load_hybrid_env(const Config& cfg, Runtime& rt) {
  check_basevec_config(cfg, true);
  if (rt.n_stages > 1) throw InputError("[parallel]", "parallel.pipeline_stages", "the hybrid holds both models whole on each rank: set 1");
  HybridEnv env;
  env.vectors_file = hybrid_vectors_path(cfg);
  env.vectors = artifacts::read_basevec_task(env.vectors_file);
  check_hybrid_vectors(cfg, env.vectors, env.vectors_file);
  env.vectors_hash = certified_content_hash(env.vectors_file);
  env.sweep_inputs = hybrid_sweep_inputs(cfg, env.vectors_hash);
  env.thinking = load_stage_model(cfg, rt);
  const std::string tok_file = (env.thinking.dir / "tokenizer.json").string();
  const std::optional<int32_t> open = env.thinking.tokenizer->token_to_id("<think>");
  const std::optional<int32_t> close = env.thinking.tokenizer->token_to_id("</think>");
  if (!close) throw InputError(tok_file, "added_tokens", "no </think> token: the thinking model's format never closes a thinking part (multi-token tags, as ORZ's, are not supported)");
  if (!open) throw InputError(tok_file, "added_tokens", "no <think> token: the thinking model's format never opens a thinking part (multi-token tags, as ORZ's, are not supported)");
  env.think_close = *close;
  // A chat format whose prompt does not open the thinking part (chatml for QwQ) gets "<think>\n" appended to
  // the thinking model's prompt, as QwQ's own template does: the hybrid steers the thinking part.
  env.open_thinking = chat_format_apply(cfg.generate.chat_format, "?", cfg.generate.system).find("<think>") == std::string::npos;
  env.base = load_base_model(cfg, rt);
  check_same_vocabulary(env.thinking, env.base, env.base.dir);
  const std::string vfile = env.vectors_file.string();
  if (env.vectors.d != env.base.config.d_model)
    throw InputError(vfile, "/vectors", "vectors of d_model " + std::to_string(env.vectors.d) + ", the base model's is " + std::to_string(env.base.config.d_model));
  if (env.vectors.hook != "blocks." + std::to_string(env.vectors.layer) + ".hook_resid_post" || env.vectors.layer >= env.base.config.n_layer)
    throw InputError(vfile, "hook", "'" + env.vectors.hook + "' is not blocks.{layer}.hook_resid_post of a layer of the base model (" +
                                        std::to_string(env.base.config.n_layer) + " layers)");
  std::error_code ec;
  if (!fs::equivalent(env.vectors.base_model, cfg.basevec.base_model, ec))
    throw InputError(vfile, "base_model", "vectors trained on '" + env.vectors.base_model + "', not basevec.base_model '" + cfg.basevec.base_model + "'");
  const artifacts::SaeExport sae = open_basevec_sae(cfg, env.thinking.config);
  env.sae = std::make_unique<SaeClassifier>(sae, rt.device);
  env.sae_layer = sae.layer;
  const int64_t cats = env.sae->w_enc.size(0);
  if (cats != env.vectors.c)
    throw InputError(vfile, "/vectors", std::to_string(env.vectors.c) + " category vectors, the SAE (" + basevec_sae_dir(cfg).string() + ") has " +
                                            std::to_string(cats) + " categories: vectors of another taxonomy");
  const std::string prefix = hybrid_answer_prefix(cfg);
  env.answer_prefix = env.thinking.tokenizer->encode_ids(prefix);
  check_hybrid_tokens(env, prefix);
  const at::Device dev = rt.device;
  env.set.vectors = device_tensor(env.vectors.vectors, {env.vectors.c, env.vectors.d}, dev);
  if (!env.vectors.bias.empty()) env.set.bias = device_tensor(env.vectors.bias, {env.vectors.d}, dev);
  if (!env.vectors.w1.empty()) {
    const int64_t H = env.vectors.hidden;
    env.set.mlp = {device_tensor(env.vectors.w1, {H, env.vectors.d}, dev), device_tensor(env.vectors.b1, {H}, dev),
                   device_tensor(env.vectors.w2, {env.vectors.c, H}, dev), device_tensor(env.vectors.b2, {env.vectors.c}, dev)};
  }
  return env;
}

Config hybrid_dataset_config(const Config& cfg, const std::string& dataset) {
  Config c = cfg;
  c.data.prompts = dataset;
  if (cfg.hybrid.limit > 0) c.data.limit = cfg.hybrid.limit;
  return c;
}

std::string hybrid_sweep_inputs(const Config& cfg, const std::string& vectors_hash) {
  return "vectors=" + vectors_hash + "\nthinking=" + checkpoint_identity(cfg.model.path) + "\nbase=" + checkpoint_identity(cfg.basevec.base_model) +
         "\nsae=" + certified_content_hash(basevec_sae_dir(cfg) / "cfg.json") + "\nbase_prompt=" + cfg.basevec.base_prompt;
}

std::string hybrid_task_hash(const Config& cfg, const HybridPoint& p, const std::string& sweep_inputs) {
  Config c = cfg;  // the axes do not decide a task
  c.hybrid.rules.clear(), c.hybrid.ablations.clear(), c.hybrid.layers.clear(), c.hybrid.seeds.clear();
  c.hybrid.vectors.clear(), c.hybrid.method.clear();
  c.hybrid.fused = true;  // the same tokens either way
  json point = p.to_json();
  point.erase("task");
  std::string inputs = point.dump() + "\n" + sweep_inputs + "\nprompts=" + artifacts::prompts_identity(hybrid_dataset_config(cfg, p.dataset));
  if (p.ablation == "randpos" && cfg.hybrid.randpos_fraction < 0) inputs += "\nsource=" + hybrid_task_hash(cfg, p.source(), sweep_inputs);
  c.data.prompts.clear();  // the datasets are the rows' (their identity is in `inputs`)
  return artifacts::output_config_hash(c, {"data", "generate", "hybrid"}, inputs);
}

namespace {

// One prompt's outcome (rank-local until gathered as JSON lines).
struct Outcome {
  int64_t index = 0;
  std::string text, answer;
  int64_t correct = -1, closed = 0, think = 0, steered = 0, disagree = 0, hits = 0;
  std::vector<int64_t> cats;
  std::vector<int32_t> tok, kind, cat, base, thinking;
  std::vector<float> coef;
  json to_json() const {
    return {{"index", index}, {"text", text},     {"answer", answer}, {"correct", correct}, {"closed", closed}, {"think", think}, {"steered", steered},
            {"disagree", disagree}, {"hits", hits}, {"cats", cats},  {"tok", tok},     {"kind", kind},     {"cat", cat},       {"base", base},
            {"thinking", thinking}, {"coef", coef}};
  }
  static Outcome from_json(const json& j) {
    Outcome o;
    o.index = j.at("index"), o.text = j.at("text"), o.answer = j.at("answer"), o.correct = j.at("correct"), o.closed = j.at("closed");
    o.think = j.at("think"), o.steered = j.at("steered"), o.disagree = j.at("disagree"), o.hits = j.at("hits");
    o.cats = j.at("cats").get<std::vector<int64_t>>();
    o.tok = j.at("tok").get<std::vector<int32_t>>(), o.kind = j.at("kind").get<std::vector<int32_t>>(), o.cat = j.at("cat").get<std::vector<int32_t>>();
    o.base = j.at("base").get<std::vector<int32_t>>(), o.thinking = j.at("thinking").get<std::vector<int32_t>>();
    o.coef = j.at("coef").get<std::vector<float>>();
    return o;
  }
};

// The answer part of the emitted tokens: after the forced prefix, else after </think>; the base model
// alone also answers without a thinking part (its whole text).
void judge(Outcome& o, const Tokenizer& tok, const Prompt& prompt, int32_t think_close, bool base_alone) {
  size_t answer_from = o.tok.size();
  o.think = static_cast<int64_t>(o.tok.size());
  for (size_t k = 0; k < o.tok.size(); ++k)
    if (o.kind[k] == static_cast<int32_t>(hybrid::TokenKind::forced) || o.tok[k] == think_close) {
      answer_from = o.kind[k] == static_cast<int32_t>(hybrid::TokenKind::forced) ? k : k + 1;
      o.think = static_cast<int64_t>(k);
      o.closed = 1;
      break;
    }
  o.text = tok.decode(o.tok);
  if (o.closed || base_alone) {
    const size_t from = o.closed ? answer_from : 0;
    const std::string part = tok.decode(std::span<const int32_t>(o.tok.data() + from, o.tok.size() - from));
    if (auto a = extract_answer(part)) o.answer = *a;
  }
  if (!prompt.answer.empty()) o.correct = !o.answer.empty() && answers_equal(o.answer, prompt.answer) ? 1 : 0;
}

Outcome from_hybrid(const hybrid::Result& r, int64_t index, int64_t categories) {
  Outcome o;
  o.index = index;
  o.tok = r.tokens;
  o.kind.assign(r.kind.begin(), r.kind.end());
  o.kind.resize(o.tok.size(), static_cast<int32_t>(hybrid::TokenKind::answer));
  o.cat.assign(r.category.begin(), r.category.end());
  o.cat.resize(o.tok.size(), -1);
  o.coef = r.coef;
  o.coef.resize(o.tok.size(), 0.0F);
  o.base = r.base_token, o.thinking = r.thinking_token;
  o.base.resize(o.tok.size(), -1), o.thinking.resize(o.tok.size(), -1);
  o.cats.assign(static_cast<size_t>(categories), 0);
  for (size_t k = 0; k < o.tok.size(); ++k) {
    const bool thinking_step = o.kind[k] <= 2 || o.kind[k] == 5;
    if (thinking_step && o.base[k] != o.thinking[k]) ++o.disagree;
    if (o.kind[k] != static_cast<int32_t>(hybrid::TokenKind::steered)) continue;
    ++o.steered;
    if (o.tok[k] == o.thinking[k]) ++o.hits;
    if (o.cat[k] >= 0 && o.cat[k] < categories) ++o.cats[static_cast<size_t>(o.cat[k])];
  }
  return o;
}

Outcome from_alone(const GenerateResult& g, int64_t index, int64_t categories) {
  Outcome o;
  o.index = index;
  o.tok = g.tokens;
  const size_t n = o.tok.size();
  o.kind.assign(n, static_cast<int32_t>(hybrid::TokenKind::answer));
  o.cat.assign(n, -1), o.base.assign(n, -1), o.thinking.assign(n, -1), o.coef.assign(n, 0.0F);
  o.cats.assign(static_cast<size_t>(categories), 0);
  return o;
}

// The steered share of thinking-part steps of a finished hybrid task (randpos_fraction = -1).
double measured_fraction(const Config& cfg, const HybridPoint& p, const std::string& sweep_inputs) {
  const HybridPoint src = p.source();
  const fs::path file = artifacts::HYBRID_SWEEP.task(cfg, src.key);
  if (!done_marker_matches(file, hybrid_task_hash(cfg, src, sweep_inputs)))
    throw IncompleteError("randpos task " + std::to_string(p.task) + " needs the steered share of hybrid task " + std::to_string(src.task) + " (" + src.key +
                          "), which has not finished: run it first, or set hybrid.randpos_fraction");
  const artifacts::HybridTask t = artifacts::read_hybrid_task(file);
  if (!t.metrics.contains("steered_fraction")) throw InputError(file.string(), "metrics", "holds no steered_fraction");
  return t.metrics["steered_fraction"].get<double>();
}

// Both models' prompts: the thinking model's chat format, the base model's basevec.base_prompt.
struct EncodedPrompts {
  std::vector<std::vector<int32_t>> thinking, base;
  std::vector<int64_t> costs;
};

EncodedPrompts encode_prompts(const Config& cfg, const HybridEnv& env, const std::string& dataset, const std::vector<Prompt>& prompts, int64_t max_new) {
  EncodedPrompts e;
  Config ctx = cfg;
  ctx.generate.max_new_tokens = max_new;
  for (const Prompt& q : prompts) {
    std::vector<int32_t> t = env.thinking.tokenizer->encode_ids(chat_format_apply(cfg.generate.chat_format, q.text, cfg.generate.system) +
                                                                 (env.open_thinking ? "<think>\n" : ""));
    std::vector<int32_t> b = t;
    if (cfg.basevec.base_prompt != "same") {
      std::string text = basevec_prompt_template(cfg.basevec.base_prompt);
      text.replace(text.find("{question}"), 10, q.text);
      b = env.base.tokenizer->encode_ids(text, true);
    }
    if (t.empty() || b.empty()) throw InputError(dataset, "prompt " + q.id, "encodes to no tokens");
    check_context(ctx, env.thinking.config, q.id, static_cast<int64_t>(t.size()));
    check_context(ctx, env.base.config, q.id, static_cast<int64_t>(b.size()));
    e.costs.push_back(static_cast<int64_t>(std::max(t.size(), b.size())) + max_new);
    e.thinking.push_back(std::move(t));
    e.base.push_back(std::move(b));
  }
  return e;
}

// The task file's contents from every prompt's outcome (JSON lines from all ranks and the saved ones).
artifacts::HybridTask assemble(const Config& cfg, const HybridPoint& p, const HybridEnv& env, const std::vector<Prompt>& prompts,
                               const std::vector<std::string>& lines, double randpos_fraction) {
  const size_t n = prompts.size();
  std::vector<Outcome> rows(n);
  std::vector<char> seen(n, 0);
  for (const std::string& l : lines) {
    Outcome o = Outcome::from_json(json::parse(l));
    seen[static_cast<size_t>(o.index)] = 1;
    rows[static_cast<size_t>(o.index)] = std::move(o);
  }
  if (std::count(seen.begin(), seen.end(), 1) != static_cast<int64_t>(n)) throw std::runtime_error("hybrid: a prompt's outcome was lost in the gather");
  artifacts::HybridTask t;
  t.task = p.task, t.key = p.key, t.point = p.to_json().dump(), t.role = p.role, t.rule = p.rule, t.ablation = p.ablation, t.dataset = p.dataset;
  t.layer = p.layer, t.seed = p.seed, t.categories = env.vectors.c, t.randpos_fraction = randpos_fraction;
  t.vectors_file = env.vectors_file.string(), t.vectors_hash = env.vectors_hash;
  t.token_offsets.push_back(0);
  int64_t steered = 0, steerable = 0, correct = 0, answered = 0;
  for (size_t i = 0; i < n; ++i) {
    const Outcome& o = rows[i];
    t.ids.push_back(prompts[i].id), t.answers.push_back(o.answer), t.references.push_back(prompts[i].answer);
    t.texts.push_back(cfg.hybrid.save_text ? o.text : "");
    t.correct.push_back(o.correct), t.closed.push_back(o.closed), t.new_tokens.push_back(static_cast<int64_t>(o.tok.size()));
    t.think_tokens.push_back(o.think), t.steered.push_back(o.steered), t.disagree.push_back(o.disagree), t.hits.push_back(o.hits);
    t.category_counts.insert(t.category_counts.end(), o.cats.begin(), o.cats.end());
    if (cfg.hybrid.save_text) {
      t.token_id.insert(t.token_id.end(), o.tok.begin(), o.tok.end()), t.token_kind.insert(t.token_kind.end(), o.kind.begin(), o.kind.end());
      t.token_category.insert(t.token_category.end(), o.cat.begin(), o.cat.end()), t.token_coef.insert(t.token_coef.end(), o.coef.begin(), o.coef.end());
      t.token_base.insert(t.token_base.end(), o.base.begin(), o.base.end());
      t.token_thinking.insert(t.token_thinking.end(), o.thinking.begin(), o.thinking.end());
    }
    t.token_offsets.push_back(static_cast<int64_t>(t.token_id.size()));
    steered += o.steered;
    for (int32_t k : o.kind) steerable += (k <= 2 || k == 5) ? 1 : 0;
    if (o.correct >= 0) correct += o.correct, answered += 1;
  }
  t.metrics = {{"accuracy", answered > 0 ? static_cast<double>(correct) / static_cast<double>(answered) : 0.0},
               {"answered", answered},
               {"steered_fraction", steerable > 0 ? static_cast<double>(steered) / static_cast<double>(steerable) : 0.0},
               {"steered", steered},
               {"thinking_steps", steerable}};
  return t;
}

std::vector<std::string> load_progress(const fs::path& file, const std::string& hash) {
  std::vector<std::string> lines;
  std::ifstream in(file);
  std::string line;
  if (!in || !std::getline(in, line) || line != "{\"hash\":\"" + hash + "\"}") return {};
  while (std::getline(in, line))
    if (!line.empty()) lines.push_back(line);
  return lines;
}

}  // namespace

bool run_hybrid_task(const Config& cfg, Runtime& rt, const HybridPoint& p, const HybridEnv& env) {
  const fs::path file = artifacts::HYBRID_SWEEP.task(cfg, p.key);
  const std::string hash = hybrid_task_hash(cfg, p, env.sweep_inputs);
  StageOutput out(cfg, rt, "sweep run", file, hash);
  if (out.complete()) return false;
  const Config c = hybrid_dataset_config(cfg, p.dataset);
  const std::vector<Prompt> prompts = artifacts::load_prompts(c);
  const int64_t n = static_cast<int64_t>(prompts.size());
  const int64_t max_new = cfg.hybrid.max_new_tokens > 0 ? cfg.hybrid.max_new_tokens : cfg.generate.max_new_tokens;
  const int64_t bs = cfg.hybrid.batch_size > 0 ? cfg.hybrid.batch_size : cfg.generate.batch_size;
  const int64_t C = env.vectors.c;

  hybrid::Options opt;
  opt.layer = p.layer, opt.sae_layer = env.sae_layer, opt.seed = static_cast<uint64_t>(p.seed), opt.max_new_tokens = max_new;
  opt.eos_ids = env.base.eos_ids, opt.think_close = env.think_close, opt.answer_prefix = env.answer_prefix;
  opt.thinking_pad = env.thinking.pad_id, opt.base_pad = env.base.pad_id, opt.coef = cfg.hybrid.coefficient, opt.fused = cfg.hybrid.fused;
  opt.guardrail.clear();
  for (const std::string& g : cfg.hybrid.guardrail) opt.guardrail.push_back(std::stod(g));
  if (p.role == "hybrid") {
    opt.rule = static_cast<hybrid::CoefRule>(static_cast<int>(*option_parse<HybridRule>(p.rule)));  // the same order
    opt.ablation = static_cast<hybrid::Ablation>(static_cast<int>(*option_parse<HybridAblation>(p.ablation)));
    if (opt.ablation == hybrid::Ablation::randpos)
      opt.randpos_fraction = cfg.hybrid.randpos_fraction >= 0 ? cfg.hybrid.randpos_fraction : measured_fraction(cfg, p, env.sweep_inputs);
  }
  const hybrid::SteeringSet set = env.set.ablated(opt.ablation, static_cast<uint64_t>(p.seed));
  const hybrid::Classifier classify = [&](const at::Tensor& x) { return (*env.sae)(x); };

  const EncodedPrompts enc = encode_prompts(cfg, env, p.dataset, prompts, max_new);
  const auto& t_ids = enc.thinking;
  const auto& b_ids = enc.base;
  const auto& costs = enc.costs;
  out.begin();
  const fs::path progress = fs::path(file.string() + ".progress.jsonl");
  std::vector<std::string> lines = load_progress(progress, hash);  // every rank reads the saved prompts
  std::vector<char> finished(static_cast<size_t>(n), 0);
  for (const std::string& l : lines) finished[static_cast<size_t>(json::parse(l).at("index").get<int64_t>())] = 1;
  if (!lines.empty()) spdlog::info("hybrid: task {} resumes with {} of {} prompts saved", p.task, lines.size(), n);
  if (rt.rank != 0) lines.clear();  // rank 0 carries the saved ones into the gather
  spdlog::info("hybrid: task {} ({}): {}{} on {} prompts of {}, layer {}, seed {}", p.task, p.key, p.role,
               p.role == "hybrid" ? " " + p.rule + " / " + p.ablation : std::string(), n, p.dataset, p.layer, p.seed);

  std::vector<int64_t> todo;
  for (int64_t i = 0; i < n; ++i)
    if (!finished[static_cast<size_t>(i)]) todo.push_back(i);
  std::vector<int64_t> todo_costs;
  for (int64_t i : todo) todo_costs.push_back(costs[static_cast<size_t>(i)]);
  const Range share = partition_contiguous(todo_costs, rt.n_replicas)[static_cast<size_t>(rt.replica)];
  std::vector<int64_t> mine(todo.begin() + share.begin, todo.begin() + share.end);
  std::stable_sort(mine.begin(), mine.end(), [&](int64_t a, int64_t b) { return b_ids[static_cast<size_t>(a)].size() > b_ids[static_cast<size_t>(b)].size(); });

  std::vector<std::string> mine_lines;
  BatchLoop loop;
  loop.what = "hybrid task " + std::to_string(p.task);
  loop.progress_seconds = cfg.log.progress_seconds;
  loop.work = [&](int64_t b) {
    const size_t begin = static_cast<size_t>(b * bs), end = std::min(mine.size(), begin + static_cast<size_t>(bs));
    std::vector<Outcome> done;
    if (p.role == "hybrid") {
      std::vector<hybrid::Request> batch;
      for (size_t k = begin; k < end; ++k) {
        const auto i = static_cast<size_t>(mine[k]);
        batch.push_back({t_ids[i], b_ids[i], stream_id_of(prompts[i].id)});
      }
      const std::vector<hybrid::Result> res = hybrid::generate(*env.thinking.model, *env.base.model, classify, set, opt, batch);
      for (size_t k = begin; k < end; ++k) done.push_back(from_hybrid(res[k - begin], mine[k], C));
    } else {
      const StageModel& m = p.role == "base" ? env.base : env.thinking;
      GenerateOptions g;
      g.max_new_tokens = max_new, g.eos_ids = m.eos_ids, g.pad_id = m.pad_id;
      std::vector<GenerateRequest> batch;
      for (size_t k = begin; k < end; ++k) {
        const auto i = static_cast<size_t>(mine[k]);
        batch.push_back({p.role == "base" ? b_ids[i] : t_ids[i], stream_id_of(prompts[i].id)});
      }
      const std::vector<GenerateResult> res = generate_batch(*m.model, batch, g);
      for (size_t k = begin; k < end; ++k) done.push_back(from_alone(res[k - begin], mine[k], C));
    }
    for (Outcome& o : done) {
      judge(o, *env.base.tokenizer, prompts[static_cast<size_t>(o.index)], env.think_close, p.role == "base");
      mine_lines.push_back(o.to_json().dump());
    }
  };
  loop.save = [&] {
    std::vector<std::string> all = rt.world_comm.gather_strings(mine_lines, 0);
    on_rank0(rt, [&] {
      std::string text = "{\"hash\":\"" + hash + "\"}\n";
      for (const std::string& l : lines) text += l + "\n";
      for (const std::string& l : all) text += l + "\n";
      write_file_atomic(progress, text);
    });
    return std::to_string(lines.size() + mine_lines.size()) + "+ finished prompts to " + progress.string();
  };
  run_batches(rt, (static_cast<int64_t>(mine.size()) + bs - 1) / bs, loop);

  std::vector<std::string> all = rt.world_comm.gather_strings(mine_lines, 0);
  on_rank0(rt, [&] {
    all.insert(all.end(), lines.begin(), lines.end());
    artifacts::HybridTask t = assemble(cfg, p, env, prompts, all, opt.randpos_fraction);
    const json prov = artifacts::stage_provenance(c, rt, "sweep run", out.config_hash(), cfg.model.path);
    artifacts::write_hybrid_task(out.partial(), t, prov);
    out.commit_h5(prov, artifacts::HYBRID_TASK, artifacts::hybrid_task_datasets(t), {.provenance_json = false, .resolved_config = false, .certified = {}});
    std::error_code ec;
    fs::remove(progress, ec);
    spdlog::info("hybrid: task {} written to {} (accuracy {:.3f} over {} prompts; {} of {} thinking steps steered)", p.task, out.path().string(),
                 t.metrics["accuracy"].get<double>(), t.metrics["answered"].get<int64_t>(), t.metrics["steered"].get<int64_t>(),
                 t.metrics["thinking_steps"].get<int64_t>());
  });
  return true;
}

}  // namespace ts::stages
