// Per-layer linear probes (the probes of docs/algorithms.md §E): multinomial logistic regression with an L2 penalty,
// fitted on one layer's activations, plus the held-out metrics and controls a probe result is reported with.
//
//   fit      Features are standardised with the training mean and (population) std, z = (x - mean) / scale; a
//            column whose values are all equal gets scale 1 (and its own value as mean, so its z is exactly 0).
//            In the standardised space, with W [C, D], b [C], P = softmax(z W^T + b) and Y the one-hot labels,
//              objective  F(W, b) = mean_i CE_i + lambda/2 |W|_F^2          (the bias is not penalised)
//              gradient   dF/dW = (P - Y)^T z / N + lambda W,  dF/db = mean_i (P - Y)_i
//            minimised in fp64 by L-BFGS (two-loop recursion, backtracking Armijo line search) from zero until
//            max|grad| < tol. F is convex (strictly in W when lambda > 0); the bias is identified only up to a common
//            shift, and since every gradient has sum_c dF/db_c = 0 the iterates keep sum_c b_c = 0. The weights are
//            mapped back to the original features: W = W_std / scale, b = b_std - W_std (mean / scale), so that
//            W x + b equals W_std z + b_std. lambda therefore penalises the standardised weights.
//   metrics  accuracy; macro-F1 = mean over the classes present in y_true or y_pred of F1_c = 2 TP_c / (2 TP_c +
//            FP_c + FN_c) = 2 TP_c / (n_true_c + n_pred_c) (equal to 2PR / (P + R), and 0 when TP_c = 0).
//   split    held out by trace (group): a seeded Fisher-Yates shuffle of the distinct group ids (ascending before
//            the shuffle), the first round(test_share * n_groups) of them, clamped to [1, n_groups - 1], are test.
//   interval cluster bootstrap over groups: n_boot resamples of the groups with replacement, the metric on the
//            concatenated rows of each, and the 2.5th / 97.5th percentiles with numpy's default linear interpolation.
//   control  labels permuted by a seeded Fisher-Yates (fit on those: the shuffled-label baseline).
// Every seeded shuffle draws from std::mt19937_64(seed) with index rng() % k, so results do not depend on the
// standard library's distributions.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace ts::directions {

struct ProbeOptions {
  double l2 = 1e-3;        // lambda: objective = mean_i CE(x_i) + lambda/2 * ||W_std||_F^2 (bias not penalised)
                           // (l2 = 0 on separable classes has no minimiser: the fit ends at max_iter, not converged)
  int64_t max_iter = 200;  // L-BFGS iterations
  double tol = 1e-6;       // stop when the max-abs gradient (standardised space) < tol
  int64_t history = 10;    // L-BFGS memory (pairs kept)
};

struct ProbeFit {
  at::Tensor weight;       // [C, D] fp32, in the original feature space (standardisation folded in)
  at::Tensor bias;         // [C] fp32, original space
  at::Tensor mean, scale;  // [D] fp64: the standardisation used (train mean; train population std, 1 for constant columns)
  int64_t iterations = 0;  // L-BFGS steps taken
  double objective = 0;    // F at the solution (standardised space)
  bool converged = false;  // max|grad| < tol reached within max_iter
};

// x [N, D] (any floating dtype; computed in fp64), y [N] integer labels in [0, n_class). Throws std::invalid_argument
// for x not 2-D (or not floating, or not finite), y not [N], n_class < 2, labels out of range, N < 2, bad options.
ProbeFit fit_probe(const at::Tensor& x, const at::Tensor& y, int64_t n_class, const ProbeOptions& o = {});
at::Tensor probe_proba(const ProbeFit& f, const at::Tensor& x);    // [N, C] fp64 softmax probabilities
at::Tensor probe_predict(const ProbeFit& f, const at::Tensor& x);  // [N] int64 argmax classes

// y_true and y_pred: [N] integer labels, N >= 1; macro_f1 also needs them in [0, n_class).
double accuracy(const at::Tensor& y_true, const at::Tensor& y_pred);
double macro_f1(const at::Tensor& y_true, const at::Tensor& y_pred, int64_t n_class);

// groups [N] integer ids with at least 2 distinct values, test_share in [0, 1]. Returns a bool mask [N] (true =
// test) on the device of `groups`; every group lies wholly on one side.
at::Tensor group_split(const at::Tensor& groups, double test_share, uint64_t seed);

struct Interval {
  double lo = 0, hi = 0;
};
// Cluster-bootstrap 95% interval of accuracy (f1 = false) or macro-F1 (f1 = true) over rows grouped by `groups`.
Interval bootstrap_interval(const at::Tensor& y_true, const at::Tensor& y_pred, const at::Tensor& groups, int64_t n_class,
                            bool f1, int64_t n_boot, uint64_t seed);

// y [N] permuted by a seeded Fisher-Yates (same dtype and device): the shuffled-label control for training rows.
at::Tensor shuffled_labels(const at::Tensor& y, uint64_t seed);

}  // namespace ts::directions
