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
  // Percentiles with linear interpolation (numpy's default "linear" method).
  auto pct = [&](double q) {
    const double pos = q * static_cast<double>(means.size() - 1);
    const size_t lo = static_cast<size_t>(std::floor(pos));
    const size_t hi = std::min(lo + 1, means.size() - 1);
    return means[lo] + (pos - static_cast<double>(lo)) * (means[hi] - means[lo]);
  };
  const double alpha = (1 - level) / 2;
  r.lo = pct(alpha);
  r.hi = pct(1 - alpha);
  return r;
}

}  // namespace ts
