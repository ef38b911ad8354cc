#include "directions/probe.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace ts::directions {

namespace {

// ---- the objective in the standardised space ------------------------------------------------------------------------

// F(theta) and its gradient; theta = [W (C*D values, row-major), b (C)] in fp64.
struct Objective {
  at::Tensor z;       // [N, D] standardised features
  at::Tensor onehot;  // [N, C] fp64
  int64_t c = 0, d = 0;
  double l2 = 0;

  double eval(const at::Tensor& theta, at::Tensor& grad) const {
    const at::Tensor w = theta.narrow(0, 0, c * d).view({c, d}), b = theta.narrow(0, c * d, c);
    const double n = static_cast<double>(z.size(0));
    const at::Tensor logp = at::log_softmax(z.mm(w.t()) + b, 1);  // stable: no exp of large logits
    const at::Tensor value = -(logp * onehot).sum() / n + 0.5 * l2 * w.pow(2).sum();
    const at::Tensor residual = logp.exp() - onehot;  // P - Y
    grad = at::cat({(residual.t().mm(z) / n + l2 * w).reshape({-1}), residual.mean(0)});
    return value.item<double>();
  }
};

// ---- L-BFGS ---------------------------------------------------------------------------------------------------------

struct CurvaturePair {
  at::Tensor s, y;  // step and gradient change
  double rho = 0;   // 1 / (s . y)
};

double dot_d(const at::Tensor& a, const at::Tensor& b) { return at::dot(a, b).item<double>(); }

// H g by the two-loop recursion, H the L-BFGS inverse-Hessian estimate with H0 = (s.y / y.y) I from the newest pair
// (the identity when there is none).
at::Tensor two_loop(const at::Tensor& g, const std::deque<CurvaturePair>& mem) {
  at::Tensor q = g.clone();
  std::vector<double> alpha(mem.size());
  for (size_t i = mem.size(); i-- > 0;) {
    alpha[i] = mem[i].rho * dot_d(mem[i].s, q);
    q.sub_(mem[i].y, alpha[i]);
  }
  if (!mem.empty()) q.mul_(1.0 / (mem.back().rho * dot_d(mem.back().y, mem.back().y)));
  for (size_t i = 0; i < mem.size(); ++i) {
    const double beta = mem[i].rho * dot_d(mem[i].y, q);
    q.add_(mem[i].s, alpha[i] - beta);
  }
  return q;
}

struct Solution {
  at::Tensor theta;
  double f = 0;
  int64_t iterations = 0;
  bool converged = false;
};

// Minimises the objective from theta. Line search: halve t from 1 until Armijo, f(t) <= f(0) + c1 t f'(0). Near the
// optimum the decrease of f drops below fp64 rounding of f long before the gradient reaches a small tol, so a step is
// also accepted when f has not risen beyond rounding and the slope along d satisfies f'(t) <= (2 c1 - 1) f'(0) (the
// "approximate Wolfe" test of Hager and Zhang): for a quadratic this is the same condition as Armijo, and the
// gradient, unlike f, is still computed accurately there.
Solution lbfgs(const Objective& obj, at::Tensor theta, const ProbeOptions& o) {
  constexpr double c1 = 1e-4;
  constexpr int max_halvings = 60;
  Solution r;
  at::Tensor g;
  double f = obj.eval(theta, g);
  std::deque<CurvaturePair> mem;
  for (;;) {
    if (g.abs().max().item<double>() < o.tol) {
      r.converged = true;
      break;
    }
    if (r.iterations >= o.max_iter) break;
    at::Tensor d = -two_loop(g, mem);
    double slope = dot_d(g, d);
    if (!(slope < 0)) {  // not a descent direction (only through rounding; F is convex): restart from steepest descent
      mem.clear();
      d = -g;
      slope = -dot_d(g, g);
    }
    // Without curvature pairs, the first step moves no parameter by more than 1 (|t d|_inf <= |g|_inf / |g|_1).
    double t = mem.empty() ? std::min(1.0, 1.0 / g.abs().sum().item<double>()) : 1.0;
    at::Tensor theta_new, g_new;
    double f_new = 0;
    bool accepted = false;
    for (int k = 0; k < max_halvings && !accepted; ++k) {
      theta_new = theta + t * d;
      f_new = obj.eval(theta_new, g_new);
      accepted = f_new <= f + c1 * t * slope ||  // Armijo; this and the next are false for a non-finite f_new
                 (f_new <= f + 1e-10 * std::abs(f) && dot_d(g_new, d) <= (2 * c1 - 1) * slope);
      if (!accepted) t *= 0.5;
    }
    if (!accepted) break;  // no representable decrease along d: stop here (converged stays false)
    const at::Tensor s = theta_new - theta, y = g_new - g;
    const double sy = dot_d(s, y);
    if (sy > std::numeric_limits<double>::epsilon() * dot_d(y, y)) {  // curvature condition, else skip the pair
      mem.push_back({s, y, 1.0 / sy});
      if (static_cast<int64_t>(mem.size()) > o.history) mem.pop_front();
    }
    theta = theta_new;
    g = g_new;
    f = f_new;
    ++r.iterations;
  }
  r.theta = theta;
  r.f = f;
  return r;
}

// ---- input checks and host copies -----------------------------------------------------------------------------------

void check_labels(const at::Tensor& y, const char* what) {
  if (!y.defined() || y.dim() != 1 || !at::isIntegralType(y.scalar_type(), /*includeBool=*/false))
    throw std::invalid_argument(std::string(what) + ": labels must be a 1-D integer tensor");
}

std::vector<int64_t> host_vector(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kLong).cpu().contiguous();
  const int64_t* p = c.data_ptr<int64_t>();
  return std::vector<int64_t>(p, p + c.numel());
}

