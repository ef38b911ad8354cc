#include "artifacts/sweep_task.h"

#include "artifacts/prompts.h"
#include "artifacts/vectors.h"
#include <algorithm>

#include "core/error.h"
#include "core/sha256.h"
#include "model/checkpoint_identity.h"

namespace ts::artifacts {
namespace fs = std::filesystem;

fs::path sweep_dir(const Config& cfg) { return fs::path(cfg.run.dir) / "sweep"; }

fs::path task_file(const Config& cfg, const SweepPoint& p) { return sweep_dir(cfg) / "tasks" / (p.key + ".h5"); }

fs::path steer_vectors_path(const Config& cfg) { return input_path(cfg.steer.vectors, cfg, VECTORS_H5); }

TaskInputs task_inputs(const Config& cfg, const Annotator& annotator) {
  TaskInputs in;
  in.vectors_file = steer_vectors_path(cfg).string();
  if (!fs::exists(in.vectors_file))
    throw InputError(in.vectors_file, "steer.vectors", "no vectors file (run `thinksteer vectors` first, or set steer.vectors)");
  in.vectors_sha = sha256_file(in.vectors_file);
  in.checkpoint_id = checkpoint_identity(cfg.model.path);
  in.annotator_identity = annotator.identity();
  return in;
}

namespace {
// The forced close changes the results only when on (hashes of runs without it stay as they were).
std::string force_close_identity(const Config& cfg) {
  if (!cfg.steer.force_close) return "";
  return "\nforce_close=" + cfg.steer.force_close_text + "\nforce_close_tokens=" + std::to_string(cfg.steer.force_close_tokens);
}
}  // namespace

std::string task_hash(const Config& cfg, const SweepPoint& p, const TaskInputs& in) {
  Config c = cfg;
  c.data.prompts = p.dataset;
  json point = p.to_json();
  point.erase("task");
  return output_config_hash(c, {"model", "data", "generate", "annotate"},
                            "schema=" + std::to_string(SWEEP_TASK.schema_version) + "\n" + point.dump() + "\nsave_text=" + (cfg.steer.save_text ? "1" : "0") + force_close_identity(cfg) + "\nvectors=" + in.vectors_sha +
                                "\nprompts=" + prompts_identity(c) + "\ncheckpoint=" + in.checkpoint_id + "\nannotator=" + in.annotator_identity);
}

std::vector<h5::DatasetSpec> sweep_task_datasets(int64_t n, int64_t K, int64_t n_tokens) {
  using h5::DType;
  return {
      {"/prompts/correct", DType::I64, {n}, {"prompt"}, {{"description", "1 correct, 0 wrong (or unfinished), -1 no reference answer"}}},
      {"/prompts/closed", DType::U8, {n}, {"prompt"}, {{"description", "1 if the trace closed </think>"}}},
      {"/prompts/think_tokens", DType::I64, {n}, {"prompt"}, {{"description", "generated tokens before </think> (all if unclosed; with steer.force_close the tokens before the forced close)"}}},
      {"/prompts/new_tokens", DType::I64, {n}, {"prompt"}, {{"description", "generated tokens (including EOS)"}}},
      {"/prompts/label_tokens", DType::I64, {n, K}, {"prompt", "label"}, {{"description", "tokens of the thinking part in spans of each label"}}},
      {"/prompts/label_spans", DType::I64, {n, K}, {"prompt", "label"}, {{"description", "spans of each label in the thinking part"}}},
      {"/prompts/tokens", DType::I32, {n_tokens}, {"token"}, {{"description", "generated token ids of every prompt, back to back"}}},
      {"/prompts/token_offset", DType::I64, {n + 1}, {"prompt_edge"}, {{"description", "prompt i's tokens are tokens[token_offset[i]:token_offset[i+1]]"}}},
  };
}

void write_sweep_task(const fs::path& file, const TaskRows& r, const SweepPoint& p, const TaskInputs& in, const std::string& annotator,
                      const json& provenance) {
  const std::vector<h5::DatasetSpec> specs =
      sweep_task_datasets(static_cast<int64_t>(r.size()), static_cast<int64_t>(r.labels.size()), static_cast<int64_t>(r.tokens.size()));
  const void* data[] = {r.correct.data(),      r.closed.data(),      r.think_tokens.data(), r.new_tokens.data(),
                        r.label_tokens.data(), r.label_spans.data(), r.tokens.data(),       r.token_offset.data()};
  h5::SerialFile f(file, h5::SerialFile::Mode::CREATE);
  for (size_t i = 0; i < specs.size(); ++i) f.write_dataset(specs[i], data[i]);
  f.write_strings("/labels", r.labels, "label");
  f.write_strings("/prompts/id", r.ids, "prompt");
  f.write_strings("/prompts/answer", r.answers, "prompt");
  f.write_strings("/prompts/text", r.texts, "prompt");
  write_h5_identity(f, provenance, SWEEP_TASK);
  f.set_attr("/", "task", p.task);
  f.set_attr("/", "key", p.key);
  f.set_attr("/", "point", p.to_json().dump());
  f.set_attr("/", "vectors_file", in.vectors_file);
  f.set_attr("/", "vectors_sha256", in.vectors_sha);
  f.set_attr("/", "annotator", annotator);
}

TaskRows read_sweep_task(const fs::path& file) {
  const auto opened = open_checked(file, SWEEP_TASK, "sweep task");
  const h5::SerialFile& f = *opened;
  TaskRows t;
  t.key = f.attr_string("/", "key");
  t.point = f.attr_string("/", "point");
  t.config_sha256 = f.attr_string("/", "config_sha256");
  t.labels = f.read_strings("/labels");
  t.ids = f.read_strings("/prompts/id");
  t.correct = f.read_i64("/prompts/correct");
  t.think_tokens = f.read_i64("/prompts/think_tokens");
  t.new_tokens = f.read_i64("/prompts/new_tokens");
  t.label_tokens = f.read_i64("/prompts/label_tokens");
  t.label_spans = f.read_i64("/prompts/label_spans");
  for (int64_t c : f.read_i64("/prompts/closed")) t.closed.push_back(static_cast<uint8_t>(c));
  for (int64_t id : f.read_i64("/prompts/tokens")) t.tokens.push_back(static_cast<int32_t>(id));
  t.token_offset = f.read_i64("/prompts/token_offset");
  const size_t n = t.ids.size(), K = t.labels.size();
  if (t.correct.size() != n || t.think_tokens.size() != n || t.new_tokens.size() != n || t.closed.size() != n || t.label_tokens.size() != n * K ||
      t.label_spans.size() != n * K || t.token_offset.size() != n + 1)
    throw InputError(file.string(), "/prompts", "datasets disagree in length");
  verify_committed(file, "sweep task");
  return t;
}

namespace {

// The point's parameters without its row (rows shift when a re-plan adds axis values; keys do not).
json point_params(const std::string& text, const std::string& file) {
  json j = json_parse_strict(text, file + " (attribute point)");
  if (!j.is_object()) throw InputError(file, "point", "is not a JSON object");
  j.erase("task");
  return j;
}

void check_range(const std::string& file, const char* dataset, const std::vector<int64_t>& v, int64_t lo, const std::vector<int64_t>& hi, size_t per) {
  for (size_t i = 0; i < v.size(); ++i)
    if (v[i] < lo || v[i] > hi[i / per])
      throw InputError(file, dataset, "row " + std::to_string(i / per) + ": " + std::to_string(v[i]) + " is outside [" + std::to_string(lo) + ", " +
                                          std::to_string(hi[i / per]) + "]");
}

}  // namespace

void check_sweep_task(const fs::path& file, const TaskRows& t, const SweepPoint& p, const std::string& hash, int64_t max_new_tokens) {
  const std::string f = file.string();
  if (t.key != p.key) throw InputError(f, "key", "is '" + t.key + "', but the file stands for point " + p.key + ": a copy of another task's file?");
  json want = p.to_json();
  want.erase("task");
  if (point_params(t.point, f) != want) throw InputError(f, "point", "the parameters differ from the manifest row of " + p.key);
  if (t.config_sha256 != hash) throw InputError(f, "config_sha256", "is not the hash of this task's config and inputs (its .done marker vouches for another run)");
  const size_t n = t.size(), K = t.labels.size();
  const std::vector<int64_t> max_new(n, max_new_tokens);
  check_range(f, "/prompts/correct", t.correct, -1, std::vector<int64_t>(n, 1), 1);
  for (size_t i = 0; i < n; ++i)
    if (t.closed[i] > 1) throw InputError(f, "/prompts/closed", "row " + std::to_string(i) + ": " + std::to_string(t.closed[i]) + " is not 0 or 1");
  check_range(f, "/prompts/new_tokens", t.new_tokens, 0, max_new, 1);
  check_range(f, "/prompts/think_tokens", t.think_tokens, 0, t.new_tokens, 1);
  check_range(f, "/prompts/label_tokens", t.label_tokens, 0, t.new_tokens, std::max<size_t>(K, 1));
  check_range(f, "/prompts/label_spans", t.label_spans, 0, t.new_tokens, std::max<size_t>(K, 1));
  if (t.token_offset.front() != 0 || t.token_offset.back() != static_cast<int64_t>(t.tokens.size()))
    throw InputError(f, "/prompts/token_offset", "does not run from 0 to the number of tokens (" + std::to_string(t.tokens.size()) + ")");
  for (size_t i = 0; i < n; ++i)
    if (t.token_offset[i + 1] - t.token_offset[i] != t.new_tokens[i])
      throw InputError(f, "/prompts/token_offset", "row " + std::to_string(i) + ": " + std::to_string(t.token_offset[i + 1] - t.token_offset[i]) +
                                                       " tokens, but new_tokens says " + std::to_string(t.new_tokens[i]));
  std::vector<std::string> ids = t.ids;
  std::sort(ids.begin(), ids.end());
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i].empty() || (i > 0 && ids[i] == ids[i - 1])) throw InputError(f, "/prompts/id", "prompt ids must be distinct and non-empty ('" + ids[i] + "')");
}

}  // namespace ts::artifacts
