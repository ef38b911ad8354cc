// partition.h: pure functions, no MPI.
#include "dist/partition.h"

#include <gtest/gtest.h>

#include <numeric>
#include <random>

namespace ts {
namespace {

void expect_cover(const std::vector<Range>& parts, int64_t n) {
  int64_t at = 0;
  for (const Range& r : parts) {
    EXPECT_EQ(r.begin, at);
    EXPECT_GE(r.end, r.begin);
    at = r.end;
  }
  EXPECT_EQ(at, n);
}

int64_t load(std::span<const int64_t> costs, Range r) {
  return std::accumulate(costs.begin() + r.begin, costs.begin() + r.end, int64_t{0});
}

// Exhaustive optimum of the min-max contiguous split for small inputs.
int64_t brute_force_best(std::span<const int64_t> costs, int parts) {
  const int64_t n = static_cast<int64_t>(costs.size());
  std::vector<std::vector<int64_t>> best(static_cast<size_t>(parts + 1), std::vector<int64_t>(static_cast<size_t>(n + 1), INT64_MAX));
  best[0][0] = 0;
  for (int p = 1; p <= parts; ++p)
    for (int64_t j = 0; j <= n; ++j)
      for (int64_t i = 0; i <= j; ++i)
        if (best[static_cast<size_t>(p - 1)][static_cast<size_t>(i)] != INT64_MAX)
          best[static_cast<size_t>(p)][static_cast<size_t>(j)] =
              std::min(best[static_cast<size_t>(p)][static_cast<size_t>(j)],
                       std::max(best[static_cast<size_t>(p - 1)][static_cast<size_t>(i)], load(costs, {i, j})));
  return best[static_cast<size_t>(parts)][static_cast<size_t>(n)];
}

TEST(Partition, CoversInOrderAndIsOptimalOnRandomInputs) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    const int n = static_cast<int>(rng() % 12), parts = 1 + static_cast<int>(rng() % 4);
    std::vector<int64_t> costs(static_cast<size_t>(n));
    for (auto& c : costs) c = static_cast<int64_t>(rng() % 50);
    const auto split = partition_contiguous(costs, parts);
    ASSERT_EQ(split.size(), static_cast<size_t>(parts));
    expect_cover(split, n);
    int64_t worst = 0;
    for (const auto& r : split) worst = std::max(worst, load(costs, r));
    EXPECT_EQ(worst, brute_force_best(costs, parts)) << "trial " << trial;
  }
}

TEST(Partition, EveryPartGetsWorkWhenThereIsEnough) {
  const std::vector<int64_t> costs = {5, 1, 1, 1, 1, 1, 1, 1};
  const auto split = partition_contiguous(costs, 3);
  for (const auto& r : split) EXPECT_GT(r.size(), 0);
  const std::vector<int64_t> two = {3, 3};
  const auto s3 = partition_contiguous(two, 3);  // more parts than items: some are empty, none lost
  expect_cover(s3, 2);
}

TEST(Partition, BoundIsMeanPlusMaxItem) {
  std::mt19937_64 rng(11);
  std::vector<int64_t> costs(1000);
  for (auto& c : costs) c = 20 + static_cast<int64_t>(rng() % 2000);
  const int64_t total = std::accumulate(costs.begin(), costs.end(), int64_t{0});
  for (int parts : {1, 2, 3, 7, 64}) {
    const auto split = partition_contiguous(costs, parts);
    expect_cover(split, 1000);
    for (const auto& r : split) EXPECT_LE(load(costs, r), total / parts + 2020);
  }
}

TEST(Partition, RejectsBadArguments) {
  const std::vector<int64_t> neg = {1, -1};
  EXPECT_THROW(partition_contiguous(neg, 2), std::invalid_argument);
  EXPECT_THROW(partition_contiguous(neg, 0), std::invalid_argument);
}

TEST(EvenRanges, MicroBatchesAreNeverEmpty) {
  EXPECT_EQ(even_ranges(5, 2), (std::vector<Range>{{0, 3}, {3, 5}}));
  EXPECT_EQ(even_ranges(2, 4), (std::vector<Range>{{0, 1}, {1, 2}}));
  EXPECT_EQ(even_ranges(0, 3), (std::vector<Range>{{0, 0}}));
}

TEST(PipelineLayers, EvenSplitFirstStagesTakeTheRemainder) {
  EXPECT_EQ(pipeline_layer_ranges(4, 2), (std::vector<Range>{{0, 2}, {2, 4}}));
  EXPECT_EQ(pipeline_layer_ranges(5, 3), (std::vector<Range>{{0, 2}, {2, 4}, {4, 5}}));
  EXPECT_EQ(pipeline_layer_ranges(3, 1), (std::vector<Range>{{0, 3}}));
  EXPECT_THROW(pipeline_layer_ranges(2, 3), std::invalid_argument);
  EXPECT_THROW(pipeline_layer_ranges(2, 0), std::invalid_argument);
}

}  // namespace
}  // namespace ts
