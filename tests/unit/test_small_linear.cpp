// The decode kernel (model/small_linear.h) against a float64 reference of x W^T + b.
// Tolerances (symmetric): fp32 |y - ref| <= 1e-6 * sum_k |x_k w_k| + 1e-6 (the fp32 rounding of K products
// summed in some order, bounded by K * 2^-24 relative to the sum of magnitudes; K <= 1000 here);
// bf16 operands: the reference takes the same bf16 values widened exactly, so only the fp32 accumulation
// and the final rounding to bf16 differ: |y - ref| <= 2^-8 |ref| + 1e-6 * sum_k |x_k w_k| + 1e-6.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include "model/small_linear.h"

using namespace ts;

namespace {

void expect_close(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, double rel_out) {
  // small_linear computes any row count; small_linear_applies says when the forward pass sends it there.
  const at::Tensor y = small_linear(x, w, b).to(at::kDouble);
  const at::Tensor xd = x.to(at::kDouble), wd = w.to(at::kDouble);
  at::Tensor ref = at::matmul(xd, wd.t());
  if (b.defined()) ref = ref + b.to(at::kDouble);
  const at::Tensor mag = at::matmul(xd.abs(), wd.abs().t());
  const at::Tensor bound = rel_out * ref.abs() + 1e-6 * mag + 1e-6;
  EXPECT_TRUE((y - ref).abs().le(bound).all().item<bool>())
      << "shape x " << x.sizes() << " w " << w.sizes() << ": max |diff| " << (y - ref).abs().max().item<double>();
}

bool have_kernel(at::ScalarType t) { return small_linear_applies(at::zeros({1, 32}, t), at::zeros({4, 32}, t)); }

}  // namespace

TEST(SmallLinear, MatchesFloat64EveryRowCountAndTail) {
  if (!have_kernel(at::kFloat)) GTEST_SKIP() << "no AVX-512 on this CPU: the forward uses at::linear";
  at::manual_seed(0);
  for (int64_t K : {16, 37, 768})
    for (int64_t m = 1; m <= SMALL_LINEAR_MAX_ROWS; m += (m < 4 ? 1 : 5)) {
      const at::Tensor x = at::randn({m, K}), w = at::randn({67, K}), b = at::randn({67});
      expect_close(x, w, b, 0.0);
      expect_close(x.view({1, m, K}), w, at::Tensor(), 0.0);  // [B, T, K] and no bias
    }
}

TEST(SmallLinear, Bfloat16MatchesFloat64OfTheSameValues) {
  if (!have_kernel(at::kBFloat16)) GTEST_SKIP() << "no AVX-512 BF16 on this CPU: the forward uses at::linear";
  at::manual_seed(1);
  for (int64_t K : {32, 45, 768})
    for (int64_t m : {1, 3, 8, 16, 41, 64}) {
      const auto bf = at::TensorOptions().dtype(at::kBFloat16);
      expect_close(at::randn({m, K}).to(bf), at::randn({50, K}).to(bf), at::randn({50}).to(bf), 1.0 / 256);
    }
}

// A row's result does not depend on the other rows or on the thread count: the same bits alone and in a batch
// (alone, its block's sums are reduced one at a time; in full blocks of 4 rows, by the transpose tree; fp32 alone through
// row1_f32, in 2-4 rows through one sweep of both chains, in blocks of 4 x 4 through a sweep per chain; bf16 in single
// weight rows up to 8 rows of x).
TEST(SmallLinear, ARowIsTheSameAloneAndInABatch) {
  at::manual_seed(2);
  for (at::ScalarType t : {at::kFloat, at::kBFloat16}) {
    if (!have_kernel(t)) continue;
    const int64_t rows = SMALL_LINEAR_MAX_ROWS;
    for (int64_t K : {20, 300, 310, 768}) {  // fp32 tail in the odd chain, the even one, again the odd one, no tail
      const at::Tensor x = at::randn({rows, K}).to(t), w = at::randn({257, K}).to(t), b = at::randn({257}).to(t);
      const at::Tensor all = small_linear(x, w, b);
      const int threads = at::get_num_threads();
      at::set_num_threads(1);
      for (int64_t m : {int64_t{0}, int64_t{5}, int64_t{11}, rows - 1}) {
        EXPECT_TRUE(at::equal(small_linear(x.narrow(0, m, 1), w, b)[0], all[m])) << at::toString(t) << " K " << K << " row " << m;
        if (m + 3 <= rows) {  // the streaming path for 2-4 rows
          EXPECT_TRUE(at::equal(small_linear(x.narrow(0, m, 3), w, b)[0], all[m])) << at::toString(t) << " K " << K << " rows " << m << "+3";
        }
        if (m + 7 <= rows) {  // bf16 streams up to 8 rows (a group of 4 and one of 3), fp32 takes 4 x 4 blocks
          const at::Tensor seven = small_linear(x.narrow(0, m, 7), w, b);
          EXPECT_TRUE(at::equal(seven[0], all[m]) && at::equal(seven[6], all[m + 6])) << at::toString(t) << " K " << K << " rows " << m << "+7";
        }
      }
      at::set_num_threads(threads);
    }
  }
}

