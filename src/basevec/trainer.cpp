#include "basevec/trainer.h"

#include <cmath>

namespace ts::basevec {

namespace {

at::Generator seeded(uint64_t seed) {
  at::Generator g = at::detail::createCPUGenerator(seed);
  return g;
}

at::Tensor xavier(int64_t out, int64_t in, at::Generator& g) {
  const double a = std::sqrt(6.0 / static_cast<double>(in + out));
  return at::empty({out, in}, at::kFloat).uniform_(-a, a, g);
}

}  // namespace

CoefMlp CoefMlp::init(int64_t d, int64_t hidden, int64_t categories, uint64_t seed) {
  at::Generator g = seeded(seed);
  CoefMlp m;
  m.w1 = xavier(hidden, d, g);
  m.b1 = at::full({hidden}, 0.5, at::kFloat);
  m.w2 = xavier(categories, hidden, g);  // one Linear(hidden, 1) head per category, stacked
  m.b2 = at::full({categories}, 0.5, at::kFloat);
  return m;
}

at::Tensor CoefMlp::operator()(const at::Tensor& h, const at::Tensor& cat) const {
  const at::Tensor z = at::gelu(at::linear(h.to(w1.scalar_type()), w1, b1));           // [N, H]
  return at::softplus((z * w2.index_select(0, cat)).sum(-1) + b2.index_select(0, cat));  // [N]
}

std::vector<std::pair<std::string, at::Tensor>> CoefMlp::named() const { return {{"mlp.w1", w1}, {"mlp.b1", b1}, {"mlp.w2", w2}, {"mlp.b2", b2}}; }

HookFn shift_fn(ShiftRows r, at::Tensor vectors, at::Tensor bias, CoefMlp mlp) {
  return [r = std::move(r), vectors = std::move(vectors), bias = std::move(bias), mlp = std::move(mlp)](const at::Tensor& x, const HookContext&) {
    if (r.rows.numel() == 0) return x;
    const int64_t D = x.size(-1);
    const at::Tensor flat = x.reshape({-1, D});
    const at::Tensor rows = r.rows.to(x.device()), cat = r.cat.to(x.device());
    at::Tensor shift = vectors.index_select(0, cat.clamp_min(0));  // [N, D]
    if (mlp.defined()) shift = shift * mlp(flat.index_select(0, rows).detach(), cat.clamp_min(0)).unsqueeze(1);
    if (bias.defined()) shift = shift + bias;
    return flat.index_add(0, rows, shift.to(x.scalar_type())).reshape(x.sizes());
  };
}

namespace {

// The renormalised top-k teacher log-probs and the student's log-softmax over the same ids.
std::pair<at::Tensor, at::Tensor> topk_pair(const at::Tensor& logits, const at::Tensor& ids, const at::Tensor& logp, int64_t k) {
  const at::Tensor idk = ids.narrow(1, 0, k).to(at::kLong).to(logits.device());
  const at::Tensor lp = logp.narrow(1, 0, k).to(at::kFloat).to(logits.device());
  const at::Tensor teacher = lp - lp.logsumexp(1, true);
  const at::Tensor student = logits.to(at::kFloat).gather(1, idk).log_softmax(1);
  return {teacher, student};
}

}  // namespace

at::Tensor topk_ce(const at::Tensor& logits, const at::Tensor& ids, const at::Tensor& logp, int64_t k) {
  const auto [teacher, student] = topk_pair(logits, ids, logp, k);
  return -(teacher.exp() * student).sum(1);
}

at::Tensor topk_kl(const at::Tensor& logits, const at::Tensor& ids, const at::Tensor& logp, int64_t k) {
  const auto [teacher, student] = topk_pair(logits, ids, logp, k);
  return (teacher.exp() * (teacher - student)).sum(1);
}

at::Tensor full_ce(const at::Tensor& logits, const at::Tensor& ids, const at::Tensor& logp) {
  const at::Tensor student = logits.to(at::kFloat).log_softmax(1).gather(1, ids.to(at::kLong).to(logits.device()));
  return -(logp.to(at::kFloat).to(logits.device()).exp() * student).sum(1);
}

at::Tensor hard_ce(const at::Tensor& logits, const at::Tensor& target) {
  return -logits.to(at::kFloat).log_softmax(1).gather(1, target.to(at::kLong).to(logits.device()).unsqueeze(1)).squeeze(1);
}

at::Tensor same_norm_random(const at::Tensor& vectors, uint64_t seed) {
  at::Generator g = seeded(seed);
  const at::Tensor r = at::empty(vectors.sizes(), at::kFloat).normal_(0, 1, g);
  const at::Tensor unit = r / r.norm(2, 1, true).clamp_min(1e-12);
  return unit * vectors.detach().to(at::kFloat).cpu().norm(2, 1, true);
}

}  // namespace ts::basevec
