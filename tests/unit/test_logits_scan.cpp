// The greedy choice's one-pass scan (model/logits_scan.h) against torch: argmax of the widened logits (first index on
// ties) and isfinite().all(), exactly, in fp32 and bf16, over vocabularies with and without a tail of 16 lanes; and
// choose_tokens, which takes it, throwing NonFiniteError on a non-finite logit either way.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "model/generate.h"
#include "model/logits_scan.h"
#include "model/small_linear.h"

using namespace ts;

namespace {

std::vector<int64_t> torch_argmax(const at::Tensor& logits) {
  const at::Tensor ids = logits.to(at::kFloat).argmax(-1);
  return std::vector<int64_t>(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + ids.numel());
}

}  // namespace

TEST(LogitsScan, IsTorchsArgmaxWithTiesAndTails) {
  for (const auto dtype : {at::kFloat, at::kBFloat16}) {
    if (!decode_kernels_take(dtype)) continue;
    for (const int64_t V : {1, 15, 16, 33, 1000, 32000}) {
      at::manual_seed(V);
      // Values from a small set, so that ties are common (bf16 rounds more of them together).
      at::Tensor logits = (at::randint(-40, 40, {9, V}, at::kLong).to(at::kFloat) / 8).to(dtype);
      logits.select(0, 3).fill_(1.5);  // a row of ties: index 0
      if (V > 20) logits[4][V - 1] = 100;  // the maximum in the tail
      if (V > 20) logits[5][17] = 100, logits[5][V - 2] = 100;  // two maxima: the first
      ASSERT_TRUE(logits_scan_applies(logits));
      std::vector<int64_t> got;
      ASSERT_TRUE(logits_scan(logits, &got));
      EXPECT_EQ(got, torch_argmax(logits)) << at::toString(dtype) << " V " << V;
      // A strided view of rows (the last position of [n, T, V] logits) reads the same.
      const at::Tensor wide = at::cat({logits.unsqueeze(1), logits.unsqueeze(1)}, 1).select(1, 1);
      ASSERT_TRUE(logits_scan(wide, &got));
      EXPECT_EQ(got, torch_argmax(logits));
    }
  }
}

TEST(LogitsScan, FindsEveryNonFiniteValue) {
  for (const auto dtype : {at::kFloat, at::kBFloat16}) {
    if (!decode_kernels_take(dtype)) continue;
    for (const double bad : {NAN, INFINITY, -INFINITY})
      for (const int64_t at_col : {0L, 7L, 31L, 32L, 1000L, 1004L}) {  // in a full chunk and in the tail (V = 1005)
        at::Tensor logits = at::randn({3, 1005}).to(dtype);
        logits[2][at_col] = bad;
        EXPECT_FALSE(logits_scan(logits, nullptr)) << at::toString(dtype) << " " << bad << " at " << at_col;
      }
    EXPECT_TRUE(logits_scan(at::full({2, 40}, 3e38, at::kFloat).to(dtype == at::kFloat ? at::kFloat : at::kBFloat16), nullptr));
  }
}

TEST(LogitsScan, ChooseTokensAgreesWithTheUnfusedPath) {
  GenerateOptions opt;  // greedy
  const std::vector<uint64_t> streams(4, 0);
  const std::vector<int64_t> steps(4, 2);
  for (const auto dtype : {at::kFloat, at::kBFloat16}) {
    at::Tensor logits = at::randn({4, 1, 777}).to(dtype);
    small_linear_enable(true);
    const std::vector<int64_t> fused = choose_tokens(logits, opt, streams, steps);
    small_linear_enable(false);
    EXPECT_EQ(fused, choose_tokens(logits, opt, streams, steps));
    logits[1][0][5] = NAN;
    EXPECT_THROW(choose_tokens(logits, opt, streams, steps), NonFiniteError);
    small_linear_enable(true);
    EXPECT_THROW(choose_tokens(logits, opt, streams, steps), NonFiniteError);
  }
}
