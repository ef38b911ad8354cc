// Linear probes (directions/probe.h): planted Gaussian classes against the shuffled-label control, the first-order
// optimality condition recomputed here in fp64, a 2-class 1-D fit against Newton's method on the reduced problem,
// and the metrics, group split and cluster bootstrap on hand-checked cases.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <stdexcept>
#include <vector>

#include "directions/probe.h"

using namespace ts::directions;

namespace {

at::Tensor labels(const std::vector<int64_t>& v) { return at::tensor(v, at::kLong); }

std::set<int64_t> distinct(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kLong).contiguous();
  return std::set<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

// n rows of Gaussian classes around the rows of `means`: y = row % C, x = means[y] + N(0, I), x in fp32.
void planted(const at::Tensor& means, int64_t n, at::Tensor& x, at::Tensor& y) {
  y = at::arange(n, at::kLong).remainder(means.size(0));
  x = (means.index_select(0, y) + at::randn({n, means.size(1)}, at::kDouble)).to(at::kFloat);
}

// The standardised problem at a fit, written out again: z = (x - mean) / scale, W_std = W * scale,
// b_std = b + W_std (mean / scale) (the inverse of the fold), P = softmax(z W_std^T + b_std).
struct Standardised {
  at::Tensor z, w, b, residual;  // residual = P - Y
  Standardised(const ProbeFit& f, const at::Tensor& x, const at::Tensor& y, int64_t c) {
    z = (x.to(at::kDouble) - f.mean) / f.scale;
    w = f.weight.to(at::kDouble) * f.scale;
    b = f.bias.to(at::kDouble) + w.mv(f.mean / f.scale);
    residual = at::softmax(z.mm(w.t()) + b, 1) - at::one_hot(y, c).to(at::kDouble);
  }
  // max-abs of dF/dW = (P - Y)^T z / N + lambda W_std and dF/db = mean(P - Y).
  double max_gradient(double l2) const {
    const double n = static_cast<double>(z.size(0));
    const at::Tensor gw = residual.t().mm(z) / n + l2 * w, gb = residual.mean(0);
    return std::max(gw.abs().max().item<double>(), gb.abs().max().item<double>());
  }
};

TEST(Probe, SeparatesPlantedClassesButNotShuffledLabels) {
  at::manual_seed(1);
  // Class means ~ N(0, 1.25^2 I): pairwise distances ~ 1.25 sqrt(40) ~ 8 noise sigmas. The held-out accuracy of the
  // shuffled-label fit varies with how its arbitrary partition happens to fall on the three clusters (median ~ 1/3,
  // above 0.5 for ~1% of seeds); the seeds are fixed, so the check is deterministic.
  const at::Tensor means = 1.25 * at::randn({3, 20}, at::kDouble);
  at::Tensor x, y, x_test, y_test;
  planted(means, 600, x, y);
  planted(means, 600, x_test, y_test);  // a fresh held-out sample
  const ProbeFit f = fit_probe(x, y, 3, {});
  EXPECT_TRUE(f.converged);
  EXPECT_EQ(f.weight.scalar_type(), at::kFloat);
  EXPECT_EQ(f.weight.size(0), 3);
  EXPECT_EQ(f.weight.size(1), 20);
  EXPECT_EQ(f.bias.numel(), 3);
  const at::Tensor pred = probe_predict(f, x_test);
  EXPECT_EQ(pred.scalar_type(), at::kLong);
  EXPECT_GT(accuracy(y_test, pred), 0.95);
  EXPECT_GT(macro_f1(y_test, pred, 3), 0.95);
  // The control: the same rows with permuted labels carry no signal, chance is 1/3.
  const ProbeFit control = fit_probe(x, shuffled_labels(y, 7), 3, {});
  EXPECT_LT(accuracy(y_test, probe_predict(control, x_test)), 0.5);
}

TEST(Probe, GradientVanishesAtTheSolution) {
  at::manual_seed(2);
  const at::Tensor means = at::randn({3, 8}, at::kDouble);
  at::Tensor x, y;
  planted(means, 300, x, y);
  x = at::cat({x * 3.0 + 10.0, at::full({300, 1}, 5.0, at::kFloat)}, 1);  // off-centre, wider, and a constant column
  const ProbeFit f = fit_probe(x, y, 3, {});
  ASSERT_TRUE(f.converged);
  EXPECT_GT(f.iterations, 0);

  // The standardisation: train mean and population std; the constant column keeps scale 1 and gets no weight.
  const at::Tensor xd = x.to(at::kDouble), sd = (xd - xd.mean(0)).pow(2).mean(0).sqrt();
  EXPECT_LT((f.mean - xd.mean(0)).abs().max().item<double>(), 1e-12);
  EXPECT_LT((f.scale.narrow(0, 0, 8) - sd.narrow(0, 0, 8)).abs().max().item<double>(), 1e-12);
  EXPECT_EQ(f.scale[8].item<double>(), 1.0);
  EXPECT_EQ(f.weight.select(1, 8).abs().max().item<float>(), 0.0f);

  // F is convex, so a vanishing gradient (checked from the fp32 weights the fit returns) proves the optimum; the
  // objective reported is F there.
  const Standardised s(f, x, y, 3);
  EXPECT_LT(s.max_gradient(1e-3), 1e-5);
  const double ce = -(at::log_softmax(s.z.mm(s.w.t()) + s.b, 1) * at::one_hot(y, 3).to(at::kDouble)).sum().item<double>() / 300;
  EXPECT_NEAR(f.objective, ce + 0.5e-3 * s.w.pow(2).sum().item<double>(), 1e-9);

  // A strong penalty shrinks the (standardised) weights and is again optimal.
  ProbeOptions strong;
  strong.l2 = 10;
  const ProbeFit g = fit_probe(x, y, 3, strong);
  ASSERT_TRUE(g.converged);
  const Standardised t(g, x, y, 3);
  EXPECT_LT(t.max_gradient(10), 1e-5);
  EXPECT_LT(t.w.norm().item<double>(), 0.5 * s.w.norm().item<double>());
  EXPECT_LT(g.weight.norm().item<double>(), f.weight.norm().item<double>());
}

TEST(Probe, TwoClassesInOneDimensionMatchNewton) {
  at::manual_seed(3);
  const int64_t n = 200;
  const at::Tensor y = at::arange(n, at::kLong).remainder(2);
  const at::Tensor x = (((y.to(at::kDouble) - 0.5) + at::randn({n}, at::kDouble)) * 2.0 + 3.0).to(at::kFloat).unsqueeze(1);
  ProbeOptions o;
  o.l2 = 0.05;
  o.tol = 1e-10;
  const ProbeFit f = fit_probe(x, y, 2, o);
  ASSERT_TRUE(f.converged);

  // Only the differences u = w1 - w0 and c = b1 - b0 enter the likelihood, P(y = 1 | z) = sigmoid(u z + c); for a
  // given u the penalty lambda/2 (w0^2 + w1^2) is least at w1 = -w0 = u/2, so the problem reduces to
  //   min over (u, c) of mean_i CE_i + lambda u^2 / 4,
  // solved here by Newton's method on the 2x2 system (quadratic convergence: 30 steps are plenty).
  const at::Tensor xd = x.squeeze(1).to(at::kDouble), yd = y.to(at::kDouble);
  const double mean = xd.mean().item<double>(), sd = std::sqrt((xd - mean).pow(2).mean().item<double>());
  const at::Tensor z = (xd - mean) / sd;
  double u = 0, c = 0;
  for (int k = 0; k < 30; ++k) {
    const at::Tensor p = at::sigmoid(u * z + c), w = p * (1 - p);
    const double gu = ((p - yd) * z).mean().item<double>() + o.l2 * u / 2, gc = (p - yd).mean().item<double>();
    const double huu = (w * z * z).mean().item<double>() + o.l2 / 2, huc = (w * z).mean().item<double>(), hcc = w.mean().item<double>();
    const double det = huu * hcc - huc * huc;
    u -= (hcc * gu - huc * gc) / det;
    c -= (huu * gc - huc * gu) / det;
  }
  EXPECT_GT(std::abs(u), 0.1);  // a real signal, not the trivial solution

  const at::Tensor proba = probe_proba(f, x);
  ASSERT_EQ(proba.size(1), 2);
  EXPECT_LT((proba.select(1, 1) - at::sigmoid(u * z + c)).abs().max().item<double>(), 1e-6);
  // The symmetric split of the weight (standardised: W_std = W * sd), and the bias difference in the original space.
  EXPECT_NEAR(f.weight[1][0].item<double>() * sd, u / 2, 1e-6);
  EXPECT_NEAR(f.weight[0][0].item<double>() * sd, -u / 2, 1e-6);
  EXPECT_NEAR(f.bias[1].item<double>() - f.bias[0].item<double>(), c - u * mean / sd, 1e-5);
}

TEST(ProbeMetrics, AccuracyAndMacroF1ByHand) {
  const at::Tensor t = labels({0, 0, 1, 1, 2}), p = labels({0, 1, 1, 1, 0});
  EXPECT_DOUBLE_EQ(accuracy(t, p), 0.6);  // rows 0, 2, 3
  // class 0: TP 1 (row 0), FP 1 (row 4), FN 1 (row 1): P = R = 1/2, F1 = 1/2
  // class 1: TP 2 (rows 2, 3), FP 1 (row 1), FN 0: P = 2/3, R = 1, F1 = 2 (2/3) / (5/3) = 4/5
  // class 2: TP 0, FP 0, FN 1 (row 4): P + R = 0, F1 = 0
  // macro-F1 = (1/2 + 4/5 + 0) / 3 = 13/30; with n_class 4, class 3 (no true, no predicted rows) is skipped.
  EXPECT_NEAR(macro_f1(t, p, 3), 13.0 / 30, 1e-15);
  EXPECT_NEAR(macro_f1(t, p, 4), 13.0 / 30, 1e-15);
  // A class that is only predicted counts with F1 = 0: class 0 2/3 (TP 1, FN 1), class 1 1, class 2 0 (FP 1).
  EXPECT_NEAR(macro_f1(labels({0, 0, 1}), labels({0, 2, 1}), 3), (2.0 / 3 + 1) / 3, 1e-15);
  EXPECT_EQ(macro_f1(t, t, 3), 1.0);
  EXPECT_EQ(accuracy(t, t), 1.0);
  EXPECT_THROW(accuracy(labels({0, 1}), labels({0})), std::invalid_argument);
  EXPECT_THROW(macro_f1(t, labels({0, 1, 1, 1, 3}), 3), std::invalid_argument);
}

TEST(ProbeSplit, KeepsGroupsWholeAndIsSeeded) {
  // 20 groups with ids 7 g + 3 and 1 to 5 rows each, the rows in a scrambled order.
  std::vector<int64_t> ids;
  for (int64_t g = 0; g < 20; ++g)
    for (int64_t r = 0; r <= g % 5; ++r) ids.push_back(7 * g + 3);
  at::manual_seed(5);
  const at::Tensor groups = labels(ids).index_select(0, at::randperm(static_cast<int64_t>(ids.size()), at::kLong));
  const at::Tensor mask = group_split(groups, 0.25, 42);
  ASSERT_EQ(mask.scalar_type(), at::kBool);
  ASSERT_EQ(mask.numel(), groups.numel());
  const std::set<int64_t> test = distinct(groups.masked_select(mask)), train = distinct(groups.masked_select(mask.logical_not()));
  for (const int64_t g : test) EXPECT_EQ(train.count(g), 0u) << "group " << g << " is on both sides";
  EXPECT_EQ(test.size() + train.size(), 20u);
  EXPECT_NEAR(static_cast<double>(test.size()), 0.25 * 20, 1.0);
  EXPECT_TRUE(at::equal(mask, group_split(groups, 0.25, 42)));
  EXPECT_FALSE(at::equal(mask, group_split(groups, 0.25, 43)));
  // Shares are clamped so that both sides keep at least one group.
  EXPECT_EQ(distinct(groups.masked_select(group_split(groups, 0.0, 1))).size(), 1u);
  EXPECT_EQ(distinct(groups.masked_select(group_split(groups, 1.0, 1))).size(), 19u);
  EXPECT_THROW(group_split(labels({4, 4, 4}), 0.5, 1), std::invalid_argument);
}

TEST(ProbeBootstrap, IntervalCoversThePointAndCollapsesWhenPerfect) {
  at::manual_seed(6);
  const int64_t n = 200;
  const at::Tensor t = at::randint(3, {n}, at::kLong);
  const at::Tensor p = at::where(at::rand({n}, at::kDouble) < 0.3, (t + 1).remainder(3), t);  // ~30% wrong
  std::vector<int64_t> trace(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) trace[static_cast<size_t>(i)] = i / 5;  // 40 traces of 5 rows
  const at::Tensor groups = labels(trace);
  for (const bool f1 : {false, true}) {
    SCOPED_TRACE(f1 ? "macro-F1" : "accuracy");
    const double point = f1 ? macro_f1(t, p, 3) : accuracy(t, p);
    const Interval ci = bootstrap_interval(t, p, groups, 3, f1, 1000, 11);
    EXPECT_LE(ci.lo, point);
    EXPECT_GE(ci.hi, point);
    EXPECT_LT(ci.lo, ci.hi);
    EXPECT_GT(ci.lo, point - 0.2);  // 200 rows: a few hundredths either side
    EXPECT_LT(ci.hi, point + 0.2);
    const Interval again = bootstrap_interval(t, p, groups, 3, f1, 1000, 11);
    EXPECT_EQ(again.lo, ci.lo);
    EXPECT_EQ(again.hi, ci.hi);
    const Interval perfect = bootstrap_interval(t, t, groups, 3, f1, 200, 11);
    EXPECT_EQ(perfect.lo, 1.0);
    EXPECT_EQ(perfect.hi, 1.0);
  }
}

TEST(ProbeControl, ShuffledLabelsPermuteTheLabels) {
  const at::Tensor y = at::arange(50, at::kLong).remainder(4);
  const at::Tensor s = shuffled_labels(y, 9);
  EXPECT_TRUE(at::equal(std::get<0>(s.sort()), std::get<0>(y.sort())));
  EXPECT_TRUE(at::equal(s, shuffled_labels(y, 9)));
  EXPECT_FALSE(at::equal(s, y));
}

TEST(Probe, RefusesBadInput) {
  const at::Tensor x = at::randn({6, 2}), y = labels({0, 1, 2, 0, 1, 2});
  EXPECT_THROW(fit_probe(x, y, 1, {}), std::invalid_argument);                          // a single class
  EXPECT_THROW(fit_probe(x, labels({0, 1, 3, 0, 1, 2}), 3, {}), std::invalid_argument);   // label out of range
  EXPECT_THROW(fit_probe(x, labels({0, 1, -1, 0, 1, 2}), 3, {}), std::invalid_argument);  // negative label
  EXPECT_THROW(fit_probe(at::randn({6}), y, 3, {}), std::invalid_argument);               // x not 2-D
  EXPECT_THROW(fit_probe(x, labels({0, 1, 2}), 3, {}), std::invalid_argument);            // y of another length
  EXPECT_THROW(fit_probe(at::randn({1, 2}), labels({0}), 2, {}), std::invalid_argument);  // N < 2
}

}  // namespace
