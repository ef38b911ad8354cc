// Behaviour fractions of one trace (docs/algorithms.md §A.6, docs/decisions.md "Behaviour fraction") and the
// paired bootstrap that `reduce` puts around their changes.
//   token share (S1, the default): tokens in spans labelled X / tokens in spans of any steerable
//               label (backtracking, uncertainty-estimation, example-testing, adding-knowledge;
//               initializing and deduction are left out of the denominator); 0 when that is 0;
//               NaN for labels that are not steerable.
//   span share  (S2, A.8): spans labelled X / spans of all labels; 0 when there are none.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace ts {

// The four labels the steering paper steers (§A.5), whose tokens form the token-share denominator.
const std::vector<std::string>& steerable_labels();
// 1 for each of `labels` that is steerable.
std::vector<uint8_t> steerable_mask(const std::vector<std::string>& labels);

// Per-label totals of one trace, in the order of the label list they were counted against.
struct BehaviourCounts {
  std::vector<int64_t> tokens;  // tokens in spans of the label
  std::vector<int64_t> spans;   // spans of the label
};
std::vector<double> token_share(const BehaviourCounts& c, const std::vector<uint8_t>& steerable);
std::vector<double> span_share(const BehaviourCounts& c);

// Mean of `values` and its percentile bootstrap interval at `level` (0.95: the 2.5th and 97.5th
// percentiles of `resamples` means of n values drawn with replacement). Deterministic in `seed`
// (splitmix64 streams, no std:: distributions). NaN values are left out; all-NaN gives NaNs.
struct Interval {
  double mean = 0, lo = 0, hi = 0;
  int64_t n = 0;
};
Interval bootstrap_mean(std::span<const double> values, int64_t resamples, double level, uint64_t seed);
// The ratio of two means over the same items, mean(num) / mean(den), with its percentile bootstrap
// interval (items resampled jointly; resamples whose mean(den) is 0 are left out). Items where either
// value is NaN are left out. The hybrid's gap recovered: num = hybrid − base, den = thinking − base.
Interval bootstrap_ratio(std::span<const double> num, std::span<const double> den, int64_t resamples, double level, uint64_t seed);

}  // namespace ts
