#include "taxonomy/topk_sae.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>

#include "core/splitmix.h"

namespace ts::taxonomy {
namespace {

at::Tensor unit_rows(const at::Tensor& w) { return w / (w.norm(2, 1, true) + 1e-5); }

std::vector<std::pair<std::string, at::Tensor>> named(const TopkSae& s) {
  return {{"w_enc", s.w_enc}, {"b_enc", s.b_enc}, {"w_dec", s.w_dec}, {"b_dec", s.b_dec}};
}

}  // namespace

at::Tensor TopkSae::encode(const at::Tensor& x) const { return at::addmm(b_enc, x - b_dec, w_enc.t()); }

at::Tensor TopkSae::assign(const at::Tensor& x) const {
  at::NoGradGuard no_grad;
  return encode(x).argmax(1);
}

std::vector<int64_t> TopkSae::cluster_sizes(const at::Tensor& x) const {
  const at::Tensor counts = at::bincount(assign(x), {}, n_latents()).to(at::kLong).contiguous();
  return {counts.data_ptr<int64_t>(), counts.data_ptr<int64_t>() + counts.numel()};
}

TopkSae TopkSae::clone() const {
  at::NoGradGuard no_grad;
  return TopkSae{w_enc.detach().clone(), b_enc.detach().clone(), w_dec.detach().clone(), b_dec.detach().clone(), top_k};
}

TopkSae topk_sae_init(int64_t d_in, int64_t n_latents, int64_t top_k, uint64_t seed) {
  if (d_in < 1 || n_latents < 1 || top_k < 1 || top_k > n_latents)
    throw std::invalid_argument("topk_sae_init: need d_in >= 1 and 1 <= top_k <= n_latents (got d_in " + std::to_string(d_in) +
                                ", n_latents " + std::to_string(n_latents) + ", top_k " + std::to_string(top_k) + ")");
  const double bound = 1.0 / std::sqrt(static_cast<double>(d_in));
  std::vector<float> w(static_cast<size_t>(n_latents * d_in));
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>((2 * splitmix_uniform01(seed, i) - 1) * bound);
  at::Tensor w_enc = at::from_blob(w.data(), {n_latents, d_in}, at::kFloat).clone();
  return TopkSae{w_enc, at::zeros({n_latents}, at::kFloat), unit_rows(w_enc), at::zeros({d_in}, at::kFloat), top_k};
}

double topk_sae_default_lr(int64_t n_latents) { return 2e-4 / std::sqrt(static_cast<double>(n_latents) / 16384.0); }

std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  const uint64_t stream = splitmix64(splitmix64(seed) ^ static_cast<uint64_t>(epoch));
  for (int64_t j = n - 1; j > 0; --j) {  // Fisher-Yates
    const auto r = static_cast<int64_t>((static_cast<unsigned __int128>(splitmix64(stream + static_cast<uint64_t>(j))) *
                                         static_cast<unsigned __int128>(j + 1)) >> 64);
    std::swap(order[static_cast<size_t>(j)], order[static_cast<size_t>(r)]);
  }
  return order;
}

SaeTrainer::SaeTrainer(TopkSae init, int64_t n_rows, SaeTrainOptions opt, RowFetcher rows, int rank, int world, AllreduceSum sum)
    : sae_(std::move(init)), adam_({}), n_(n_rows), opt_(opt), rows_(std::move(rows)), rank_(rank), world_(world), sum_(std::move(sum)),
      lr_(opt.lr > 0 ? opt.lr : topk_sae_default_lr(sae_.n_latents())) {
  if (opt_.batch_size < 1) throw std::invalid_argument("SaeTrainer: the batch size must be positive");
  if (n_ < sae_.n_latents())  // K clusters of fewer than K sentences: some cluster would be empty by construction
    throw std::invalid_argument("SaeTrainer: K = " + std::to_string(sae_.n_latents()) + " latents but only " + std::to_string(n_) +
                                " vectors to cluster");
  for (at::Tensor* t : {&sae_.w_enc, &sae_.b_enc, &sae_.w_dec, &sae_.b_dec}) *t = t->detach().clone();
  adam_ = AdamW(named(sae_));
  best_ = sae_.clone();
}