// The residual add fused into the kernel (the block's x + attn_out, x + mlp_out) is torch's add of the two, bit for bit,
// in both dtypes, with N not a multiple of 16 (the masked tail) and rows in a batch; ts::linear falls back to the two ops
// where the residual does not fit (here: not contiguous) with the same bits.
TEST(SmallLinear, TheFusedResidualIsTorchsAdd) {
  at::manual_seed(3);
  for (at::ScalarType t : {at::kFloat, at::kBFloat16}) {
    if (!have_kernel(t)) continue;
    for (int64_t rows : {1, 3, 8, 17}) {
      const at::Tensor x = at::randn({rows, 1, 96}).to(t), w = at::randn({263, 96}).to(t), b = at::randn({263}).to(t);
      const at::Tensor r = (10 * at::randn({rows, 1, 263})).to(t);
      const at::Tensor two_ops = r + small_linear(x, w, b);
      ASSERT_TRUE(small_linear_takes_residual(x, w, r));
      EXPECT_TRUE(at::equal(small_linear(x, w, b, r), two_ops)) << at::toString(t) << " rows " << rows;
      EXPECT_TRUE(at::equal(linear(x, w, b, r), two_ops)) << at::toString(t) << " rows " << rows;
      const at::Tensor r_strided = at::stack({r, r}, -1).select(-1, 0);  // every other value: stride 2
      EXPECT_FALSE(small_linear_takes_residual(x, w, r_strided));
      EXPECT_TRUE(at::equal(linear(x, w, b, r_strided), two_ops)) << at::toString(t) << " rows " << rows << " (strided)";
    }
  }
}

TEST(SmallLinear, AppliesOnlyWhereItShould) {
  const at::Tensor w = at::zeros({8, 32});
  EXPECT_FALSE(small_linear_applies(at::zeros({SMALL_LINEAR_MAX_ROWS + 1, 32}), w));  // a GEMM: at::linear
  EXPECT_FALSE(small_linear_applies(at::zeros({SMALL_LINEAR_MAX_ROWS + 1, 32}, at::kBFloat16), w.to(at::kBFloat16)));
  EXPECT_FALSE(small_linear_applies(at::zeros({1, 32}, at::kDouble), w.to(at::kDouble)));
  EXPECT_FALSE(small_linear_applies(at::zeros({1, 32}).requires_grad_(), w));  // autograd needs at::linear
  EXPECT_FALSE(small_linear_applies(at::zeros({1, 32}), at::zeros({32, 8}).t()));  // w not contiguous
  small_linear_enable(false);
  EXPECT_FALSE(small_linear_applies(at::zeros({1, 32}), w));
  small_linear_enable(true);
}

// The fused RMSNorm of the decode rows against HF's unfused form (normalise in fp32, round to x's dtype, scale).
// Tolerances (symmetric): fp32 |y - ref| <= 1e-6 |ref| + 1e-7 (a sum of squares in another order moves r by a
// few ulps); bf16: |y - ref| <= 2^-6 |ref|, two bf16 ulps (r a few fp32 ulps off can move the first rounding by
// one bf16 ulp, the scale rounds again, and the result may cross into the next binade: measured 0.03125 at ~4).
TEST(SmallRmsNorm, MatchesTheUnfusedForm) {
  at::manual_seed(4);
  for (at::ScalarType t : {at::kFloat, at::kBFloat16})
    for (int64_t D : {16, 37, 768})
      for (int64_t m : {1, 5, 16}) {
        const at::Tensor x = (at::randn({m, D}) * 3).to(t), w = (at::randn({D}) + 1).to(t);
        if (!small_rms_norm_applies(x, w)) continue;  // no AVX-512 (BF16) here: the forward keeps the unfused form
        const at::Tensor xf = x.to(at::kFloat);
        const at::Tensor ref = (w * (xf * at::rsqrt(xf.pow(2).mean(-1, true) + 1e-6)).to(t)).to(at::kDouble);
        const at::Tensor y = small_rms_norm(x, w, 1e-6).to(at::kDouble);
        const at::Tensor bound = t == at::kFloat ? 1e-6 * ref.abs() + 1e-7 : ref.abs() / 64;
        EXPECT_TRUE((y - ref).abs().le(bound).all().item<bool>()) << at::toString(t) << " D " << D << " rows " << m << " max excess "
                                                                  << ((y - ref).abs() - bound).max().item<double>() << " max diff " << (y - ref).abs().max().item<double>();
        EXPECT_TRUE(small_rms_norm(x.narrow(0, 0, 1), w, 1e-6).equal(small_rms_norm(x, w, 1e-6).narrow(0, 0, 1)));  // a row alone = in a batch
      }
}

// The fused rotary embedding of the decode rows gives exactly the bits of HF's unfused form, on a strided view of the
// fused qkv projection as the forward passes it.
TEST(SmallRope, IsTheUnfusedFormBitForBit) {
  at::manual_seed(5);
  for (at::ScalarType t : {at::kFloat, at::kBFloat16})
    for (int64_t E : {16, 32, 48, 64, 128}) {  // E / 2 a multiple of 16 or not: 16 lanes at a time, or scalar
      const int64_t B = 5, T = 1, n = 6;
      const at::Tensor qkv = (at::randn({B, T, (n + 2) * E}) * 3).to(t);
      const at::Tensor x = qkv.narrow(-1, 0, n * E).view({B, T, n, E});
      const at::Tensor angles = at::rand({B, T, 1, E}) * 100;
      const at::Tensor cos = angles.cos().to(t), sin = angles.sin().to(t);
      if (!small_rope_applies(x, cos, sin)) continue;  // no AVX-512 (BF16) here: the forward keeps the unfused form
      const int64_t half = E / 2;
      const at::Tensor rot = at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
      EXPECT_TRUE(at::equal(small_rope(x, cos, sin), x * cos + rot * sin)) << at::toString(t) << " E " << E;
    }
  EXPECT_FALSE(small_rope_applies(at::zeros({SMALL_LINEAR_MAX_ROWS + 1, 1, 2, 16}), at::zeros({SMALL_LINEAR_MAX_ROWS + 1, 1, 1, 16}),
                                  at::zeros({SMALL_LINEAR_MAX_ROWS + 1, 1, 1, 16})));  // a prefill: the unfused form
}
