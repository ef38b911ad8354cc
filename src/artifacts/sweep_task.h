// Artifact `sweep task` (docs/run-layout.md): one finished point of a sweep,
// <run.dir>/sweep/tasks/<key>.h5 (format thinksteer.sweep_task) and its `.done` marker. Named by the
// point's key, not its row, so a re-plan that adds axis values (and shifts rows) still finds every
// finished point.
//   /labels [K] str; /prompts/{id, answer, text} [N] str; /prompts/correct [N] i64 (1, 0, or -1 without
//   a reference answer); /prompts/closed [N] u8; /prompts/think_tokens, new_tokens [N] i64;
//   /prompts/tokens [sum new_tokens] i32 (every prompt's generated token ids, back to back) and
//   /prompts/token_offset [N+1] i64 (prompt i's are tokens[token_offset[i], token_offset[i+1]]);
//   /prompts/label_tokens, label_spans [N, K] i64; root attributes task, key, point (JSON),
//   vectors_file, vectors_sha256, annotator, and the artifact identity.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "annotate/annotator.h"
#include "artifacts/artifact.h"
#include "steer/sweep_plan.h"

namespace ts::artifacts {

inline constexpr Format SWEEP_TASK{"thinksteer.sweep_task", 2, "sweep run"};  // 2: + generated token ids

std::filesystem::path sweep_dir(const Config& cfg);  // <run.dir>/sweep
std::filesystem::path task_file(const Config& cfg, const SweepPoint& p);
std::filesystem::path steer_vectors_path(const Config& cfg);  // steer.vectors or <run.dir>/vectors/vectors.h5

// Identity of a task's inputs besides the point and the config sections.
struct TaskInputs {
  std::string vectors_file, vectors_sha, checkpoint_id, annotator_identity;
};
TaskInputs task_inputs(const Config& cfg, const Annotator& annotator);
// The hash a task's done marker holds: the point and everything else that decides its result
// (model, generation, annotator, vectors, prompts, code).
std::string task_hash(const Config& cfg, const SweepPoint& p, const TaskInputs& in);

// A task's measurements, one entry per prompt (label_tokens, label_spans: [prompt][label] row-major).
struct TaskRows {
  std::string key, point, config_sha256;  // the root attributes: the point's key and JSON, the task hash
  std::vector<std::string> labels;
  std::vector<std::string> ids, answers, texts;
  std::vector<int64_t> correct, think_tokens, new_tokens, label_tokens, label_spans;
  std::vector<uint8_t> closed;
  std::vector<int32_t> tokens;        // generated ids of every prompt, back to back
  std::vector<int64_t> token_offset;  // [n + 1]
  size_t size() const { return ids.size(); }
};

// The numeric datasets of a task of n prompts, K labels and n_tokens generated tokens in all.
std::vector<h5::DatasetSpec> sweep_task_datasets(int64_t n, int64_t K, int64_t n_tokens);
// Writes `rows` to `file` (created), with the point, its inputs and the provenance as attributes.
void write_sweep_task(const std::filesystem::path& file, const TaskRows& rows, const SweepPoint& p, const TaskInputs& in,
                      const std::string& annotator, const json& provenance);
// A finished task file, checked for identity and consistent shapes. Throws InputError naming the file
// and the dataset.
TaskRows read_sweep_task(const std::filesystem::path& file);

// The task file is the one of point `p` with task hash `hash` (its key, parameters and config hash,
// not a copy of another task's file), and its values are in range: correct in {-1, 0, 1}, closed in
// {0, 1}, 0 <= think_tokens <= new_tokens <= max_new_tokens, label counts in [0, new_tokens], token_offset
// rising from 0 by new_tokens, prompt ids distinct and non-empty. Throws InputError naming the file and the dataset or attribute.
void check_sweep_task(const std::filesystem::path& file, const TaskRows& t, const SweepPoint& p, const std::string& hash, int64_t max_new_tokens);

}  // namespace ts::artifacts
