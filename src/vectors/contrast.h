// Contrastive directions: the mean of one set of activation vectors minus the mean of another, in
// fp64. §A.4's feature vector is one (spans of a behaviour against the whole data set), and so are
// ThinkEdit's reasoning-length direction (long minus short traces, §C.2) and the hybrid model's
// directions. Torch-free (thinksteer_formats): stages accumulate fp64 sums and counts per rank,
// add them up over ranks (MPI_Allreduce), and call these on the totals.
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace ts {

// A set of d-vectors summarised by the fp64 sum of its members and their number: the form that
// ranks add up. A view: `sum` must outlive it.
struct SetSum {
  std::span<const double> sum;
  int64_t count = 0;
};

// Owning accumulator of one set's sum and count.
class MeanAccumulator {
 public:
  explicit MeanAccumulator(size_t d) : sum_(d, 0.0) {}
  // Adds one member; std::invalid_argument when its size is not d.
  void add(std::span<const float> v);
  void add(std::span<const double> v);
  std::vector<double>& sum() { return sum_; }  // for an in-place allreduce
  int64_t& count() { return count_; }
  SetSum view() const { return {sum_, count_}; }

 private:
  std::vector<double> sum_;
  int64_t count_ = 0;
};

// sum / count; std::invalid_argument when the set is empty (an empty set has no mean: the caller
// records the skip instead of producing a zero vector).
std::vector<double> set_mean(SetSum set);

// mean(a) - mean(b), divided by its norm when `unit_norm` (std::invalid_argument when the difference
// is exactly zero then: it has no direction). std::invalid_argument when a set is empty or the sizes
// differ.
std::vector<double> contrast_direction(SetSum a, SetSum b, bool unit_norm = false);

double l2_norm(std::span<const double> v);

// `v` scaled to norm `target` (docs/algorithms.md §A.4 step 5 rescales each feature vector to the norm of
// the overall mean); nullopt when v is zero (there is no direction to scale).
std::optional<std::vector<double>> rescale_to_norm(std::span<const double> v, double target);

}  // namespace ts