void check_range(const std::vector<int64_t>& v, int64_t n_class, const char* what) {
  for (const int64_t l : v)
    if (l < 0 || l >= n_class)
      throw std::invalid_argument(std::string(what) + ": label " + std::to_string(l) + " outside [0, " + std::to_string(n_class) + ")");
}

// ---- metrics from per-class counts -----------------------------------------------------------------------------------

struct ClassCounts {
  explicit ClassCounts(int64_t n_class)
      : tp(static_cast<size_t>(n_class)), n_true(static_cast<size_t>(n_class)), n_pred(static_cast<size_t>(n_class)) {}
  std::vector<int64_t> tp, n_true, n_pred;

  void add(int64_t t, int64_t p) {
    ++n_true[static_cast<size_t>(t)];
    ++n_pred[static_cast<size_t>(p)];
    if (t == p) ++tp[static_cast<size_t>(t)];
  }
  void add(const ClassCounts& o) {
    for (size_t c = 0; c < tp.size(); ++c) {
      tp[c] += o.tp[c];
      n_true[c] += o.n_true[c];
      n_pred[c] += o.n_pred[c];
    }
  }
  double accuracy() const {
    int64_t correct = 0, total = 0;
    for (size_t c = 0; c < tp.size(); ++c) {
      correct += tp[c];
      total += n_true[c];
    }
    return static_cast<double>(correct) / static_cast<double>(total);
  }
  double macro_f1() const {
    double sum = 0;
    int64_t present = 0;
    for (size_t c = 0; c < tp.size(); ++c) {
      const int64_t denom = n_true[c] + n_pred[c];  // 2 TP + FP + FN
      if (denom == 0) continue;                     // neither true nor predicted anywhere: skipped
      sum += 2.0 * static_cast<double>(tp[c]) / static_cast<double>(denom);
      ++present;
    }
    return sum / static_cast<double>(present);
  }
};

// Host labels of y_true and y_pred after the checks every metric shares.
std::pair<std::vector<int64_t>, std::vector<int64_t>> metric_inputs(const at::Tensor& y_true, const at::Tensor& y_pred,
                                                                    const char* what) {
  check_labels(y_true, what);
  check_labels(y_pred, what);
  if (y_true.numel() != y_pred.numel() || y_true.numel() == 0)
    throw std::invalid_argument(std::string(what) + ": y_true and y_pred must have the same, non-zero length");
  return {host_vector(y_true), host_vector(y_pred)};
}

// ---- seeded shuffles and percentiles ---------------------------------------------------------------------------------

// Fisher-Yates with j = rng() % (i + 1): the same permutation for a seed on every standard library.
template <class T>
void fisher_yates(std::vector<T>& v, std::mt19937_64& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[static_cast<size_t>(rng() % i)]);
}

