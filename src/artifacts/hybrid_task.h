// Artifact `hybrid task` (docs/run-layout.md): one row of a hybrid sweep, <run.dir>/hybrid/tasks/<key>.h5
// (format thinksteer.hybrid_task) and its `.done` marker. A row is the base model alone, the thinking
// model alone, or the hybrid (hybrid/lockstep.h) with one coefficient rule, ablation, layer and seed, on
// one dataset; per prompt (P, in the dataset's order):
//   /prompts/{id, answer, reference, text} str   text: the generated text (empty unless hybrid.save_text)
//   /prompts/correct [P] i64    1 right, 0 wrong, -1 no reference answer (steer/answer.h's checker)
//   /prompts/closed [P] i64     the thinking part ended (</think>, or the answer prefix forced)
//   /prompts/new_tokens, think_tokens [P] i64
//   /prompts/steered, disagree, hits [P] i64   steered steps, steps where y_B != y_T in the thinking part,
//                               steered steps whose token is y_T (0 for base / thinking rows)
//   /prompts/category_counts [P, C] i64   steered steps per category
//   /tokens/offsets [P+1] i64   prompt p's tokens are [offsets[p], offsets[p+1]) of:
//   /tokens/{id, kind, category, base, thinking} [N] i32, /tokens/coef [N] f32   per emitted token:
//                               TokenKind (hybrid/lockstep.h; base and thinking rows: 4), category (-1),
//                               coefficient, y_B and y_T (-1 where not computed). N = 0 unless save_text.
//   root attributes: task, key, point (JSON), role, rule, ablation, dataset, layer, seed, randpos_fraction,
//   categories (C), vectors_file, vectors_hash, metrics (JSON), and the artifact identity.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "artifacts/artifact.h"
#include "artifacts/sweep_manifest.h"
#include "core/json.h"

namespace ts::artifacts {

inline constexpr Format HYBRID_TASK{"thinksteer.hybrid_task", 1, "sweep run"};
inline constexpr SweepLayout HYBRID_SWEEP{"hybrid"};

struct HybridTask {
  std::string key, point, role, rule, ablation, dataset, vectors_file, vectors_hash, config_sha256;
  int64_t task = 0, layer = -1, seed = 0, categories = 0;
  double randpos_fraction = 0;
  std::vector<std::string> ids, answers, references, texts;
  std::vector<int64_t> correct, closed, new_tokens, think_tokens, steered, disagree, hits;
  std::vector<int64_t> category_counts;  // [P, C]
  std::vector<int64_t> token_offsets;    // [P + 1]
  std::vector<int32_t> token_id, token_kind, token_category, token_base, token_thinking;
  std::vector<float> token_coef;
  json metrics = json::object();
  int64_t prompts() const { return static_cast<int64_t>(ids.size()); }
};

std::vector<h5::DatasetSpec> hybrid_task_datasets(const HybridTask& t);
void write_hybrid_task(const std::filesystem::path& file, const HybridTask& t, const json& provenance);
// Checked for identity, lengths and ranges. Throws InputError naming the file and the dataset.
HybridTask read_hybrid_task(const std::filesystem::path& file);

}  // namespace ts::artifacts
