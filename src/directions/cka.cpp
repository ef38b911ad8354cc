#include "directions/cka.h"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>
#include <stdexcept>

namespace ts::directions {

void LinearCkaSums::add(const at::Tensor& x, const at::Tensor& y) {
  if (x.dim() != 2 || y.dim() != 2 || x.size(0) != y.size(0))
    throw std::invalid_argument("linear CKA: x and y must be [n, p] and [n, q] with the same rows (inputs)");
  const at::Tensor a = x.to(at::kDouble), b = y.to(at::kDouble);
  if (!sx.defined()) {
    sx = at::zeros({a.size(1)}, a.options());
    sy = at::zeros({b.size(1)}, b.options());
    xx = at::zeros({a.size(1), a.size(1)}, a.options());
    yy = at::zeros({b.size(1), b.size(1)}, b.options());
    yx = at::zeros({b.size(1), a.size(1)}, a.options());
  }
  n += a.size(0);
  sx += a.sum(0);
  sy += b.sum(0);
  xx += at::matmul(a.t(), a);
  yy += at::matmul(b.t(), b);
  yx += at::matmul(b.t(), a);
}

double LinearCkaSums::value() const {
  if (n < 2) throw std::invalid_argument("linear CKA needs at least 2 inputs");
  const double inv = 1.0 / static_cast<double>(n);
  const at::Tensor cxx = xx - at::outer(sx, sx) * inv, cyy = yy - at::outer(sy, sy) * inv, cyx = yx - at::outer(sy, sx) * inv;
  const double num = cyx.pow(2).sum().item<double>();
  const double den = std::sqrt(cxx.pow(2).sum().item<double>()) * std::sqrt(cyy.pow(2).sum().item<double>());
  return den > 0 ? num / den : std::numeric_limits<double>::quiet_NaN();
}

double linear_cka(const at::Tensor& x, const at::Tensor& y) {
  LinearCkaSums s;
  s.add(x, y);
  return s.value();
}

namespace {

// H K H for the Gaussian kernel of x with sigma = scale * median pairwise distance.
at::Tensor centred_rbf(const at::Tensor& x, double scale) {
  const at::Tensor a = x.to(at::kDouble);
  const at::Tensor d2 = at::cdist(a, a).pow(2);
  const int64_t n = a.size(0);
  const at::Tensor upper = d2.masked_select(at::ones({n, n}, at::kBool).triu(1));
  const double median = std::sqrt(upper.median().item<double>());
  const double sigma = scale * median;
  if (!(sigma > 0)) throw std::invalid_argument("RBF CKA: every input has the same representation (median distance 0)");
  const at::Tensor k = at::exp(-d2 / (2 * sigma * sigma));
  const at::Tensor h = at::eye(n, at::kDouble) - 1.0 / static_cast<double>(n);
  return at::matmul(at::matmul(h, k), h);
}

}  // namespace

at::Tensor unit_centred_gram(const at::Tensor& x, bool rbf, double sigma_scale) {
  if (x.dim() != 2 || x.size(0) < 3) throw std::invalid_argument("CKA: a representation must be [n, p] with n >= 3 rows");
  at::Tensor k;
  if (rbf) {
    try {
      k = centred_rbf(x, sigma_scale);
    } catch (const std::invalid_argument&) {  // every row the same: no variance, as for the linear kernel
      return at::full({x.size(0), x.size(0)}, std::numeric_limits<double>::quiet_NaN(), at::kDouble);
    }
  } else {
    const at::Tensor a = x.to(at::kDouble);
    const at::Tensor c = a - a.mean(0, true);
    k = at::matmul(c, c.t());
  }
  const double norm = k.norm().item<double>();
  return norm > 0 ? k / norm : at::full_like(k, std::numeric_limits<double>::quiet_NaN());
}

double rbf_cka(const at::Tensor& x, const at::Tensor& y, double sigma_scale) {
  if (x.dim() != 2 || y.dim() != 2 || x.size(0) != y.size(0) || x.size(0) < 3)
    throw std::invalid_argument("RBF CKA: x and y must be [n, p] and [n, q] with the same n >= 3 rows");
  const at::Tensor k = centred_rbf(x, sigma_scale), l = centred_rbf(y, sigma_scale);
  const double kl = (k * l).sum().item<double>(), kk = (k * k).sum().item<double>(), ll = (l * l).sum().item<double>();
  return kl / std::sqrt(kk * ll);
}

}  // namespace ts::directions