// numpy.percentile(sorted, q) with the default linear method (including numpy's two-sided lerp).
double percentile(const std::vector<double>& sorted, double q) {
  const double h = static_cast<double>(sorted.size() - 1) * (q / 100.0);
  const size_t lo = static_cast<size_t>(std::floor(h));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  const double w = h - static_cast<double>(lo), a = sorted[lo], b = sorted[hi];
  return w >= 0.5 ? b - (b - a) * (1 - w) : a + (b - a) * w;
}

std::vector<int64_t> distinct_sorted(std::vector<int64_t> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

size_t index_of(const std::vector<int64_t>& sorted, int64_t value) {
  return static_cast<size_t>(std::lower_bound(sorted.begin(), sorted.end(), value) - sorted.begin());
}

at::Tensor logits(const ProbeFit& f, const at::Tensor& x) {
  if (!f.weight.defined() || !f.bias.defined()) throw std::invalid_argument("probe: the fit is empty");
  if (x.dim() != 2 || x.size(1) != f.weight.size(1))
    throw std::invalid_argument("probe: x must be [N, " + std::to_string(f.weight.size(1)) + "]");
  const at::Tensor xd = x.to(at::kDouble);
  return xd.mm(f.weight.to(xd.device(), at::kDouble).t()) + f.bias.to(xd.device(), at::kDouble);
}

}  // namespace

ProbeFit fit_probe(const at::Tensor& x, const at::Tensor& y, int64_t n_class, const ProbeOptions& o) {
  if (!x.defined() || x.dim() != 2 || !at::isFloatingType(x.scalar_type()))
    throw std::invalid_argument("fit_probe: x must be a 2-D floating tensor [N, D]");
  check_labels(y, "fit_probe");
  const int64_t n = x.size(0), d = x.size(1);
  if (y.size(0) != n)
    throw std::invalid_argument("fit_probe: y has " + std::to_string(y.size(0)) + " labels for " + std::to_string(n) + " rows");
  if (n_class < 2) throw std::invalid_argument("fit_probe: n_class must be at least 2, got " + std::to_string(n_class));
  if (n < 2) throw std::invalid_argument("fit_probe: at least 2 rows are needed");
  if (!(o.l2 >= 0) || o.max_iter < 0 || !(o.tol >= 0) || o.history < 1)
    throw std::invalid_argument("fit_probe: options need l2 >= 0, max_iter >= 0, tol >= 0, history >= 1");
  const at::Tensor xd = x.to(at::kDouble);
  if (!at::isfinite(xd).all().item<bool>()) throw std::invalid_argument("fit_probe: x has non-finite values");
  const at::Tensor labels = y.to(xd.device(), at::kLong);
  const int64_t lo = labels.min().item<int64_t>(), hi = labels.max().item<int64_t>();
  if (lo < 0 || hi >= n_class)
    throw std::invalid_argument("fit_probe: labels must lie in [0, " + std::to_string(n_class) + "), found " +
                                std::to_string(lo < 0 ? lo : hi));

  // Standardisation; constant columns keep their exact value as mean (z = 0 there) and scale 1.
  const at::Tensor constant = xd.amax(0) == xd.amin(0);
  const at::Tensor mean = at::where(constant, xd.select(0, 0), xd.mean(0));
  const at::Tensor sd = (xd - mean).pow(2).mean(0).sqrt();  // population std
  const at::Tensor scale = at::where(constant, at::ones_like(sd), sd);

  Objective obj;
  obj.z = (xd - mean) / scale;
  obj.onehot = at::one_hot(labels, n_class).to(at::kDouble);
  obj.c = n_class;
  obj.d = d;
  obj.l2 = o.l2;
  const Solution s = lbfgs(obj, at::zeros({n_class * d + n_class}, xd.options()), o);

  // W x + b = W_std (x - mean) / scale + b_std.
  const at::Tensor w_std = s.theta.narrow(0, 0, n_class * d).view({n_class, d});
  const at::Tensor b_std = s.theta.narrow(0, n_class * d, n_class);
  ProbeFit fit;
  fit.weight = (w_std / scale).to(at::kFloat);
  fit.bias = (b_std - w_std.mv(mean / scale)).to(at::kFloat);
  fit.mean = mean;
  fit.scale = scale;
  fit.iterations = s.iterations;
  fit.objective = s.f;
  fit.converged = s.converged;
  return fit;
}

at::Tensor probe_proba(const ProbeFit& f, const at::Tensor& x) { return at::softmax(logits(f, x), 1); }

