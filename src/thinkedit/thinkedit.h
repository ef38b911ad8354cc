// ThinkEdit's computations (docs/algorithms.md "ThinkEdit"; docs/thinkedit.md), apart from the forward
// passes and files of its stages (stages/thinkedit_direction.cpp, stages/thinkedit_edit.cpp):
//   §C.2  the long and short sets of probe traces by thinking length;
//   §C.4  the per-head score of the short-reasoning direction, and the top heads;
//   §C.5  the projection of that direction out of a head's o_proj columns.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/options.h"

namespace ts::thinkedit {

// Which set a probe trace is in.
enum class LengthSet { invalid, short_, mid, long_ };  // invalid: its thinking never closed
const char* length_set_name(LengthSet s);              // "invalid", "short", "mid", "long"

// The thresholds of the split: long iff length > long_above (>= with percentiles), short iff
// length < short_below (<= with percentiles). Percentiles are numpy's default (linear
// interpolation between the closest ranks) over the closed traces' lengths, and inclusive so that a
// lengths distribution with ties (the toy's) still has both ends; with tokens the comparison is
// strict, as the paper's code has it (> 1000, < 100).
struct LengthSplit {
  ThinkEditSplit split = ThinkEditSplit::tokens;
  double long_above = 0, short_below = 0;
  LengthSet of(int64_t tokens, bool closed) const;
};
LengthSplit length_split(ThinkEditSplit split, double long_value, double short_value, std::vector<int64_t> closed_lengths);
double percentile(std::vector<double> values, double p);  // numpy.percentile(values, p), values not empty

struct Head {
  int64_t layer = 0, head = 0;
  bool operator==(const Head&) const = default;
};

// §C.4: s[l, h] = < W_O[:, h E:(h+1) E] zbar[l, h], -u_l >, u_l = direction[l] / |direction[l]|, with
// zbar the mean over short traces of each trace's window mean of attn.hook_z ([L, H, E]); o_proj[l] is
// [D, H E]; direction [L, D]. fp64 result [L, H]; a layer whose direction is zero scores 0.
at::Tensor head_scores(const at::Tensor& zbar, const std::vector<at::Tensor>& o_proj, const at::Tensor& direction);
// Every head by descending score (ties: lower layer, then lower head first).
std::vector<Head> head_ranking(const at::Tensor& scores);

// §C.5 on one layer's o_proj weight [D, H E] (returned as a new fp32 tensor): for each head h listed,
// W[:, h E:(h+1) E] <- W - weight v (v^T W), v = direction / |direction| (fp32 arithmetic, as the paper's
// code does it). Columns of other heads are returned unchanged.
at::Tensor project_out_heads(const at::Tensor& o_proj, const at::Tensor& direction, const std::vector<int64_t>& heads, int64_t d_head, double weight);

}  // namespace ts::thinkedit
