// The steering kind of sweep (stages/steer_sweep.h): its plan and the running of one point
// (docs/algorithms.md §A.5, §A.6). The machinery around it (manifest, status, Slurm) is stages/sweep_kind.h.
//   plan: [sweep] axes, the vectors file (steer.vectors), attribute's output for layers = auto | selected
//   task: the manifest row's point on its dataset, written to <run.dir>/sweep/tasks/<key>.h5 (+ .done;
//         artifacts/sweep_task.h): per prompt the generated text, tokens and spans per behaviour
//         (annotate.annotator on the thinking part), answer correctness (steer/answer.h), thinking length
// A task's prompts are shared over the data-parallel replicas (balanced by prompt length) and
// generated in batches with the point's edits attached to a HookSet at blocks.{l}.{hook}, so the
// edit applies in the prefill and at every decode step (positions all | prompt | generated). Rank 0
// gathers the measurements and writes the task file atomically; its done marker carries a hash of
// the point and of everything else that decides the result (model, generation, annotator, vectors,
// prompts, code), so a rerun skips finished tasks and redoes stale ones. A stop request (SIGUSR1
// from Slurm's --signal, SIGTERM) ends the task at a batch boundary with exit 75; the requeued task
// starts it again (tasks are small: one point of a sweep).
#include <ATen/ATen.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <numeric>
#include <optional>

#include "annotate/factory.h"
#include "core/sentences.h"
#include "artifacts/generations.h"
#include "artifacts/prompts.h"
#include "artifacts/attribution.h"
#include "artifacts/sweep_manifest.h"
#include "artifacts/sweep_summary.h"
#include "artifacts/sweep_task.h"
#include "core/error.h"
#include "core/log.h"
#include "dist/batch_loop.h"
#include "dist/partition.h"
#include "model/generate_continuous.h"
#include "stages/stage.h"
#include "stages/steer_sweep.h"
#include "steer/answer.h"
#include "steer/behaviour.h"
#include "steer/intervention.h"
#include "tokenizer/chat_format.h"

