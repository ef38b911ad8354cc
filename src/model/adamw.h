// AdamW (Loshchilov & Hutter) with bias correction, as torch.optim.AdamW computes it; with
// weight_decay = 0 it is torch.optim.Adam. Decoupled decay applies to matrices only. Shared by the
// trainers (stages/toy_train.cpp, taxonomy/topk_sae.cpp), with the flat buffer they allreduce the
// gradients through in data-parallel training.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace ts {

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};

struct AdamW {
  std::vector<std::pair<std::string, at::Tensor>> params;  // name, parameter (requires grad)
  std::vector<at::Tensor> m, v;                             // first and second moments
  std::vector<bool> decay;                                  // matrices decay, vectors do not

  explicit AdamW(std::vector<std::pair<std::string, at::Tensor>> p);
  // Update number `step` (0-based: bias corrections use step + 1) with learning rate `lr`.
  void step(const AdamWOptions& o, int64_t step, double lr);
  void zero_grad();
  // The gradients (zeros where undefined) in one fp32 buffer, followed by `extras` (e.g. a loss sum
  // and a count that the same allreduce should add up).
  std::vector<float> flatten_grads(std::span<const double> extras = {}) const;
  // Writes the gradients back from a (summed) flat buffer, divided by `divisor`; returns their global
  // L2 norm.
  double unflatten_grads(std::span<const float> flat, double divisor);
  int64_t n_parameters() const;
};

}  // namespace ts
