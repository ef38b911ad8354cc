// The pieces of steering-vector training on a frozen base model (docs/algorithms.md §B.8, §B.10):
// the shift added at the steering hook, the coefficient MLP, and the losses against the thinking
// model. The stage that runs the training is stages/basevec_task.cpp.
//
// Correction vectors (§B.10): V [C, d], one per category; at a collected disagreement position p of
// category c the base model's residual after block L becomes x_p + α(h_p, c) · V[c], where α = 1
// without the MLP and, with it, α(h, c) = softplus(w2[c] · gelu(W1 h + b1) + b2[c]) on the base
// model's own residual h = x_p before the shift (detached: the model is frozen). Linear vectors
// (§B.8): x_t + bias + v at every target token t.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "model/hooks.h"

namespace ts::basevec {

struct CoefMlp {
  at::Tensor w1, b1, w2, b2;  // [H, d], [H], [C, H], [C]
  bool defined() const { return w1.defined(); }
  // Xavier-uniform weights, biases 0.5 (§B.10 `CatCoefMLP`), from a seeded generator.
  static CoefMlp init(int64_t d, int64_t hidden, int64_t categories, uint64_t seed);
  // α [N] >= 0 for residuals h [N, d] and categories cat [N] (int64).
  at::Tensor operator()(const at::Tensor& h, const at::Tensor& cat) const;
  std::vector<std::pair<std::string, at::Tensor>> named() const;
};

// Rows to shift in a [B, T, D] activation: flat row b * T + t, and per row its category (index into
// the vectors) or -1 for "the vector itself" (linear).
struct ShiftRows {
  at::Tensor rows;  // [N] int64
  at::Tensor cat;   // [N] int64
};

// An intervention for HookSet::add_fn: x + (α ·) vectors[cat] (+ bias) at the given rows. `vectors`
// [C, d]; `bias` [d] or undefined; `mlp` optional. The returned function holds the tensors.
HookFn shift_fn(ShiftRows rows, at::Tensor vectors, at::Tensor bias, CoefMlp mlp);

// Losses per row of student logits [N, V] (fp32 math):
//   topk_ce  : the thinking model's top-k (of the cached top-K, ids [N, K] and log-probs [N, K])
//              renormalised, against the student's softmax over the same k ids: −Σ p log q
//   topk_kl  : the same as a KL, Σ p (log p − log q) (0 when they agree; what evaluations report)
//   full_ce  : −Σ_{j<K} p_T,j log softmax(student)_{id_j} over the cached top-K
//   hard_ce  : −log softmax(student)_{target}
at::Tensor topk_ce(const at::Tensor& logits, const at::Tensor& ids, const at::Tensor& logp, int64_t k);
at::Tensor topk_kl(const at::Tensor& logits, const at::Tensor& ids, const at::Tensor& logp, int64_t k);
at::Tensor full_ce(const at::Tensor& logits, const at::Tensor& ids, const at::Tensor& logp);
at::Tensor hard_ce(const at::Tensor& logits, const at::Tensor& target);

// Rows of the same norms as `vectors` [C, d] in seeded random directions (zero rows stay zero).
at::Tensor same_norm_random(const at::Tensor& vectors, uint64_t seed);

}  // namespace ts::basevec