namespace ts::stages {
namespace fs = std::filesystem;

namespace {

// One prompt's measurements (rank-local until gathered as JSON).
struct PromptResult {
  int64_t index = 0;
  std::string id, text, answer;
  int64_t correct = -1;  // -1: the prompt has no reference answer
  bool closed = false;
  int64_t think_tokens = 0, new_tokens = 0;
  BehaviourCounts counts;
  std::vector<int32_t> ids;  // the generated token ids
  json to_json() const {
    return json{{"index", index},   {"id", id},       {"text", text},           {"answer", answer},     {"correct", correct},
                {"closed", closed}, {"think", think_tokens}, {"new", new_tokens}, {"tokens", counts.tokens}, {"spans", counts.spans},
                {"ids", ids}};
  }
  static PromptResult from_json(const json& j) {
    PromptResult r;
    r.index = j.at("index");
    r.id = j.at("id");
    r.text = j.at("text");
    r.answer = j.at("answer");
    r.correct = j.at("correct");
    r.closed = j.at("closed");
    r.think_tokens = j.at("think");
    r.new_tokens = j.at("new");
    r.counts.tokens = j.at("tokens").get<std::vector<int64_t>>();
    r.counts.spans = j.at("spans").get<std::vector<int64_t>>();
    r.ids = j.at("ids").get<std::vector<int32_t>>();
    return r;
  }
};

// `forced`: the generation's first `forced` tokens are the model's own, the rest the §C.3 forced close and
// its continuation (-1: none); such a trace's thinking length is its own tokens, and it is not closed.
PromptResult measure(const TaskEnv& env, const Prompt& prompt, int64_t index, const GenerateResult& g, int64_t forced) {
  PromptResult r;
  r.index = index;
  r.id = prompt.id;
  r.new_tokens = static_cast<int64_t>(g.tokens.size());
  r.ids = g.tokens;
  const artifacts::ThinkingLength thinking = artifacts::thinking_length(g.tokens, env.think_close);
  r.think_tokens = forced >= 0 ? forced : thinking.tokens;
  r.closed = forced < 0 && thinking.closed;
  const Tokenizer& tok = *env.model.tokenizer;
  r.text = tok.decode(g.tokens);
  const size_t K = env.annotator->labels().size();
  r.counts.tokens.assign(K, 0);
  r.counts.spans.assign(K, 0);
  const TextRange range = thinking_range(r.text);
  if (range.end > range.begin) {
    const Annotation a = env.annotator->annotate(Trace{r.id, r.text, range.begin, range.end});
    const auto offsets = artifacts::generated_token_offsets(tok, g.tokens, 0);
    for (const LabelledSpan& s : a.spans) {
      int64_t n = 0;
      for (const auto& [b, e] : offsets) n += (b < s.end && e > s.begin) ? 1 : 0;
      r.counts.tokens[static_cast<size_t>(s.label)] += n;
      r.counts.spans[static_cast<size_t>(s.label)] += 1;
    }
  }
  const bool answered = r.closed || (forced >= 0 && r.text.find("</think>") != std::string::npos);
  if (answered) {
    const size_t close = r.text.find("</think>");
    if (auto ans = extract_answer(std::string_view(r.text).substr(close + 8))) r.answer = *ans;
  }
  if (!prompt.answer.empty()) r.correct = answered && !r.answer.empty() && answers_equal(r.answer, prompt.answer) ? 1 : 0;
  return r;
}

// The point's edits as HookSet ops.
void attach(HookSet& hooks, const SweepPoint& p, const TaskEnv& env) {
  const PositionScope scope = p.positions == "prompt" ? PositionScope::PROMPT : p.positions == "generated" ? PositionScope::GENERATED : PositionScope::ALL;
  const at::TensorOptions opt = env.model.model->options();
  for (const LayerEdit& e : point_edits(p, env.vectors, env.vectors_file)) {
    if (e.layer >= env.model.config.n_layer)
      throw InputError(env.vectors_file, "layers", "layer " + std::to_string(e.layer) + " is beyond the model's " + std::to_string(env.model.config.n_layer));
    at::Tensor v = at::from_blob(const_cast<float*>(e.vector.data()), {static_cast<int64_t>(e.vector.size())}, at::kFloat).to(opt, /*non_blocking=*/false, /*copy=*/true);  // own the memory: e.vector dies with the loop
    const HookPoint point = hook_parse("blocks." + std::to_string(e.layer) + "." + p.hook, env.model.config.n_layer);
    if (p.op == "project-out") hooks.project_out(point, v, scope);
    else hooks.add_vector(point, v, e.coef, scope);
  }
}

// §C.3's forced close: each trace of the batch still thinking at the cap gets the forced text and
// steer.force_close_tokens more tokens (with the point's hooks, its own sampling stream), appended to
// its result. Returns per trace the number of its own tokens where forced, else -1.
std::vector<int64_t> force_close(const Config& c, const TaskEnv& env, const std::vector<GenerateRequest>& batch, const std::vector<std::string>& ids,
                                 std::vector<GenerateResult>& results, HookSet& hooks) {
  std::vector<int64_t> forced(results.size(), -1);
  if (!c.steer.force_close || !env.think_close) return forced;
  const std::vector<int32_t> text = env.model.tokenizer->encode_ids(config_unescape(c.steer.force_close_text));
  std::vector<GenerateRequest> more;
  std::vector<size_t> which;
  for (size_t k = 0; k < results.size(); ++k) {
    if (results[k].finish != FinishReason::LENGTH || artifacts::thinking_length(results[k].tokens, env.think_close).closed) continue;
    GenerateRequest r{batch[k].prompt, stream_id_of(ids[k] + "#force-close")};
    r.prompt.insert(r.prompt.end(), results[k].tokens.begin(), results[k].tokens.end());
    r.prompt.insert(r.prompt.end(), text.begin(), text.end());
    more.push_back(std::move(r));
    which.push_back(k);
  }
  if (more.empty()) return forced;
  GenerateOptions gen = generate_options(c, env.model);
  gen.max_new_tokens = c.steer.force_close_tokens;
  const std::vector<GenerateResult> tails = generate_continuous(*env.model.model, more, gen, &hooks, {.max_rows = c.generate.batch_size, .on_done = {}, .admit = {}});
  hooks.clear_records();
  for (size_t j = 0; j < which.size(); ++j) {
    GenerateResult& g = results[which[j]];
    forced[which[j]] = static_cast<int64_t>(g.tokens.size());
    g.tokens.insert(g.tokens.end(), text.begin(), text.end());
    g.tokens.insert(g.tokens.end(), tails[j].tokens.begin(), tails[j].tokens.end());
    g.finish = tails[j].finish;
  }
  return forced;
}

}  // namespace

TaskEnv load_task_env(const Config& cfg, Runtime& rt) {
  if (rt.n_stages > 1)
    throw InputError("[parallel]", "parallel.pipeline_stages", "steering runs data parallel only (1 stage per replica); use more ranks as replicas");
  TaskEnv env;
  env.annotator = make_measuring_annotator(cfg, rt);
  env.inputs = artifacts::task_inputs(cfg, *env.annotator);
  env.vectors_file = env.inputs.vectors_file;
  env.vectors = vectors_read_h5(env.vectors_file);
  artifacts::verify_committed(env.vectors_file, "steer.vectors");
  env.model = load_stage_model(cfg, rt);
  env.think_close = env.model.tokenizer->token_to_id("</think>");
  if (env.vectors.d_model != env.model.config.d_model)
    throw InputError(env.vectors_file, "d_model", "vectors have d_model " + std::to_string(env.vectors.d_model) + " but the model " +
                                                      std::to_string(env.model.config.d_model));
  return env;
}

// Runs one task on every rank of rt (COLLECTIVE). Returns false when it was already finished.
bool run_task(const Config& cfg, Runtime& rt, const SweepPoint& p, const TaskEnv& env) {
  StageOutput out(cfg, rt, "sweep run", artifacts::task_file(cfg, p), artifacts::task_hash(cfg, p, env.inputs));
  if (out.complete()) return false;
  Config c = cfg;
  c.data.prompts = p.dataset;
  if (cfg.generate.temperature > 0) c.generate.seed = static_cast<uint64_t>(p.sample_seed);
  const std::vector<Prompt> prompts = artifacts::load_prompts(c);
  const int64_t n = static_cast<int64_t>(prompts.size());
  const GenerateOptions gen = generate_options(c, env.model);
  const ChatFormat format = c.generate.chat_format;
  std::vector<std::vector<int32_t>> ids(static_cast<size_t>(n));
  std::vector<int64_t> costs(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    ids[static_cast<size_t>(i)] = env.model.tokenizer->encode_ids(chat_format_apply(format, prompts[static_cast<size_t>(i)].text, c.generate.system));
    if (ids[static_cast<size_t>(i)].empty()) throw InputError(p.dataset, "prompt " + prompts[static_cast<size_t>(i)].id, "prompt encodes to no tokens");
    check_context(c, env.model.config, prompts[static_cast<size_t>(i)].id, static_cast<int64_t>(ids[static_cast<size_t>(i)].size()));
    costs[static_cast<size_t>(i)] = static_cast<int64_t>(ids[static_cast<size_t>(i)].size()) + c.generate.max_new_tokens;
  }
  out.begin();
  HookSet hooks(env.model.config.n_layer);
  attach(hooks, p, env);
  spdlog::info("sweep: task {} ({}): {} {} layers {} {} coef {:g} at {} positions, seed {}; {} prompts of {}", p.task, p.key, p.kind, p.vector,
               p.layers_text(), p.op, p.coef * p.layer_scale, p.positions, p.seed, n, p.dataset);

  const Range share = partition_contiguous(costs, rt.n_replicas)[static_cast<size_t>(rt.replica)];
  std::vector<int64_t> mine(static_cast<size_t>(share.end - share.begin));
  std::iota(mine.begin(), mine.end(), share.begin);
  std::stable_sort(mine.begin(), mine.end(), [&](int64_t a, int64_t b) { return ids[static_cast<size_t>(a)].size() > ids[static_cast<size_t>(b)].size(); });
  // Continuous batching (model/generate_continuous.h): batch_size rows, refilled as traces finish, over
  // rounds of BATCHES_PER_ROUND batches' worth of prompts (a progress line and the stop check per round).
  const int64_t bs = c.generate.batch_size, per_round = bs * BATCHES_PER_ROUND;
  std::vector<std::string> lines;
  BatchLoop loop;
  loop.what = "sweep task " + std::to_string(p.task);
  loop.progress_seconds = cfg.log.progress_seconds;
  loop.save = [] { return std::string("nothing (a sweep task is small; the requeued task starts it over)"); };
  loop.work = [&](int64_t b) {
    std::vector<GenerateRequest> batch;
    const size_t begin = static_cast<size_t>(b * per_round), end = std::min(mine.size(), begin + static_cast<size_t>(per_round));
    for (size_t k = begin; k < end; ++k)
      batch.push_back({ids[static_cast<size_t>(mine[k])], stream_id_of(prompts[static_cast<size_t>(mine[k])].id)});
    std::vector<GenerateResult> results = generate_continuous(*env.model.model, batch, gen, &hooks, {.max_rows = bs, .on_done = {}, .admit = {}});
    hooks.clear_records();
    std::vector<std::string> batch_ids;
    for (size_t k = begin; k < end; ++k) batch_ids.push_back(prompts[static_cast<size_t>(mine[k])].id);
    const std::vector<int64_t> forced = force_close(c, env, batch, batch_ids, results, hooks);
    for (size_t k = begin; k < end; ++k) {
      const int64_t i = mine[k];
      lines.push_back(measure(env, prompts[static_cast<size_t>(i)], i, results[k - begin], forced[k - begin]).to_json().dump());
    }
  };
  run_batches(rt, (static_cast<int64_t>(mine.size()) + per_round - 1) / per_round, loop);

  const std::vector<std::string> all = rt.world_comm.gather_strings(lines, 0);
  on_rank0(rt, [&] {
    std::vector<PromptResult> rows(static_cast<size_t>(n));
    std::vector<char> seen(static_cast<size_t>(n), 0);
    for (const std::string& l : all) {
      PromptResult r = PromptResult::from_json(json::parse(l));
      seen[static_cast<size_t>(r.index)] = 1;
      rows[static_cast<size_t>(r.index)] = std::move(r);
    }
    if (std::count(seen.begin(), seen.end(), 1) != n) throw std::runtime_error("sweep: a prompt's measurements were lost in the gather");
    artifacts::TaskRows t;
    t.labels = env.annotator->labels();
    t.token_offset.push_back(0);
    for (const PromptResult& r : rows) {
      t.correct.push_back(r.correct);
      t.think_tokens.push_back(r.think_tokens);
      t.new_tokens.push_back(r.new_tokens);
      t.closed.push_back(r.closed ? 1 : 0);
      t.label_tokens.insert(t.label_tokens.end(), r.counts.tokens.begin(), r.counts.tokens.end());
      t.label_spans.insert(t.label_spans.end(), r.counts.spans.begin(), r.counts.spans.end());
      t.ids.push_back(r.id);
      t.texts.push_back(cfg.steer.save_text ? r.text : "");
      t.answers.push_back(r.answer);
      t.tokens.insert(t.tokens.end(), r.ids.begin(), r.ids.end());
      t.token_offset.push_back(static_cast<int64_t>(t.tokens.size()));
    }
    fs::create_directories(out.dir());
    const json prov = artifacts::stage_provenance(c, rt, "sweep run", out.config_hash(), cfg.model.path);
    artifacts::write_sweep_task(out.partial(), t, p, env.inputs, env.annotator->name(), prov);
    out.commit_h5(prov, artifacts::SWEEP_TASK, artifacts::sweep_task_datasets(n, static_cast<int64_t>(t.labels.size()), static_cast<int64_t>(t.tokens.size())),
                  {.provenance_json = false, .resolved_config = false, .certified = {}});
    double acc = 0, answered = 0;
    for (int64_t v : t.correct)
      if (v >= 0) acc += static_cast<double>(v), answered += 1;
    spdlog::info("sweep: task {} written to {} (accuracy {:.3f} over {} prompts with answers)", p.task, out.path().string(), answered > 0 ? acc / answered : 0.0,
                 answered);
  });
  return true;
}

// --- the plan ------------------------------------------------------------------------------------

namespace {

fs::path attribution_path(const Config& cfg) { return artifacts::input_path(cfg.steer.attribution, cfg, artifacts::ATTRIBUTION_H5); }

// The hook site of a TransformerLens pattern: "blocks.{l}.hook_resid_post" -> "hook_resid_post".
std::string hook_site(const std::string& pattern) {
  const size_t dot = pattern.rfind('.');
  return dot == std::string::npos ? pattern : pattern.substr(dot + 1);
}

std::vector<SweepPoint> make_plan(const Config& cfg, const VectorSet& set, const std::string& vectors_file) {
  SweepAxes a;
  a.datasets = cfg.sweep.datasets.empty() ? std::vector<std::string>{cfg.data.prompts} : cfg.sweep.datasets;
  for (const auto& d : a.datasets)
    if (d.empty()) throw InputError("[sweep]", "sweep.datasets", "no prompts: set data.prompts or sweep.datasets");
  a.vectors = cfg.sweep.vectors;
  a.layers = cfg.sweep.layers;
  for (const auto& c : cfg.sweep.coefficients) a.coefficients.push_back(std::stod(c));
  a.hooks = cfg.sweep.hooks.empty() ? std::vector<std::string>{hook_site(set.hook_applied)} : cfg.sweep.hooks;
  a.ops = cfg.sweep.ops;
  a.positions = cfg.sweep.positions;
  a.controls = cfg.sweep.controls;
  for (const auto& s : cfg.sweep.seeds) a.seeds.push_back(std::stoll(s));
  a.random_directions = cfg.sweep.random_directions;
  for (int64_t s : a.seeds)
    if (a.random_directions > 1 && (s > INT64_MAX / 100 - 100 || s < INT64_MIN / 100 + 100))
      throw InputError("[sweep]", "sweep.seeds", std::to_string(s) + " is too large for sweep.random_directions > 1 (seeds 100*seed + j)");
  a.sampled = cfg.generate.temperature > 0;
  for (const auto& h : a.hooks)
    if (h != hook_site(set.hook_applied))
      spdlog::warn("sweep plan: vectors measured for {} are applied at {} (sweep.hooks)", set.hook_applied, h);
  for (const auto& v : a.vectors)
    if (!set.name_index(v)) throw InputError(vectors_file, "names", "no vector named '" + v + "' (sweep.vectors)");
  std::optional<std::map<std::string, std::vector<int64_t>>> picks;
  auto resolve = [&](const std::string& vector, const std::string& spec) -> std::vector<std::vector<int64_t>> {
    if (spec == "all") return {set.layers};  // every layer at once (§C.3 all-layer steering)
    if (spec == "each") {                    // one point per layer (§C.3 layer-wise steering)
      std::vector<std::vector<int64_t>> out;
      for (int64_t l : set.layers) out.push_back({l});
      return out;
    }
    if (spec != "auto" && spec != "selected") return {parse_layer_group(spec, "[sweep]", "sweep.layers")};
    if (!picks) picks = artifacts::read_attribution_picks(attribution_path(cfg), "sweep.layers");
    auto it = picks->find(vector);
    if (it == picks->end() || it->second.empty())
      throw InputError(attribution_path(cfg).string(), "/selected", "no layer was selected for '" + vector + "' (sweep.layers = " + spec + "); list layers instead");
    std::vector<std::vector<int64_t>> out;
    for (int64_t l : it->second) {
      out.push_back({l});
      if (spec == "auto") break;
    }
    return out;
  };
  std::vector<SweepPoint> points = sweep_expand(a, resolve, cfg.steer.divide_by_layers);
  for (const SweepPoint& p : points) (void)point_edits(p, set, vectors_file);  // every vector exists and is not empty
  return points;
}

}  // namespace

std::vector<SweepPoint> plan_steer_points(const Config& cfg) {
  const std::string vectors_file = artifacts::steer_vectors_path(cfg).string();
  const VectorSet set = vectors_read_h5(vectors_file);
  artifacts::verify_committed(vectors_file, "steer.vectors");
  return make_plan(cfg, set, vectors_file);
}

std::vector<SweepPoint> steer_points(const Config& cfg, const std::vector<json>& rows, size_t first_index) {
  std::vector<SweepPoint> points;
  const std::string manifest = artifacts::STEER_SWEEP.manifest(cfg).string();
  for (const json& row : rows) points.push_back(SweepPoint::from_json(row, manifest + ":" + std::to_string(first_index + points.size() + 1)));
  return points;
}

// --- the kind ------------------------------------------------------------------------------------

namespace {

class SteerSweep final : public SweepKind {
 public:
  const char* name() const override { return "steer"; }
  const artifacts::SweepLayout& layout() const override { return artifacts::STEER_SWEEP; }
  std::vector<json> plan(const Config& cfg, Runtime&) override {
    std::vector<json> rows;
    for (const SweepPoint& p : plan_steer_points(cfg)) rows.push_back(p.to_json());
    return rows;
  }
  json plan_record(const Config& cfg) const override {
    return {{"vectors_file", artifacts::steer_vectors_path(cfg).string()},
            {"config", config_to_ini(cfg, {"model", "run", "data", "generate", "annotate", "steer", "sweep"})}};
  }
  void prepare(const Config& cfg, Runtime& rt) override { env_ = std::make_unique<TaskEnv>(load_task_env(cfg, rt)); }
  bool run(const Config& cfg, Runtime& rt, const json& row, size_t index) override {
    return run_task(cfg, rt, steer_points(cfg, {row}, index).front(), *env_);
  }
  std::vector<SweepTaskId> task_ids(const Config& cfg, Runtime& rt, const std::vector<json>& rows) override {
    const std::unique_ptr<Annotator> annotator = make_measuring_annotator(cfg, rt);
    const artifacts::TaskInputs inputs = artifacts::task_inputs(cfg, *annotator);
    std::vector<SweepTaskId> ids;
    for (const SweepPoint& p : steer_points(cfg, rows)) ids.push_back({artifacts::task_file(cfg, p), artifacts::task_hash(cfg, p, inputs)});
    return ids;
  }
  fs::path summary(const Config& cfg) const override { return artifacts::SWEEP_SUMMARY_H5.in(cfg); }
  std::vector<fs::path> summary_extras(const Config& cfg) const override { return {artifacts::SWEEP_SUMMARY_CSV.in(cfg)}; }
  void write_summary(const Config& cfg, Runtime& rt, StageOutput& out, const std::vector<json>& rows, const SweepStatus& st) override {
    write_steer_summary(cfg, rt, out, steer_points(cfg, rows), st);
  }

 private:
  std::unique_ptr<TaskEnv> env_;
};

}  // namespace

std::unique_ptr<SweepKind> make_steer_sweep() { return std::make_unique<SteerSweep>(); }

}  // namespace ts::stages