at::Tensor probe_predict(const ProbeFit& f, const at::Tensor& x) { return logits(f, x).argmax(1); }

double accuracy(const at::Tensor& y_true, const at::Tensor& y_pred) {
  const auto [t, p] = metric_inputs(y_true, y_pred, "accuracy");
  int64_t correct = 0;
  for (size_t i = 0; i < t.size(); ++i) correct += t[i] == p[i];
  return static_cast<double>(correct) / static_cast<double>(t.size());
}

double macro_f1(const at::Tensor& y_true, const at::Tensor& y_pred, int64_t n_class) {
  const auto [t, p] = metric_inputs(y_true, y_pred, "macro_f1");
  check_range(t, n_class, "macro_f1");
  check_range(p, n_class, "macro_f1");
  ClassCounts counts(n_class);
  for (size_t i = 0; i < t.size(); ++i) counts.add(t[i], p[i]);
  return counts.macro_f1();
}

at::Tensor group_split(const at::Tensor& groups, double test_share, uint64_t seed) {
  check_labels(groups, "group_split");
  if (!(test_share >= 0 && test_share <= 1))
    throw std::invalid_argument("group_split: test_share must lie in [0, 1], got " + std::to_string(test_share));
  const std::vector<int64_t> rows = host_vector(groups);
  std::vector<int64_t> ids = distinct_sorted(rows);
  const int64_t n_groups = static_cast<int64_t>(ids.size());
  if (n_groups < 2) throw std::invalid_argument("group_split: at least 2 distinct groups are needed");
  std::mt19937_64 rng(seed);
  fisher_yates(ids, rng);
  const int64_t n_test = std::clamp<int64_t>(std::llround(test_share * static_cast<double>(n_groups)), 1, n_groups - 1);
  const std::vector<int64_t> test = distinct_sorted(std::vector<int64_t>(ids.begin(), ids.begin() + n_test));
  at::Tensor mask = at::empty({static_cast<int64_t>(rows.size())}, at::kBool);
  bool* m = mask.data_ptr<bool>();
  for (size_t i = 0; i < rows.size(); ++i) m[i] = std::binary_search(test.begin(), test.end(), rows[i]);
  return mask.to(groups.device());
}

Interval bootstrap_interval(const at::Tensor& y_true, const at::Tensor& y_pred, const at::Tensor& groups, int64_t n_class,
                            bool f1, int64_t n_boot, uint64_t seed) {
  const auto [t, p] = metric_inputs(y_true, y_pred, "bootstrap_interval");
  check_labels(groups, "bootstrap_interval");
  if (groups.numel() != y_true.numel()) throw std::invalid_argument("bootstrap_interval: groups must have one id per row");
  if (n_class < 1 || n_boot < 1) throw std::invalid_argument("bootstrap_interval: n_class and n_boot must be at least 1");
  check_range(t, n_class, "bootstrap_interval");
  check_range(p, n_class, "bootstrap_interval");

  // Per-group class counts: a resample's metric is that of the summed counts of the groups drawn.
  const std::vector<int64_t> rows = host_vector(groups);
  const std::vector<int64_t> ids = distinct_sorted(rows);
  std::vector<ClassCounts> per_group(ids.size(), ClassCounts(n_class));
  for (size_t i = 0; i < rows.size(); ++i) per_group[index_of(ids, rows[i])].add(t[i], p[i]);

  std::mt19937_64 rng(seed);
  std::vector<double> values(static_cast<size_t>(n_boot));
  for (double& v : values) {
    ClassCounts total(n_class);
    for (size_t k = 0; k < ids.size(); ++k) total.add(per_group[static_cast<size_t>(rng() % ids.size())]);
    v = f1 ? total.macro_f1() : total.accuracy();
  }
  std::sort(values.begin(), values.end());
  return {percentile(values, 2.5), percentile(values, 97.5)};
}

at::Tensor shuffled_labels(const at::Tensor& y, uint64_t seed) {
  check_labels(y, "shuffled_labels");
  std::vector<int64_t> perm(static_cast<size_t>(y.size(0)));
  for (size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<int64_t>(i);
  std::mt19937_64 rng(seed);
  fisher_yates(perm, rng);
  return y.index_select(0, at::tensor(perm, at::kLong).to(y.device()));
}

}  // namespace ts::directions
