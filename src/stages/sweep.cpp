// Stages `sweep plan`, `sweep run` and `steer`: steered generation over the points of a sweep
// (ALGORITHMS §A.5, §A.6; DECISIONS.md "Sweeps are Slurm array tasks").
//   sweep plan  in : [sweep] axes, the vectors file (steer.vectors), attribute's output for layers = auto
//               out: <run.dir>/sweep/manifest.jsonl (one row per task, steer/sweep_plan.h),
//                    <run.dir>/sweep/plan.json; stdout: one line "--array=0-<N-1>" for sbatch
//   sweep run   in : the manifest row --task-id N (or $SLURM_ARRAY_TASK_ID), model.path, its dataset
//               out: <run.dir>/sweep/tasks/<key>.h5 (+ .done): per prompt the generated text,
//                    tokens and spans per behaviour (annotate.annotator on the thinking part),
//                    answer correctness (steer/answer.h), thinking length
//   steer       plans, runs every task not yet finished on these ranks, then `reduce`.
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
#include <iostream>
#include <numeric>

#include "annotate/sentences.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "core/sha256.h"
#include "dist/partition.h"
#include "io/vectors.h"
#include "stages/common.h"
#include "stages/stages.h"
#include "stages/sweep_common.h"
#include "steer/answer.h"
#include "steer/behaviour.h"
#include "steer/intervention.h"
#include "steer/sweep_plan.h"