double SaeTrainer::step(std::span<const int64_t> batch) {
  const auto b = static_cast<int64_t>(batch.size());
  const int64_t d = sae_.d_in();
  std::vector<int64_t> mine(batch.begin() + b * rank_ / world_, batch.begin() + b * (rank_ + 1) / world_);
  std::sort(mine.begin(), mine.end());
  const at::Tensor x = mine.empty() ? at::zeros({0, d}, at::kFloat) : rows_(mine);

  // The minibatch mean over all replicas: one allreduce of (Σ x, count).
  std::vector<float> stats(static_cast<size_t>(d + 1), 0.0f);
  at::from_blob(stats.data(), {d}, at::kFloat).copy_(x.sum(0));
  stats[static_cast<size_t>(d)] = static_cast<float>(mine.size());
  if (sum_) sum_(stats);
  const at::Tensor mean = at::from_blob(stats.data(), {d}, at::kFloat).clone() / stats[static_cast<size_t>(d)];

  // Forward and backward of this replica's share of the numerator Σ‖x̂ − x‖², by hand (the chain rule
  // below; a handful of matmuls, no autograd tape); one allreduce of the gradients, the numerator and
  // the denominator, then the gradients divided by the global denominator.
  at::NoGradGuard no_grad;
  const at::Tensor xc = x - sae_.b_dec;
  const at::Tensor a = at::addmm(sae_.b_enc, xc, sae_.w_enc.t());
  auto [values, indices] = at::topk(a, sae_.top_k, 1);
  const at::Tensor sparse = at::zeros_like(a).scatter_(1, indices, values);
  const at::Tensor r = at::addmm(sae_.b_dec, sparse, sae_.w_dec) - x;
  const at::Tensor g_xhat = 2 * r;                                                  // ∂num/∂x̂
  const at::Tensor g_a = at::zeros_like(a).scatter_(1, indices, at::mm(g_xhat, sae_.w_dec.t()).gather(1, indices));
  const at::Tensor g_b_enc = g_a.sum(0);
  const at::Tensor grads[] = {at::mm(g_a.t(), xc), g_b_enc, at::mm(sparse.t(), g_xhat),
                              g_xhat.sum(0) - at::mv(sae_.w_enc.t(), g_b_enc)};  // w_enc, b_enc, w_dec, b_dec
  const double extras[] = {r.pow(2).sum().item<double>(), (x - mean).pow(2).sum().item<double>()};
  double num = extras[0], den = extras[1];
  if (sum_) {  // replicas: one flat buffer through the allreduce
    for (size_t i = 0; i < adam_.params.size(); ++i) adam_.params[i].second.mutable_grad() = grads[i];
    std::vector<float> flat = adam_.flatten_grads(extras);
    sum_(flat);
    num = flat[flat.size() - 2];
    den = std::max(static_cast<double>(flat[flat.size() - 1]), 1e-30);
    adam_.unflatten_grads(std::span<const float>(flat).first(flat.size() - 2), den);
  } else {
    den = std::max(den, 1e-30);
    for (size_t i = 0; i < adam_.params.size(); ++i) adam_.params[i].second.mutable_grad() = grads[i].div_(den);
  }
  const double loss = num / den;
  if (!std::isfinite(loss))
    throw std::runtime_error("SaeTrainer: the loss of step " + std::to_string(step_) + " (epoch " + std::to_string(epoch_) +
                             ") is not finite: the vectors hold NaN or Inf");
  adam_.step(AdamWOptions{}, step_, lr_);
  sae_.w_dec.copy_(unit_rows(sae_.w_dec));
  ++step_;
  return loss;
}

SaeEpoch SaeTrainer::run_epoch() {
  const std::vector<int64_t> order = epoch_order(n_, opt_.seed, epoch_);
  double total = 0;
  int64_t n_steps = 0;
  for (int64_t begin = 0; begin < n_; begin += opt_.batch_size, ++n_steps)
    total += step(std::span<const int64_t>(order).subspan(static_cast<size_t>(begin), static_cast<size_t>(std::min(opt_.batch_size, n_ - begin))));
  const double loss = total / static_cast<double>(n_steps);
  losses_.push_back(loss);
  if (best_epoch_ < 0 || loss < best_loss_) {
    best_loss_ = loss;
    best_ = sae_.clone();
    best_epoch_ = epoch_;
    bad_epochs_ = 0;
  } else {
    ++bad_epochs_;
  }
  ++epoch_;
  return SaeEpoch{epoch_ - 1, loss, best_loss_, bad_epochs_};
}

std::vector<std::pair<std::string, at::Tensor>> SaeTrainer::state_tensors() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (size_t i = 0; i < adam_.params.size(); ++i) {
    out.emplace_back("param/" + adam_.params[i].first, adam_.params[i].second.detach());
    out.emplace_back("adam_m/" + adam_.params[i].first, adam_.m[i]);
    out.emplace_back("adam_v/" + adam_.params[i].first, adam_.v[i]);
  }
  for (const auto& [name, t] : named(best_)) out.emplace_back("best/" + name, t);
  const std::vector<int64_t> counters = {epoch_, step_, bad_epochs_, best_epoch_};
  out.emplace_back("counters", at::from_blob(const_cast<int64_t*>(counters.data()), {4}, at::kLong).clone());
  std::vector<double> losses = losses_;
  losses.push_back(best_loss_);  // the last entry is the best loss
  out.emplace_back("losses", at::from_blob(losses.data(), {static_cast<int64_t>(losses.size())}, at::kDouble).clone());
  return out;
}

void SaeTrainer::load_state_tensors(const std::function<at::Tensor(const std::string&)>& get) {
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < adam_.params.size(); ++i) {
    adam_.params[i].second.copy_(get("param/" + adam_.params[i].first));
    adam_.m[i].copy_(get("adam_m/" + adam_.params[i].first));
    adam_.v[i].copy_(get("adam_v/" + adam_.params[i].first));
  }
  best_ = TopkSae{get("best/w_enc").clone(), get("best/b_enc").clone(), get("best/w_dec").clone(), get("best/b_dec").clone(), sae_.top_k};
  const at::Tensor c = get("counters").to(at::kLong).contiguous();
  epoch_ = c[0].item<int64_t>();
  step_ = c[1].item<int64_t>();
  bad_epochs_ = c[2].item<int64_t>();
  best_epoch_ = c[3].item<int64_t>();
  const at::Tensor l = get("losses").to(at::kDouble).contiguous();
  losses_.assign(l.data_ptr<double>(), l.data_ptr<double>() + l.numel() - 1);
  best_loss_ = l[l.numel() - 1].item<double>();
}

}  // namespace ts::taxonomy
