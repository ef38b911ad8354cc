#include "model/sampling.h"

#include "core/splitmix.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace ts {

uint64_t stream_id_of(std::string_view prompt_id) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : prompt_id) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

double stream_uniform(uint64_t seed, uint64_t stream, uint64_t step) {
  const uint64_t x = splitmix64(splitmix64(splitmix64(seed) ^ stream) ^ step);
  return static_cast<double>(x >> 11) * 0x1.0p-53;
}

int64_t sample_from_logits(const float* logits, int64_t V, const SamplingParams& p, double u) {
  if (p.temperature <= 0.0) return std::max_element(logits, logits + V) - logits;  // first maximum
  // Softmax at temperature, in double for a stable cumulative sum.
  std::vector<int64_t> order(static_cast<size_t>(V));
  std::iota(order.begin(), order.end(), 0);
  const double inv_t = 1.0 / p.temperature;
  const float max_logit = *std::max_element(logits, logits + V);
  std::vector<double> prob(static_cast<size_t>(V));
  double total = 0;
  for (int64_t i = 0; i < V; ++i) total += prob[static_cast<size_t>(i)] = std::exp((static_cast<double>(logits[i]) - max_logit) * inv_t);
  // Sort descending by probability; ties keep the lower id first (deterministic).
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return prob[static_cast<size_t>(a)] > prob[static_cast<size_t>(b)]; });
  int64_t keep = V;
  if (p.top_k > 0) keep = std::min(keep, p.top_k);
  if (p.top_p < 1.0) {
    // Smallest prefix whose mass reaches top_p (HF TopPLogitsWarper keeps at least one token).
    double cum = 0;
    int64_t n = 0;
    while (n < keep) {
      cum += prob[static_cast<size_t>(order[static_cast<size_t>(n)])] / total;
      ++n;
      if (cum >= p.top_p) break;
    }
    keep = std::max<int64_t>(1, n);
  }
  double kept_mass = 0;
  for (int64_t i = 0; i < keep; ++i) kept_mass += prob[static_cast<size_t>(order[static_cast<size_t>(i)])];
  double target = u * kept_mass, cum = 0;
  for (int64_t i = 0; i < keep; ++i) {
    cum += prob[static_cast<size_t>(order[static_cast<size_t>(i)])];
    if (target < cum) return order[static_cast<size_t>(i)];
  }
  return order[static_cast<size_t>(keep - 1)];
}

}  // namespace ts
