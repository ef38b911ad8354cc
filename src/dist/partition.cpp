#include "dist/partition.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace ts {
namespace {

// Greedy: can items be split into <= parts contiguous groups each summing to <= cap?
bool fits(std::span<const int64_t> costs, int parts, int64_t cap) {
  int used = 1;
  int64_t sum = 0;
  for (int64_t c : costs) {
    if (c > cap) return false;
    if (sum + c > cap) {
      if (++used > parts) return false;
      sum = 0;
    }
    sum += c;
  }
  return true;
}

}  // namespace

std::vector<Range> partition_contiguous(std::span<const int64_t> costs, int parts) {
  if (parts < 1) throw std::invalid_argument("partition_contiguous: parts must be >= 1");
  const int64_t n = static_cast<int64_t>(costs.size());
  int64_t total = 0, max_item = 0;
  for (int64_t c : costs) {
    if (c < 0) throw std::invalid_argument("partition_contiguous: negative cost");
    total += c;
    max_item = std::max(max_item, c);
  }
  // Smallest feasible cap by bisection over [max(max_item, ceil(total/parts)), total].
  int64_t lo = std::max(max_item, (total + parts - 1) / parts), hi = std::max(lo, total);
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (fits(costs, parts, mid)) hi = mid;
    else lo = mid + 1;
  }
  const int64_t cap = lo;
  // Fill greedily from the back so that the leftover slack lands on the first parts, then make sure
  // every part that can get an item gets one (zero-cost items otherwise pile up in one part).
  std::vector<Range> out(static_cast<size_t>(parts));
  int64_t end = n;
  for (int p = parts - 1; p >= 0; --p) {
    int64_t begin = end, sum = 0;
    const int64_t min_left = p;  // leave at least one item for each earlier part when possible
    while (begin > 0 && sum + costs[static_cast<size_t>(begin - 1)] <= cap && (begin - 1 >= min_left || p == 0)) {
      sum += costs[static_cast<size_t>(begin - 1)];
      --begin;
      if (sum > 0 && begin <= min_left) break;
    }
    if (p == 0) begin = 0;
    out[static_cast<size_t>(p)] = {begin, end};
    end = begin;
  }
  return out;
}

std::vector<Range> even_ranges(int64_t n, int64_t parts) {
  parts = std::max<int64_t>(1, std::min(parts, std::max<int64_t>(n, 1)));
  std::vector<Range> out;
  int64_t begin = 0;
  for (int64_t p = 0; p < parts; ++p) {
    const int64_t size = n / parts + (p < n % parts ? 1 : 0);
    out.push_back({begin, begin + size});
    begin += size;
  }
  return out;
}

std::vector<Range> pipeline_layer_ranges(int64_t n_layer, int stages) {
  if (stages < 1 || stages > n_layer)
    throw std::invalid_argument("pipeline_layer_ranges: " + std::to_string(stages) + " stages for " + std::to_string(n_layer) + " layers");
  return even_ranges(n_layer, stages);
}

}  // namespace ts
