// Centered kernel alignment between two representations of the same n inputs (Kornblith et al. 2019; the
// CKA of docs/algorithms.md §E): rows are inputs (tokens), columns features; the two may have different
// widths (layers of one model, or two models on the same token stream).
//
//   linear  CKA(X, Y) = |Yc^T Xc|_F^2 / (|Xc^T Xc|_F |Yc^T Yc|_F), Xc, Yc column-centred; computed in fp64 from
//           the sums an accumulator can add over batches and ranks (n, column sums, X^T X, Y^T Y, Y^T X), so
//           the centring is exact without a second pass: Xc^T Yc = X^T Y - n mu_x mu_y^T.
//   rbf     CKA with Gaussian kernels k(a, b) = exp(-|a - b|^2 / (2 sigma^2)), sigma = `sigma_scale` times the
//           median pairwise distance of that representation (the lower middle value for an even
//           count; the usual heuristic); HSIC with the centring matrix H: CKA = tr(K H L H) / sqrt(tr(K H K H) tr(L H L H)). O(n^2) memory: callers subsample.
// Both are invariant to orthogonal transforms and isotropic scaling of either side, and 1 for X against
// itself; linear CKA is also invariant to adding a constant to either side (tests/directions).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace ts::directions {

// Sums of two representations, added batch by batch (and over ranks: every member is a plain sum).
struct LinearCkaSums {
  int64_t n = 0;
  at::Tensor sx, sy;        // [p], [q] fp64 column sums
  at::Tensor xx, yy, yx;    // [p, p], [q, q], [q, p] fp64
  void add(const at::Tensor& x, const at::Tensor& y);  // rows of x and y are the same inputs
  double value() const;                                // NaN when a side has no variance
};

double linear_cka(const at::Tensor& x, const at::Tensor& y);

// The centred Gram matrix H K H of x's n rows divided by its Frobenius norm ([n, n] fp64): with these,
// CKA(x, y) = sum(G(x) * G(y)), so many representations are compared pairwise from one matrix each
// (linear: K = x x^T; rbf: the kernel of rbf_cka). All NaN when x has no variance.
at::Tensor unit_centred_gram(const at::Tensor& x, bool rbf, double sigma_scale = 1.0);
double rbf_cka(const at::Tensor& x, const at::Tensor& y, double sigma_scale = 1.0);

}  // namespace ts::directions
