#include "taxonomy/spherical_kmeans.h"

#include <stdexcept>
#include <string>
#include <vector>

#include "core/splitmix.h"

namespace ts::taxonomy {
namespace {

// k-means++ on the sphere: row indices of the k initial centres.
std::vector<int64_t> plus_plus(const at::Tensor& x, int64_t k, uint64_t seed) {
  const int64_t n = x.size(0);
  std::vector<int64_t> picks = {static_cast<int64_t>(splitmix_uniform01(seed, 0) * static_cast<double>(n))};
  at::Tensor d2 = (2 - 2 * at::mv(x, x[picks[0]])).clamp_min(0).to(at::kDouble);
  for (int64_t c = 1; c < k; ++c) {
    const at::Tensor cum = d2.cumsum(0);
    const double total = cum[n - 1].item<double>();
    int64_t pick = 0;
    if (total > 0) {
      const double r = splitmix_uniform01(seed, static_cast<uint64_t>(c)) * total;
      pick = std::min<int64_t>(at::searchsorted(cum, at::scalar_tensor(r, at::kDouble), false, true).item<int64_t>(), n - 1);
    } else {
      pick = static_cast<int64_t>(splitmix_uniform01(seed, static_cast<uint64_t>(c)) * static_cast<double>(n));  // all points coincide
    }
    picks.push_back(pick);
    d2 = at::minimum(d2, (2 - 2 * at::mv(x, x[pick])).clamp_min(0).to(at::kDouble));
  }
  return picks;
}

KMeansResult lloyd(const at::Tensor& x, int64_t k, uint64_t seed, int64_t max_iter) {
  const int64_t n = x.size(0);
  const std::vector<int64_t> init = plus_plus(x, k, seed);
  KMeansResult r;
  r.centres = x.index_select(0, at::tensor(init, at::kLong)).clone();
  r.labels = at::full({n}, -1, at::kLong);
  for (r.iterations = 0; r.iterations < max_iter; ++r.iterations) {
    const at::Tensor cos = at::mm(x, r.centres.t());
    const at::Tensor labels = cos.argmax(1);
    if (labels.equal(r.labels)) {
      r.converged = true;
      break;
    }
    r.labels = labels;
    at::Tensor sums = at::zeros_like(r.centres).index_add_(0, labels, x);
    const at::Tensor counts = at::bincount(labels, {}, k);
    for (int64_t c = 0; c < k; ++c)
      if (counts[c].item<int64_t>() == 0) {  // re-seed with the point farthest from its own centre
        const at::Tensor own = cos.gather(1, labels.unsqueeze(1)).squeeze(1);
        sums[c].copy_(x[own.argmin().item<int64_t>()]);
        ++r.reseeded;
      }
    r.centres = sums / sums.norm(2, 1, true).clamp_min(1e-12);
  }
  const at::Tensor cos = at::mm(x, r.centres.t());
  r.labels = cos.argmax(1);
  r.objective = (1 - cos.gather(1, r.labels.unsqueeze(1))).sum().item<double>();
  return r;
}

}  // namespace

KMeansResult spherical_kmeans(const at::Tensor& x_in, int64_t k, uint64_t seed, int64_t n_init, int64_t max_iter) {
  at::NoGradGuard no_grad;
  const at::Tensor x = x_in.to(at::kFloat).contiguous();
  const int64_t n = x.size(0);
  if (k < 1 || k > n)
    throw std::invalid_argument("spherical_kmeans: k = " + std::to_string(k) + " but there are " + std::to_string(n) + " vectors");
  KMeansResult best;
  for (int64_t i = 0; i < std::max<int64_t>(1, n_init); ++i) {
    KMeansResult r = lloyd(x, k, splitmix64(seed + static_cast<uint64_t>(i)), max_iter);
    if (i == 0 || r.objective < best.objective) best = std::move(r);
  }
  return best;
}

}  // namespace ts::taxonomy
