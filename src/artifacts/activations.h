// Artifact `activations` (docs/run-layout.md): what `collect` writes, <run.dir>/collect/activations.h5
// (format thinksteer.activations): /activations/<hook name> [rows, d_model] (attn.hook_z: [rows,
// n_head, d_head]) in output.dtype, with /activations/{sequence, token_begin, token_end[, label]}
// per row, /sequences/* per sequence and /tokens/* per token; written collectively by every rank.
#pragma once
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "artifacts/artifact.h"
#include "core/options.h"
#include "model/hooks.h"
#include "model/model_config.h"

namespace ts::artifacts {

inline constexpr Format ACTIVATIONS{"thinksteer.activations", 1, "collect"};
inline constexpr Location ACTIVATIONS_H5{"collect", "activations.h5"};
inline constexpr Location ACTIVATIONS_PROGRESS{"collect", "activations.h5.progress.json"};

// The dataset of one hook for `n_rows` rows stored as `dtype`, at `positions` (collect.positions).
h5::DatasetSpec activations_dataset(const HookPoint& h, const ModelConfig& c, int64_t n_rows, h5::DType dtype, CollectPositions positions);

// What the activation rows index: per sequence its tokens (ids and code-point ranges of its text) and
// its rows (one per stored position or span, in sequence order).
struct ActivationIndex {
  struct Row {
    int64_t token_begin = 0, token_end = 0;  // [begin, end): one token, or a span's tokens
    std::string label;                       // the span's label (positions = spans)
  };
  struct Sequence {
    std::string id, text;
    std::vector<int32_t> ids;
    std::vector<std::pair<int64_t, int64_t>> offsets;  // code points of text, per token
    int64_t n_prompt = 0;
    std::vector<Row> rows;
  };
  std::vector<Sequence> sequences;
  CollectPositions positions = CollectPositions::all;
  CollectSource source = CollectSource::prompts;
};

// Phase 2 of the file (rank 0, serial): /sequences/*, /tokens/*, /activations/{sequence, token_begin,
// token_end[, label]} and the attributes of /activations.
void write_activation_index(h5::SerialFile& f, const ActivationIndex& index);

// The index of an activations file, checked: identity, the per-sequence offsets tiling /tokens and
// the rows, every row's token range inside its sequence. Throws InputError naming the file and dataset.
ActivationIndex read_activation_index(const std::filesystem::path& file);
// The rows of one hook's dataset ([rows, d_model] or [rows, head, d_head]) as float, with its shape;
// bfloat16 and float16 decoded. Throws InputError when the hook is absent or has another row count.
// The hook datasets of an activations file, ordered by layer (ln_final last), then by their place in the
// block (resid_pre, attn_out, resid_mid, mlp_out, resid_post, attn.hook_z as HookSite orders them).
struct ActivationHook {
  std::string name;      // e.g. "blocks.3.hook_resid_post" (the dataset /activations/<name>)
  int64_t layer = -1;    // -1 for ln_final.hook_normalized
  int64_t width = 0;     // values per row (d_model, or n_head * d_head for attn.hook_z)
};
std::vector<ActivationHook> activation_hooks(const std::filesystem::path& file, const std::string& key);
std::vector<float> read_activation_rows(const std::filesystem::path& file, const std::string& hook, std::vector<int64_t>& shape);

}  // namespace ts::artifacts
