// Contrastive directions (contrast.h).
#include "vectors/contrast.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace ts {
namespace {

template <class T>
void add_to(std::vector<double>& sum, std::span<const T> v) {
  if (v.size() != sum.size())
    throw std::invalid_argument("MeanAccumulator::add: a vector of " + std::to_string(v.size()) + " values into a sum of " + std::to_string(sum.size()));
  for (size_t i = 0; i < v.size(); ++i) sum[i] += static_cast<double>(v[i]);
}

}  // namespace

void MeanAccumulator::add(std::span<const float> v) {
  add_to(sum_, v);
  ++count_;
}

void MeanAccumulator::add(std::span<const double> v) {
  add_to(sum_, v);
  ++count_;
}

std::vector<double> set_mean(SetSum set) {
  if (set.count <= 0) throw std::invalid_argument("set_mean: the set is empty (count " + std::to_string(set.count) + ")");
  std::vector<double> out(set.sum.begin(), set.sum.end());
  for (double& x : out) x /= static_cast<double>(set.count);
  return out;
}

std::vector<double> contrast_direction(SetSum a, SetSum b, bool unit_norm) {
  if (a.sum.size() != b.sum.size())
    throw std::invalid_argument("contrast_direction: sets of " + std::to_string(a.sum.size()) + " and " + std::to_string(b.sum.size()) + " dimensions");
  std::vector<double> out = set_mean(a);
  const std::vector<double> mb = set_mean(b);
  for (size_t i = 0; i < out.size(); ++i) out[i] -= mb[i];
  if (!unit_norm) return out;
  std::optional<std::vector<double>> unit = rescale_to_norm(out, 1.0);
  if (!unit) throw std::invalid_argument("contrast_direction: the two means are equal, so the difference has no direction");
  return *unit;
}

double l2_norm(std::span<const double> v) {
  double s = 0;
  for (double x : v) s += x * x;
  return std::sqrt(s);
}

std::optional<std::vector<double>> rescale_to_norm(std::span<const double> v, double target) {
  const double n = l2_norm(v);
  if (!(n > 0)) return std::nullopt;
  std::vector<double> out(v.begin(), v.end());
  for (double& x : out) x *= target / n;
  return out;
}

}  // namespace ts
