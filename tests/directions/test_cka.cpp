// CKA (directions/cka.h) against the sample-space definitions written out with explicit centring matrices
// and loops (fp64; tolerance 1e-10 absolute on values in [0, 1]), and its invariances.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "directions/cka.h"

using namespace ts::directions;

namespace {

// <H K H, H L H> / (|H K H| |H L H|) with K = X X^T, L = Y Y^T: the definition, in sample space.
double linear_reference(const at::Tensor& x, const at::Tensor& y) {
  const int64_t n = x.size(0);
  const at::Tensor h = at::eye(n, at::kDouble) - 1.0 / static_cast<double>(n);
  const at::Tensor k = h.mm(x.mm(x.t())).mm(h), l = h.mm(y.mm(y.t())).mm(h);
  return (k * l).sum().item<double>() / (k.norm().item<double>() * l.norm().item<double>());
}

// The RBF kernel with loops, sigma = the median of the pairwise distances (i < j), then the same alignment.
at::Tensor rbf_reference_kernel(const at::Tensor& x) {
  const int64_t n = x.size(0);
  std::vector<double> dist;
  at::Tensor d2 = at::zeros({n, n}, at::kDouble);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      const double v = (x[i] - x[j]).pow(2).sum().item<double>();
      d2[i][j] = v;
      if (i < j) dist.push_back(std::sqrt(v));
    }
  std::sort(dist.begin(), dist.end());
  const double median = dist[(dist.size() - 1) / 2];  // torch's median: the lower middle
  at::Tensor k = at::exp(-d2 / (2 * median * median));
  const at::Tensor h = at::eye(n, at::kDouble) - 1.0 / static_cast<double>(n);
  return h.mm(k).mm(h);
}

double rbf_reference(const at::Tensor& x, const at::Tensor& y) {
  const at::Tensor k = rbf_reference_kernel(x), l = rbf_reference_kernel(y);
  return (k * l).sum().item<double>() / (k.norm().item<double>() * l.norm().item<double>());
}

at::Tensor orthogonal(int64_t d) { return std::get<0>(at::linalg_qr(at::randn({d, d}, at::kDouble))); }

TEST(LinearCka, EqualsTheSampleSpaceDefinitionAndAccumulatesExactly) {
  at::manual_seed(1);
  const at::Tensor x = at::randn({40, 6}, at::kDouble), y = at::randn({40, 3}, at::kDouble) + x.narrow(1, 0, 3) * 0.5;
  const double want = linear_reference(x, y);
  EXPECT_NEAR(linear_cka(x, y), want, 1e-10);
  EXPECT_GT(want, 0.05);
  LinearCkaSums s;  // in batches, far from the origin: the centring from sums stays exact in fp64
  for (int64_t b = 0; b < 40; b += 15) s.add(x.narrow(0, b, std::min<int64_t>(15, 40 - b)) + 1000.0, y.narrow(0, b, std::min<int64_t>(15, 40 - b)) - 500.0);
  EXPECT_NEAR(s.value(), want, 1e-9);
  EXPECT_NEAR(linear_cka(x, x), 1.0, 1e-12);
}

TEST(LinearCka, InvariantToRotationAndScaling) {
  at::manual_seed(2);
  const at::Tensor x = at::randn({30, 5}, at::kDouble), y = at::randn({30, 4}, at::kDouble) + x.narrow(1, 0, 4);
  EXPECT_NEAR(linear_cka(x.mm(orthogonal(5)) * 7.0, y * 0.1), linear_cka(x, y), 1e-10);
}

TEST(RbfCka, EqualsTheLoopDefinitionAndIsInvariant) {
  at::manual_seed(3);
  const at::Tensor x = at::randn({13, 4}, at::kDouble), y = at::tanh(x.mm(at::randn({4, 3}, at::kDouble)));
  const double want = rbf_reference(x, y);
  EXPECT_NEAR(rbf_cka(x, y), want, 1e-10);
  EXPECT_NEAR(rbf_cka(x, x), 1.0, 1e-12);
  EXPECT_NEAR(rbf_cka(x.mm(orthogonal(4)) * 3.0, y), want, 1e-10);
}

// The pairwise form the CKA stage uses (one unit centred Gram matrix per representation) gives the same values.
TEST(UnitCentredGram, GivesTheSameCkaAsTheDefinitions) {
  at::manual_seed(4);
  const at::Tensor x = at::randn({17, 6}, at::kDouble), y = at::tanh(x.mm(at::randn({6, 3}, at::kDouble))) + 100.0;
  EXPECT_NEAR((unit_centred_gram(x, false) * unit_centred_gram(y, false)).sum().item<double>(), linear_reference(x, y), 1e-10);
  EXPECT_NEAR((unit_centred_gram(x, true) * unit_centred_gram(y, true)).sum().item<double>(), rbf_reference(x, y), 1e-10);
  EXPECT_TRUE(std::isnan(unit_centred_gram(at::ones({5, 2}), false)[0][0].item<double>()));
  EXPECT_TRUE(std::isnan(unit_centred_gram(at::ones({5, 2}), true)[0][0].item<double>()));
}

TEST(Cka, RefusesMismatchedOrDegenerateInput) {
  EXPECT_THROW(linear_cka(at::randn({5, 2}), at::randn({6, 2})), std::invalid_argument);
  EXPECT_THROW(rbf_cka(at::ones({5, 2}), at::randn({5, 2})), std::invalid_argument);
  EXPECT_TRUE(std::isnan(linear_cka(at::ones({5, 2}), at::randn({5, 2}))));
}

}  // namespace
