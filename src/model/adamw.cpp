#include "model/adamw.h"

#include <cmath>

namespace ts {

AdamW::AdamW(std::vector<std::pair<std::string, at::Tensor>> p) : params(std::move(p)) {
  for (const auto& [name, t] : params) {
    m.push_back(at::zeros_like(t));
    v.push_back(at::zeros_like(t));
    decay.push_back(t.dim() >= 2);
  }
}

void AdamW::step(const AdamWOptions& o, int64_t step, double lr) {
  at::NoGradGuard no_grad;
  const double bc1 = 1 - std::pow(o.beta1, static_cast<double>(step + 1)), bc2 = 1 - std::pow(o.beta2, static_cast<double>(step + 1));
  for (size_t i = 0; i < params.size(); ++i) {
    at::Tensor p = params[i].second;
    const at::Tensor& g = p.grad();
    m[i].mul_(o.beta1).add_(g, 1 - o.beta1);
    v[i].mul_(o.beta2).addcmul_(g, g, 1 - o.beta2);
    if (decay[i] && o.weight_decay > 0) p.mul_(1 - lr * o.weight_decay);
    p.addcdiv_(m[i] / bc1, (v[i] / bc2).sqrt_().add_(o.eps), -lr);
  }
}

void AdamW::zero_grad() {
  for (auto& [name, t] : params)
    if (t.grad().defined()) t.mutable_grad().zero_();
}

int64_t AdamW::n_parameters() const {
  int64_t n = 0;
  for (const auto& [name, t] : params) n += t.numel();
  return n;
}

std::vector<float> AdamW::flatten_grads(std::span<const double> extras) const {
  const int64_t n = n_parameters();
  std::vector<float> flat(static_cast<size_t>(n) + extras.size(), 0.0f);
  int64_t off = 0;
  for (const auto& [name, t] : params) {
    if (t.grad().defined())
      at::from_blob(flat.data() + off, {t.numel()}, at::TensorOptions().dtype(at::kFloat)).copy_(t.grad().reshape({-1}));
    off += t.numel();
  }
  for (size_t i = 0; i < extras.size(); ++i) flat[static_cast<size_t>(n) + i] = static_cast<float>(extras[i]);
  return flat;
}

double AdamW::unflatten_grads(std::span<const float> flat, double divisor) {
  int64_t off = 0;
  double sq = 0;
  for (auto& [name, t] : params) {
    at::Tensor g = at::from_blob(const_cast<float*>(flat.data()) + off, t.sizes(), at::TensorOptions().dtype(at::kFloat)).div(divisor);
    sq += g.pow(2).sum().item<double>();
    if (!t.grad().defined()) t.mutable_grad() = at::zeros_like(t);
    t.mutable_grad().copy_(g);
    off += t.numel();
  }
  return std::sqrt(sq);
}

}  // namespace ts
