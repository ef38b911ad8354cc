// Contrastive directions (src/vectors/contrast.h): mean(A) - mean(B) in fp64 from sums and counts,
// unit norm on request, rescaling to a norm (§A.4 step 5), and errors instead of vectors for empty
// sets or zero differences.
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <vector>

#include "vectors/contrast.h"

namespace {

TEST(Contrast, DifferenceOfMeans) {
  ts::MeanAccumulator a(3), b(3);
  a.add(std::vector<float>{1, 2, 3});
  a.add(std::vector<float>{3, 2, 1});
  b.add(std::vector<double>{0, 0, 1});
  b.add(std::vector<double>{0, 2, 1});
  b.add(std::vector<double>{3, 1, 1});
  EXPECT_EQ(a.count(), 2);
  EXPECT_EQ(ts::set_mean(a.view()), (std::vector<double>{2, 2, 2}));
  EXPECT_EQ(ts::contrast_direction(a.view(), b.view()), (std::vector<double>{1, 1, 1}));
  const std::vector<double> unit = ts::contrast_direction(a.view(), b.view(), /*unit_norm=*/true);
  for (double x : unit) EXPECT_NEAR(x, 1 / std::sqrt(3.0), 1e-15);
  EXPECT_NEAR(ts::l2_norm(unit), 1.0, 1e-15);
}

// The sums ranks add up give the same direction as one accumulator over every member.
TEST(Contrast, SumsFromSeveralRanksAddUp) {
  ts::MeanAccumulator all_a(2), all_b(2), rank0_a(2), rank1_a(2), rank0_b(2), rank1_b(2);
  for (int i = 0; i < 10; ++i) {
    const std::vector<double> va = {0.1 * i, 1e8 + i}, vb = {-0.3 * i, 1e8};
    all_a.add(va);
    all_b.add(vb);
    (i % 3 ? rank0_a : rank1_a).add(va);
    (i % 2 ? rank0_b : rank1_b).add(vb);
  }
  std::vector<double> sum_a = rank0_a.sum(), sum_b = rank0_b.sum();
  for (size_t j = 0; j < 2; ++j) {
    sum_a[j] += rank1_a.sum()[j];
    sum_b[j] += rank1_b.sum()[j];
  }
  const std::vector<double> merged = ts::contrast_direction({sum_a, 10}, {sum_b, 10});
  const std::vector<double> one = ts::contrast_direction(all_a.view(), all_b.view());
  EXPECT_NEAR(merged[0], one[0], 1e-12);
  EXPECT_NEAR(merged[1], 4.5, 1e-6);  // fp64 keeps the small difference of two large means
}

TEST(Contrast, RescaleToNorm) {
  const std::vector<double> v = {3, 4};
  EXPECT_EQ(*ts::rescale_to_norm(v, 10.0), (std::vector<double>{6, 8}));
  EXPECT_FALSE(ts::rescale_to_norm(std::vector<double>{0, 0}, 1.0).has_value());
}

TEST(Contrast, EmptySetsAndMismatchesAreErrors) {
  ts::MeanAccumulator a(2), empty(2), wide(3);
  a.add(std::vector<float>{1, 1});
  wide.add(std::vector<float>{1, 1, 1});
  EXPECT_THROW(ts::set_mean(empty.view()), std::invalid_argument);
  EXPECT_THROW(ts::contrast_direction(a.view(), empty.view()), std::invalid_argument);
  EXPECT_THROW(ts::contrast_direction(a.view(), wide.view()), std::invalid_argument);
  EXPECT_THROW(a.add(std::vector<float>{1, 2, 3}), std::invalid_argument);
  EXPECT_THROW(ts::contrast_direction(a.view(), a.view(), /*unit_norm=*/true), std::invalid_argument);  // equal means
  EXPECT_EQ(ts::contrast_direction(a.view(), a.view()), (std::vector<double>{0, 0}));  // without unit norm: zero is the answer
}

}  // namespace
