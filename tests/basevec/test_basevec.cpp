// The pieces of base-vector training: the alignment of two tokenizations (basevec/align.h) and the
// shift, coefficient MLP and losses (basevec/trainer.h) against their formulas written out in double
// precision. Tolerance: 1e-5 absolute on float32 results of values of order 1.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "basevec/align.h"
#include "basevec/trainer.h"

namespace ts::basevec {
namespace {

using Offsets = std::vector<std::pair<int64_t, int64_t>>;

TEST(Align, SamePromptFormatAlignsAtTheStartOfTheThinkingText) {
  // "PQ" prompt, thinking "abcd" at 2: base tokens P|Q|ab|c|d, rollout P|Q|ab|c|d|</think>.
  const std::vector<int32_t> ids = {1, 2, 3, 4, 5}, think = {1, 2, 3, 4, 5, 9};
  const Offsets off = {{0, 1}, {1, 2}, {2, 4}, {4, 5}, {5, 6}}, toff = {{0, 1}, {1, 2}, {2, 4}, {4, 5}, {5, 6}, {6, 14}};
  const TokenAlignment a = align_thinking(ids, off, 2, think, toff, 2, 4);
  ASSERT_TRUE(a.ok) << a.reason;
  EXPECT_EQ(a.anchor, 0);
  EXPECT_EQ(a.base_first, 2);
  EXPECT_EQ(a.think_first, 2);
  EXPECT_EQ(a.n, 3);
}

TEST(Align, DifferentPromptsAnchorAtTheFirstCommonBoundary) {
  // Base: "Q: x\nA:" (7 code points) + "abcd", its last prompt token merges with "a": [..., ":a"(6,8)] then b, cd.
  // Rollout: a 3-token chat prompt (3 code points) + "abcd" as a|b|cd.
  const std::vector<int32_t> base = {10, 11, 12, 13, 20, 21}, think = {30, 31, 32, 40, 20, 21};
  const Offsets boff = {{0, 2}, {2, 4}, {4, 5}, {5, 8}, {8, 9}, {9, 11}};
  const Offsets toff = {{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 7}};
  const TokenAlignment a = align_thinking(base, boff, 7, think, toff, 3, 4);
  ASSERT_TRUE(a.ok) << a.reason;
  EXPECT_EQ(a.anchor, 1);
  EXPECT_EQ(a.base_first, 4);
  EXPECT_EQ(a.think_first, 4);
  EXPECT_EQ(a.n, 2);
}

TEST(Align, DifferentTokensAfterTheAnchorAreRefused) {
  const std::vector<int32_t> ids = {1, 2, 3, 4}, think = {1, 2, 3, 7};
  const Offsets off = {{0, 1}, {1, 2}, {2, 3}, {3, 4}};
  const TokenAlignment a = align_thinking(ids, off, 1, think, off, 1, 3);
  EXPECT_FALSE(a.ok);
  EXPECT_NE(a.reason.find("differ"), std::string::npos) << a.reason;
}

TEST(Losses, TopkCrossEntropyAndKlFollowTheirFormulas) {
  at::manual_seed(0);
  const at::Tensor logits = at::randn({3, 10});
  const at::Tensor ids = at::tensor(std::vector<int32_t>{4, 1, 7, 0, 2, 3, 9, 8, 5, 6, 1, 2}, at::kInt).reshape({3, 4});
  const at::Tensor logp = at::randn({3, 4}).log_softmax(1);
  const at::Tensor ce = topk_ce(logits, ids, logp, 3), kl = topk_kl(logits, ids, logp, 3), full = full_ce(logits, ids, logp);
  for (int64_t r = 0; r < 3; ++r) {
    double zt = 0, zs = 0;
    for (int64_t j = 0; j < 3; ++j) zt += std::exp(logp[r][j].item<double>()), zs += std::exp(logits[r][ids[r][j].item<int64_t>()].item<double>());
    double want_ce = 0, want_kl = 0, want_full = 0, zall = 0;
    for (int64_t v = 0; v < 10; ++v) zall += std::exp(logits[r][v].item<double>());
    for (int64_t j = 0; j < 3; ++j) {
      const double p = std::exp(logp[r][j].item<double>()) / zt, q = std::exp(logits[r][ids[r][j].item<int64_t>()].item<double>()) / zs;
      want_ce -= p * std::log(q), want_kl += p * std::log(p / q);
    }
    for (int64_t j = 0; j < 4; ++j)
      want_full -= std::exp(logp[r][j].item<double>()) * std::log(std::exp(logits[r][ids[r][j].item<int64_t>()].item<double>()) / zall);
    EXPECT_NEAR(ce[r].item<double>(), want_ce, 1e-5);
    EXPECT_NEAR(kl[r].item<double>(), want_kl, 1e-5);
    EXPECT_NEAR(full[r].item<double>(), want_full, 1e-5);
  }
  EXPECT_NEAR(hard_ce(logits, at::tensor(std::vector<int64_t>{2, 0, 9}))[1].item<double>(), -logits[1].log_softmax(0)[0].item<double>(), 1e-6);
}

TEST(Shift, AddsTheMlpScaledVectorOfEachRowsCategoryOnlyAtItsRows) {
  at::manual_seed(1);
  const at::Tensor x = at::randn({2, 3, 4}), V = at::randn({2, 4});
  const CoefMlp mlp = CoefMlp::init(4, 5, 2, 3);
  const HookFn f = shift_fn({at::tensor(std::vector<int64_t>{1, 5}), at::tensor(std::vector<int64_t>{1, 0})}, V, {}, mlp);
  const at::Tensor y = f(x, HookContext{});
  const at::Tensor flat = x.reshape({6, 4}), out = y.reshape({6, 4});
  for (int64_t row : {0, 2, 3, 4}) EXPECT_TRUE(at::equal(out[row], flat[row]));
  for (const auto& [row, cat] : {std::pair<int64_t, int64_t>{1, 1}, {5, 0}}) {
    const at::Tensor h = flat[row];
    const at::Tensor z = at::gelu(at::mv(mlp.w1, h) + mlp.b1);
    const double alpha = std::log1p(std::exp((z * mlp.w2[cat]).sum().item<double>() + mlp.b2[cat].item<double>()));
    EXPECT_NEAR((out[row] - flat[row] - alpha * V[cat]).abs().max().item<double>(), 0.0, 1e-5);
  }
  const at::Tensor r = same_norm_random(V, 9);
  EXPECT_NEAR((r.norm(2, 1) - V.norm(2, 1)).abs().max().item<double>(), 0.0, 1e-5);
}

}  // namespace
}  // namespace ts::basevec