namespace ts::stages {
namespace fs = std::filesystem;

namespace {

constexpr const char* TASK_FORMAT = "thinksteer.sweep_task";

fs::path attribution_path(const Config& cfg) { return run_input(cfg.steer.attribution, cfg, "attribute", "attribution.h5"); }

// The hook site of a TransformerLens pattern: "blocks.{l}.hook_resid_post" -> "hook_resid_post".
std::string hook_site(const std::string& pattern) {
  const size_t dot = pattern.rfind('.');
  return dot == std::string::npos ? pattern : pattern.substr(dot + 1);
}

// The layers attribute selected per behaviour, in its order (attribution.h5 /labels, /selected
// [label, pick], -1 padded): the first is its top peak.
std::map<std::string, std::vector<int64_t>> attribute_picks(const fs::path& file) {
  if (!fs::exists(file))
    throw InputError(file.string(), "sweep.layers", "'auto' and 'selected' take the layers `thinksteer attribute` chose, but its output is not there (run attribute, set steer.attribution, or list layers)");
  h5::SerialFile f(file, h5::SerialFile::Mode::READ_ONLY);
  const std::vector<std::string> labels = f.read_strings("/labels");
  const std::vector<int64_t> shape = f.shape("/selected");
  const std::vector<int64_t> selected = f.read_i64("/selected");
  if (shape.size() != 2 || shape[0] != static_cast<int64_t>(labels.size()) || shape[1] < 1)
    throw InputError(file.string(), "/selected", "must be [labels, picks] with at least one pick");
  std::map<std::string, std::vector<int64_t>> out;
  for (size_t k = 0; k < labels.size(); ++k)
    for (int64_t j = 0; j < shape[1]; ++j)
      if (const int64_t l = selected[k * static_cast<size_t>(shape[1]) + static_cast<size_t>(j)]; l >= 0) out[labels[k]].push_back(l);
  return out;
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
  a.sampled = cfg.generate.temperature > 0;
  for (const auto& h : a.hooks)
    if (h != hook_site(set.hook_applied))
      spdlog::warn("sweep plan: vectors measured for {} are applied at {} (sweep.hooks)", set.hook_applied, h);
  for (const auto& v : a.vectors)
    if (!set.name_index(v)) throw InputError(vectors_file, "names", "no vector named '" + v + "' (sweep.vectors)");
  std::optional<std::map<std::string, std::vector<int64_t>>> picks;
  auto resolve = [&](const std::string& vector, const std::string& spec) -> std::vector<std::vector<int64_t>> {
    if (spec != "auto" && spec != "selected") return {parse_layer_group(spec, "[sweep]", "sweep.layers")};
    if (!picks) picks = attribute_picks(attribution_path(cfg));
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

// Everything a process needs to run tasks, loaded once.
struct TaskEnv {
  StageModel model;
  VectorSet vectors;
  std::string vectors_file;
  TaskInputs inputs;
  std::unique_ptr<Annotator> annotator;
  std::optional<int32_t> think_close;
};

// One prompt's measurements (rank-local until gathered as JSON).
struct PromptResult {
  int64_t index = 0;
  std::string id, text, answer;
  int64_t correct = -1;  // -1: the prompt has no reference answer
  bool closed = false;
  int64_t think_tokens = 0, new_tokens = 0;
  BehaviourCounts counts;
  json to_json() const {
    return json{{"index", index},   {"id", id},       {"text", text},           {"answer", answer},     {"correct", correct},
                {"closed", closed}, {"think", think_tokens}, {"new", new_tokens}, {"tokens", counts.tokens}, {"spans", counts.spans}};
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
    return r;
  }
};

PromptResult measure(const TaskEnv& env, const Prompt& prompt, int64_t index, const GenerateResult& g) {
  PromptResult r;
  r.index = index;
  r.id = prompt.id;
  r.new_tokens = static_cast<int64_t>(g.tokens.size());
  const ThinkingLength thinking = thinking_length(g.tokens, env.think_close);
  r.think_tokens = thinking.tokens;
  r.closed = thinking.closed;
  const Tokenizer& tok = *env.model.tokenizer;
  r.text = tok.decode(g.tokens);
  const size_t K = env.annotator->labels().size();
  r.counts.tokens.assign(K, 0);
  r.counts.spans.assign(K, 0);
  const TextRange range = thinking_range(r.text);
  if (range.end > range.begin) {
    const Annotation a = env.annotator->annotate(Trace{r.id, r.text, range.begin, range.end});
    const auto offsets = generated_token_offsets(tok, g.tokens, 0);
    for (const LabelledSpan& s : a.spans) {
      int64_t n = 0;
      for (const auto& [b, e] : offsets) n += (b < s.end && e > s.begin) ? 1 : 0;
      r.counts.tokens[static_cast<size_t>(s.label)] += n;
      r.counts.spans[static_cast<size_t>(s.label)] += 1;
    }
  }
  if (r.closed) {
    const size_t close = r.text.find("</think>");
    if (auto ans = extract_answer(std::string_view(r.text).substr(close + 8))) r.answer = *ans;
  }
  if (!prompt.answer.empty()) r.correct = r.closed && !r.answer.empty() && answers_equal(r.answer, prompt.answer) ? 1 : 0;
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

TaskEnv load_env(const Config& cfg, Runtime& rt) {
  if (rt.n_stages > 1)
    throw InputError("[parallel]", "parallel.pipeline_stages", "steering runs data parallel only (1 stage per replica); use more ranks as replicas");
  TaskEnv env;
  env.annotator = make_sweep_annotator(cfg);
  env.inputs = task_inputs(cfg, *env.annotator);
  env.vectors_file = env.inputs.vectors_file;
  env.vectors = vectors_read_h5(env.vectors_file);
  env.model = load_stage_model(cfg, rt);
  env.think_close = env.model.tokenizer->token_to_id("</think>");
  if (env.vectors.d_model != env.model.config.d_model)
    throw InputError(env.vectors_file, "d_model", "vectors have d_model " + std::to_string(env.vectors.d_model) + " but the model " +
                                                      std::to_string(env.model.config.d_model));
  return env;
}

// Runs one task on every rank of rt (COLLECTIVE). Returns false when it was already finished.
bool run_task(const Config& cfg, Runtime& rt, const SweepPoint& p, const TaskEnv& env) {
  const fs::path out = task_file(cfg, p);
  const std::string hash = task_hash(cfg, p, env.inputs);
  const bool done = rt.rank == 0 && done_marker_matches(out, hash);
  if (rt.world_comm.allreduce_max(done ? 1 : 0)) {
    spdlog::info("sweep: task {} ({}) is finished, skipping", p.task, p.key);
    return false;
  }
  Config c = cfg;
  c.data.prompts = p.dataset;
  if (cfg.generate.temperature > 0) c.generate.seed = static_cast<uint64_t>(p.seed);
  const std::vector<Prompt> prompts = load_prompts(c);
  const int64_t n = static_cast<int64_t>(prompts.size());
  const GenerateOptions gen = generate_options(c, env.model);
  const ChatFormat format = chat_format_from_name(c.generate.chat_format);
  std::vector<std::vector<int32_t>> ids(static_cast<size_t>(n));
  std::vector<int64_t> costs(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    ids[static_cast<size_t>(i)] = env.model.tokenizer->encode_ids(chat_format_apply(format, prompts[static_cast<size_t>(i)].text, c.generate.system));
    if (ids[static_cast<size_t>(i)].empty()) throw InputError(p.dataset, "prompt " + prompts[static_cast<size_t>(i)].id, "prompt encodes to no tokens");
    costs[static_cast<size_t>(i)] = static_cast<int64_t>(ids[static_cast<size_t>(i)].size()) + c.generate.max_new_tokens;
  }
  HookSet hooks(env.model.config.n_layer);
  attach(hooks, p, env);
  spdlog::info("sweep: task {} ({}): {} {} layers {} {} coef {:g} at {} positions, seed {}; {} prompts of {}", p.task, p.key, p.kind, p.vector,
               p.layers_text(), p.op, p.coef * p.layer_scale, p.positions, p.seed, n, p.dataset);

  const Range share = partition_contiguous(costs, rt.n_replicas)[static_cast<size_t>(rt.replica)];
  std::vector<int64_t> mine(static_cast<size_t>(share.end - share.begin));
  std::iota(mine.begin(), mine.end(), share.begin);
  std::stable_sort(mine.begin(), mine.end(), [&](int64_t a, int64_t b) { return ids[static_cast<size_t>(a)].size() > ids[static_cast<size_t>(b)].size(); });
  const int64_t bs = c.generate.batch_size;
  std::vector<std::string> lines;
  BatchLoop loop;
  loop.what = "sweep task " + std::to_string(p.task);
  loop.progress_seconds = cfg.log.progress_seconds;
  loop.save = [&] { rt.world_comm.barrier(); };  // a stopped task starts over when requeued
  loop.work = [&](int64_t b) {
    std::vector<GenerateRequest> batch;
    const size_t begin = static_cast<size_t>(b * bs), end = std::min(mine.size(), begin + static_cast<size_t>(bs));
    for (size_t k = begin; k < end; ++k)
      batch.push_back({ids[static_cast<size_t>(mine[k])], stream_id_of(prompts[static_cast<size_t>(mine[k])].id)});
    const std::vector<GenerateResult> results = generate_batch(*env.model.model, batch, gen, &hooks);
    hooks.clear_records();
    for (size_t k = begin; k < end; ++k) {
      const int64_t i = mine[k];
      lines.push_back(measure(env, prompts[static_cast<size_t>(i)], i, results[k - begin]).to_json().dump());
    }
  };
  run_batches(rt, (static_cast<int64_t>(mine.size()) + bs - 1) / bs, loop);

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
    const std::vector<std::string>& labels = env.annotator->labels();
    const int64_t K = static_cast<int64_t>(labels.size());
    std::vector<int64_t> correct, think, new_tokens, tokens, spans;
    std::vector<uint8_t> closed;
    std::vector<std::string> prompt_ids, texts, answers;
    for (const PromptResult& r : rows) {
      correct.push_back(r.correct);
      think.push_back(r.think_tokens);
      new_tokens.push_back(r.new_tokens);
      closed.push_back(r.closed ? 1 : 0);
      tokens.insert(tokens.end(), r.counts.tokens.begin(), r.counts.tokens.end());
      spans.insert(spans.end(), r.counts.spans.begin(), r.counts.spans.end());
      prompt_ids.push_back(r.id);
      texts.push_back(cfg.steer.save_text ? r.text : "");
      answers.push_back(r.answer);
    }
    using h5::DType;
    const std::vector<h5::DatasetSpec> specs = {
        {"/prompts/correct", DType::I64, {n}, {"prompt"}, {{"description", "1 correct, 0 wrong (or unfinished), -1 no reference answer"}}},
        {"/prompts/closed", DType::U8, {n}, {"prompt"}, {{"description", "1 if the trace closed </think>"}}},
        {"/prompts/think_tokens", DType::I64, {n}, {"prompt"}, {{"description", "generated tokens before </think> (all if unclosed)"}}},
        {"/prompts/new_tokens", DType::I64, {n}, {"prompt"}, {{"description", "generated tokens (including EOS)"}}},
        {"/prompts/label_tokens", DType::I64, {n, K}, {"prompt", "label"}, {{"description", "tokens of the thinking part in spans of each label"}}},
        {"/prompts/label_spans", DType::I64, {n, K}, {"prompt", "label"}, {{"description", "spans of each label in the thinking part"}}},
    };
    const void* data[] = {correct.data(), closed.data(), think.data(), new_tokens.data(), tokens.data(), spans.data()};
    const fs::path tmp = out.string() + ".partial";
    fs::create_directories(out.parent_path());
    {
      h5::SerialFile f(tmp, h5::SerialFile::Mode::CREATE);
      for (size_t i = 0; i < specs.size(); ++i) f.write_dataset(specs[i], data[i]);
      f.write_strings("/labels", labels, "label");
      f.write_strings("/prompts/id", prompt_ids, "prompt");
      f.write_strings("/prompts/answer", answers, "prompt");
      f.write_strings("/prompts/text", texts, "prompt");
      write_h5_provenance(f, stage_provenance(c, rt, "sweep run", hash, cfg.model.path), TASK_FORMAT);
      f.set_attr("/", "task", p.task);
      f.set_attr("/", "key", p.key);
      f.set_attr("/", "point", p.to_json().dump());
      f.set_attr("/", "vectors_file", env.vectors_file);
      f.set_attr("/", "vectors_sha256", env.inputs.vectors_sha);
      f.set_attr("/", "annotator", env.annotator->name());
    }
    h5::commit_h5(tmp, out, TASK_FORMAT, specs, hash);
    double acc = 0, answered = 0;
    for (int64_t v : correct)
      if (v >= 0) acc += static_cast<double>(v), answered += 1;
    spdlog::info("sweep: task {} written to {} (accuracy {:.3f} over {} prompts with answers)", p.task, out.string(), answered > 0 ? acc / answered : 0.0,
                 answered);
  });
  return true;
}

// plan.json + manifest.jsonl (rank 0, rewritten only when they change), the points for every rank.
std::vector<SweepPoint> plan_and_write(const Config& cfg, Runtime& rt) {
  const std::string vectors_file = steer_vectors_path(cfg).string();
  const VectorSet set = vectors_read_h5(vectors_file);
  std::vector<SweepPoint> points = make_plan(cfg, set, vectors_file);
  on_rank0(rt, [&] {
    const fs::path dir = sweep_dir(cfg);
    fs::create_directories(dir);
    const std::string text = manifest_text(points);
    if (!fs::exists(dir / "manifest.jsonl") || read_file(dir / "manifest.jsonl") != text) {
      write_file_atomic(dir / "manifest.jsonl", text);
      json plan = {{"n_tasks", points.size()}, {"manifest_sha256", sha256_hex(text)}, {"vectors_file", vectors_file},
                   {"config", config_to_ini(cfg, {"model", "run", "data", "generate", "annotate", "steer", "sweep"})}};
      write_file_atomic(dir / "plan.json", plan.dump(2) + "\n");
      spdlog::info("sweep plan: {} tasks written to {}", points.size(), (dir / "manifest.jsonl").string());
    } else {
      spdlog::info("sweep plan: {} is up to date ({} tasks)", (dir / "manifest.jsonl").string(), points.size());
    }
  });
  return points;
}

}  // namespace

namespace sweep_plan {
void run(const Config& cfg, Runtime& rt) {
  const std::vector<SweepPoint> points = plan_and_write(cfg, rt);
  if (rt.rank == 0) {
    const std::string array = "0-" + std::to_string(points.size() - 1);
    spdlog::info("sweep plan: submit with  slurm/submit.sh sweep {}   (or sbatch --array={} slurm/sweep.sbatch ...)",
                 cfg.config_file.empty() ? "<config>" : cfg.config_file, array);
    std::cout << "--array=" << array << std::endl;
  }
}
}  // namespace sweep_plan

namespace sweep_run {
void run(const Config& cfg, Runtime& rt) {
  int64_t task = cfg.sweep.task_id;
  if (task < 0) {
    const char* env_id = std::getenv("SLURM_ARRAY_TASK_ID");
    if (env_id == nullptr) throw InputError("<command line>", "--task-id", "give the manifest row to run (--task-id N), or run inside a Slurm array task");
    try {
      task = std::stoll(env_id);
    } catch (const std::exception&) {
      throw InputError("$SLURM_ARRAY_TASK_ID", "value", std::string("not an integer: '") + env_id + "'");
    }
  }
  const fs::path manifest = sweep_dir(cfg) / "manifest.jsonl";
  const std::vector<SweepPoint> points = manifest_read(manifest.string());
  if (task >= static_cast<int64_t>(points.size()))
    throw InputError(manifest.string(), "task", "task " + std::to_string(task) + " is not in the manifest (" + std::to_string(points.size()) + " tasks)");
  const TaskEnv env = load_env(cfg, rt);
  run_task(cfg, rt, points[static_cast<size_t>(task)], env);
}
}  // namespace sweep_run

namespace steer {
void run(const Config& cfg, Runtime& rt) {
  const std::vector<SweepPoint> points = plan_and_write(cfg, rt);
  const TaskEnv env = load_env(cfg, rt);
  int64_t ran = 0;
  for (const SweepPoint& p : points) ran += run_task(cfg, rt, p, env) ? 1 : 0;
  spdlog::info("steer: {} of {} tasks run, {} were finished before", ran, points.size(), static_cast<int64_t>(points.size()) - ran);
  reduce::run(cfg, rt);
}
}  // namespace steer

}  // namespace ts::stages
