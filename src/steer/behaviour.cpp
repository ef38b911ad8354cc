#include "steer/behaviour.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/splitmix.h"

namespace ts {

const std::vector<std::string>& steerable_labels() {
  static const std::vector<std::string> labels = {"backtracking", "uncertainty-estimation", "example-testing", "adding-knowledge"};
  return labels;
}

std::vector<uint8_t> steerable_mask(const std::vector<std::string>& labels) {
  std::vector<uint8_t> out;
  for (const auto& l : labels)
    out.push_back(std::find(steerable_labels().begin(), steerable_labels().end(), l) != steerable_labels().end() ? 1 : 0);
  return out;
}

std::vector<double> token_share(const BehaviourCounts& c, const std::vector<uint8_t>& steerable) {
  int64_t denom = 0;
  for (size_t k = 0; k < c.tokens.size(); ++k)
    if (steerable[k]) denom += c.tokens[k];
  std::vector<double> out(c.tokens.size(), std::numeric_limits<double>::quiet_NaN());
  for (size_t k = 0; k < c.tokens.size(); ++k)
    if (steerable[k]) out[k] = denom > 0 ? static_cast<double>(c.tokens[k]) / static_cast<double>(denom) : 0.0;
  return out;
}

std::vector<double> span_share(const BehaviourCounts& c) {
  int64_t total = 0;
  for (int64_t s : c.spans) total += s;
  std::vector<double> out(c.spans.size(), 0.0);
  if (total > 0)
    for (size_t k = 0; k < c.spans.size(); ++k) out[k] = static_cast<double>(c.spans[k]) / static_cast<double>(total);
  return out;
}

// Percentile q of sorted values, linear interpolation (numpy's default "linear" method).
namespace {
double percentile(const std::vector<double>& sorted, double q) {
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}
}  // namespace

Interval bootstrap_mean(std::span<const double> values, int64_t resamples, double level, uint64_t seed) {
  std::vector<double> v;
  for (double x : values)
    if (!std::isnan(x)) v.push_back(x);
  Interval r;
  r.n = static_cast<int64_t>(v.size());
  if (v.empty()) {
    r.mean = r.lo = r.hi = std::numeric_limits<double>::quiet_NaN();
    return r;
  }
  double sum = 0;
  for (double x : v) sum += x;
  r.mean = sum / static_cast<double>(v.size());
  if (resamples <= 0 || v.size() == 1) {
    r.lo = r.hi = r.mean;
    return r;
  }
  std::vector<double> means(static_cast<size_t>(resamples));
  const uint64_t n = v.size();
  uint64_t state = splitmix64(seed ^ 0x626f6f7473747270ull);
  for (int64_t b = 0; b < resamples; ++b) {
    double s = 0;
    for (uint64_t i = 0; i < n; ++i) {
      state = splitmix64(state);
      s += v[static_cast<size_t>(state % n)];  // modulo bias < n / 2^64: negligible
    }
    means[static_cast<size_t>(b)] = s / static_cast<double>(n);
  }
  std::sort(means.begin(), means.end());
  const double alpha = (1 - level) / 2;
  r.lo = percentile(means, alpha);
  r.hi = percentile(means, 1 - alpha);
  return r;
}

Interval bootstrap_ratio(std::span<const double> num, std::span<const double> den, int64_t resamples, double level, uint64_t seed) {
  std::vector<double> a, b;
  for (size_t i = 0; i < num.size() && i < den.size(); ++i)
    if (!std::isnan(num[i]) && !std::isnan(den[i])) a.push_back(num[i]), b.push_back(den[i]);
  Interval r;
  r.n = static_cast<int64_t>(a.size());
  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto ratio = [](double sa, double sb) { return sb == 0 ? std::numeric_limits<double>::quiet_NaN() : sa / sb; };
  double sa = 0, sb = 0;
  for (size_t i = 0; i < a.size(); ++i) sa += a[i], sb += b[i];
  r.mean = a.empty() ? nan : ratio(sa, sb);
  r.lo = r.hi = r.mean;
  if (a.size() < 2 || resamples <= 0) return r;
  std::vector<double> stats;
  const uint64_t n = a.size();
  uint64_t state = splitmix64(seed ^ 0x726174696f627374ull);
  for (int64_t k = 0; k < resamples; ++k) {
    double xa = 0, xb = 0;
    for (uint64_t i = 0; i < n; ++i) {
      state = splitmix64(state);
      xa += a[static_cast<size_t>(state % n)], xb += b[static_cast<size_t>(state % n)];
    }
    if (xb != 0) stats.push_back(xa / xb);
  }
  if (stats.empty()) {
    r.lo = r.hi = nan;
    return r;
  }
  std::sort(stats.begin(), stats.end());
  const double alpha = (1 - level) / 2;
  r.lo = percentile(stats, alpha);
  r.hi = percentile(stats, 1 - alpha);
  return r;
}

}  // namespace ts
