#include "thinkedit/thinkedit.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

namespace ts::thinkedit {

const char* length_set_name(LengthSet s) {
  switch (s) {
    case LengthSet::invalid: return "invalid";
    case LengthSet::short_: return "short";
    case LengthSet::mid: return "mid";
    case LengthSet::long_: return "long";
  }
  return "?";
}

LengthSet LengthSplit::of(int64_t tokens, bool closed) const {
  if (!closed) return LengthSet::invalid;
  const double t = static_cast<double>(tokens);
  const bool inclusive = split == ThinkEditSplit::percentile;
  if (inclusive ? t >= long_above : t > long_above) return LengthSet::long_;
  if (inclusive ? t <= short_below : t < short_below) return LengthSet::short_;
  return LengthSet::mid;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) throw std::invalid_argument("percentile of no values");
  std::sort(v.begin(), v.end());
  const double pos = p / 100.0 * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

LengthSplit length_split(ThinkEditSplit split, double long_value, double short_value, std::vector<int64_t> closed_lengths) {
  LengthSplit s;
  s.split = split;
  if (split == ThinkEditSplit::tokens || closed_lengths.empty()) {
    s.long_above = long_value;
    s.short_below = short_value;
    return s;
  }
  const std::vector<double> v(closed_lengths.begin(), closed_lengths.end());
  s.long_above = percentile(v, long_value);
  s.short_below = percentile(v, short_value);
  return s;
}

at::Tensor head_scores(const at::Tensor& zbar, const std::vector<at::Tensor>& o_proj, const at::Tensor& direction) {
  const int64_t L = zbar.size(0), H = zbar.size(1), E = zbar.size(2);
  if (static_cast<int64_t>(o_proj.size()) != L || direction.size(0) != L) throw std::invalid_argument("head_scores: layer counts differ");
  at::Tensor scores = at::zeros({L, H}, at::kDouble);
  for (int64_t l = 0; l < L; ++l) {
    const at::Tensor d = direction[l].to(at::kDouble);
    const double norm = d.norm().item<double>();
    if (norm == 0) continue;
    const at::Tensor u = d / norm;                                          // [D]
    const at::Tensor proj = -at::matmul(u, o_proj[static_cast<size_t>(l)].to(at::kDouble));  // -u^T W_O: [H E]
    scores[l] = (proj.view({H, E}) * zbar[l].to(at::kDouble)).sum(1);      // < W_O,h zbar_h, -u >
  }
  return scores;
}

std::vector<Head> head_ranking(const at::Tensor& scores) {
  const at::Tensor s = scores.to(at::kDouble).contiguous();
  const int64_t L = s.size(0), H = s.size(1);
  const double* p = s.data_ptr<double>();
  std::vector<Head> heads;
  for (int64_t l = 0; l < L; ++l)
    for (int64_t h = 0; h < H; ++h) heads.push_back({l, h});
  std::stable_sort(heads.begin(), heads.end(), [&](const Head& a, const Head& b) { return p[a.layer * H + a.head] > p[b.layer * H + b.head]; });
  return heads;
}

at::Tensor project_out_heads(const at::Tensor& o_proj, const at::Tensor& direction, const std::vector<int64_t>& heads, int64_t d_head, double weight) {
  at::Tensor w = o_proj.to(at::kFloat).clone();
  const at::Tensor d = direction.to(at::kFloat);
  const at::Tensor v = d / d.norm();  // [D]
  for (int64_t h : heads) {
    at::Tensor slice = w.narrow(1, h * d_head, d_head);                   // [D, E]
    const at::Tensor vw = at::matmul(v, slice);                           // v^T W: [E]
    slice.sub_(at::outer(v, vw) * weight);
  }
  return w;
}

}  // namespace ts::thinkedit
