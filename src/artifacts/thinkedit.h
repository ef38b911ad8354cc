// Artifacts of ThinkEdit (docs/run-layout.md, docs/thinkedit.md), under <run.dir>/thinkedit/:
//   attn.h5, attn.safetensors  the length direction measured at resid_mid, applied at attn_out (io/vectors.h
//                              layout; names "length" = mean.long - mean.short, "mean.long", "mean.short";
//                              counts = traces in the set)
//   mlp.h5, mlp.safetensors    the same measured at resid_post, applied at mlp_out
//   heads.h5                   the §C.4 head scores (format thinksteer.thinkedit_heads):
//                              /scores f64 [layer, head], /ranking i64 [rank, 2] (layer, head) by descending
//                              score; root attributes n_short, hook, direction, direction_sha256 and the identity
//   lengths.jsonl              per probe trace: id, think_tokens, closed, set (long | short | mid | invalid)
//   thresholds.json            split, long_above, short_below, n_long, n_short, n_valid, n_traces
//   edit.json                  `thinkedit edit`'s record: the heads edited, their scores, k, source, out, dtype,
//                              the direction file and its hash, the files of the checkpoint with their hashes
// The edited checkpoint (default <run.dir>/thinkedit/edited/) holds THINKEDIT_MARKER (the same record).
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "artifacts/artifact.h"
#include "core/json.h"
#include "io/h5store.h"

namespace ts::artifacts {

inline constexpr Format THINKEDIT_HEADS{"thinksteer.thinkedit_heads", 1, "thinkedit direction"};
inline constexpr Location THINKEDIT_ATTN_H5{"thinkedit", "attn.h5"};
inline constexpr Location THINKEDIT_MLP_H5{"thinkedit", "mlp.h5"};
inline constexpr Location THINKEDIT_HEADS_H5{"thinkedit", "heads.h5"};
inline constexpr Location THINKEDIT_LENGTHS{"thinkedit", "lengths.jsonl"};
inline constexpr Location THINKEDIT_THRESHOLDS{"thinkedit", "thresholds.json"};
inline constexpr Location THINKEDIT_EDIT_JSON{"thinkedit", "edit.json"};
inline constexpr Location THINKEDIT_EDITED{"thinkedit", "edited"};
inline constexpr const char* THINKEDIT_MARKER = "thinkedit.json";  // inside the edited checkpoint
inline constexpr const char* LENGTH_DIRECTION = "length";         // the direction's name in attn.h5 / mlp.h5
inline constexpr const char* HOOK_Z = "blocks.{l}.attn.hook_z";

struct HeadScores {
  int64_t layers = 0, heads = 0;
  std::vector<double> scores;     // [layers, heads]
  std::vector<int64_t> ranking;   // [layers * heads, 2]
  int64_t n_short = 0;
  std::string direction, direction_sha256;
};

std::vector<h5::DatasetSpec> head_scores_datasets(int64_t layers, int64_t heads);
// Writes `file` (a new file; the caller commits it).
void write_head_scores(const std::filesystem::path& file, const HeadScores& s, const json& provenance);
// Reads and validates (shapes, finite scores, a ranking that is a permutation in descending score);
// InputError naming the file, dataset and `key`.
HeadScores read_head_scores(const std::filesystem::path& file, const std::string& key);

}  // namespace ts::artifacts
