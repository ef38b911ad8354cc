// The CPU attention kernels (model/decode_attention.h, model/prefill_attention.h) against a float64
// softmax(q kᵀ / √E + mask) v of the same values, and against torch's SDPA.
// Tolerance (symmetric): |y - ref| <= 2e-5 * sum_j p_j |v_j| + 1e-7, where p are the reference weights: scores off by
// a few fp32 ulps of sum |q_i k_i| / √E, the exponential by 2 ulps, and at most 200 weights summed in fp32 (200 *
// 2^-24 = 1.2e-5 in the worst order); bf16 inputs are widened exactly for both, and the result rounds to bf16 once:
// + 2^-8 |ref|.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include "model/decode_attention.h"
#include "model/kv_cache.h"
#include "model/prefill_attention.h"
#include "model/small_linear.h"

using namespace ts;

namespace {

// q [B, H, T, E], k and v [B, K, S, E], visible [B, S] (T = 1) or [B, T, S] bool: float64 reference and
// sum_j p_j |v_j| per output, [B, H, T, E].
std::pair<at::Tensor, at::Tensor> reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& visible) {
  const int64_t H = q.size(1), K = k.size(1);
  const at::Tensor kd = k.to(at::kDouble).repeat_interleave(H / K, 1), vd = v.to(at::kDouble).repeat_interleave(H / K, 1);
  at::Tensor scores = at::matmul(q.to(at::kDouble), kd.transpose(2, 3)) / std::sqrt(static_cast<double>(q.size(3)));  // [B, H, T, S]
  const at::Tensor vis = visible.dim() == 2 ? visible.unsqueeze(1) : visible;                                          // [B, T, S]
  scores = scores.masked_fill(vis.logical_not().unsqueeze(1), -INFINITY);
  const at::Tensor p = at::softmax(scores, -1);
  return {at::matmul(p, vd), at::matmul(p, vd.abs())};
}

void expect_close_to(const at::Tensor& y_in, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& visible) {
  const at::Tensor y = y_in.to(at::kDouble);
  const auto [ref, mag] = reference(q, k, v, visible);
  const double rel = q.scalar_type() == at::kBFloat16 ? 1.0 / 256 : 0.0;
  const at::Tensor bound = 2e-5 * mag + rel * ref.abs() + 1e-7;
  EXPECT_TRUE((y - ref).abs().le(bound).all().item<bool>())
      << at::toString(q.scalar_type()) << " q " << q.sizes() << " k " << k.sizes() << ": max |diff| " << (y - ref).abs().max().item<double>()
      << ", max excess " << ((y - ref).abs() - bound).max().item<double>();
}

void expect_close(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask, const at::Tensor& visible) {
  ASSERT_TRUE(decode_attention_applies(q, k, v, mask, false));
  expect_close_to(decode_attention(q, k, v, mask), q, k, v, visible);
}

bool have_kernel(at::ScalarType t) { return decode_kernels_take(t); }

}  // namespace

// Strided views as the forward passes them: q a transpose of [B, 1, H+K, E], k and v the first S slots of a larger cache.
// Groups of 1 to 9 query heads per KV head take every blocking of the heads (scores four at a time, sums eight at a time).
TEST(DecodeAttention, MatchesFloat64WithAndWithoutAMask) {
  at::manual_seed(0);
  for (at::ScalarType t : {at::kFloat, at::kBFloat16}) {
    if (!have_kernel(t)) continue;
    for (int64_t E : {16, 48, 64, 128})
      for (int64_t S : {1, 5, 37, 200})
        for (const auto& [H, K] : {std::pair<int64_t, int64_t>{6, 2}, {4, 4}, {7, 1}, {18, 2}}) {
          const int64_t B = 3;
          const at::Tensor q = (at::randn({B, 1, H + K, E}) * 2).to(t).narrow(2, 0, H).transpose(1, 2);
          const at::Tensor k = at::randn({B, K, S + 7, E}).to(t).narrow(2, 0, S), v = at::randn({B, K, S + 7, E}).to(t).narrow(2, 0, S);
          at::Tensor visible = at::rand({B, S}).lt(0.7);
          visible.select(1, S - 1).fill_(true);  // the new token's own key, always visible
          expect_close(q, k, v, at::Tensor(), at::ones({B, S}, at::kBool));
          expect_close(q, k, v, visible.view({B, 1, 1, S}), visible);
          expect_close(q, k, v, visible.narrow(0, 0, 1).view({1, 1, 1, S}), visible.narrow(0, 0, 1).expand({B, S}));
        }
  }
}

TEST(DecodeAttention, AgreesWithTorchSdpa) {
  if (!have_kernel(at::kFloat)) GTEST_SKIP() << "no AVX-512 on this CPU: the forward uses torch's SDPA";
  at::manual_seed(1);
  const at::Tensor q = at::randn({4, 12, 1, 64}), k = at::randn({4, 2, 150, 64}), v = at::randn({4, 2, 150, 64});
  const at::Tensor mask = at::rand({4, 1, 1, 150}).lt(0.8).logical_or(at::arange(150).eq(149));
  const at::Tensor sdpa = at::scaled_dot_product_attention(q, k, v, mask, 0.0, false, std::nullopt, /*enable_gqa=*/true);
  EXPECT_TRUE(at::allclose(decode_attention(q, k, v, mask), sdpa, 1e-5, 1e-6)) << (decode_attention(q, k, v, mask) - sdpa).abs().max();
}

// A row's result does not depend on where its keys sit, on the other rows or on the threads: the same bits alone
// (its keys in slots 0..n-1, no mask) and in a padded batch (its keys spread over a longer cache, a mask hiding the rest).
TEST(DecodeAttention, ARowIsTheSameAloneAndInAPaddedBatch) {
  at::manual_seed(2);
  for (at::ScalarType t : {at::kFloat, at::kBFloat16}) {
    if (!have_kernel(t)) continue;
    const int64_t n = 45, S = 90, E = 64;
    const at::Tensor slots = std::get<0>(at::randperm(S).narrow(0, 0, n).sort());  // where the row's keys sit in the batch
    const at::Tensor q = at::randn({3, 6, 1, E}).to(t), k = at::randn({3, 2, S, E}).to(t), v = at::randn({3, 2, S, E}).to(t);
    const at::Tensor mask = at::zeros({3, 1, 1, S}, at::kBool);
    mask[1][0][0].index_fill_(0, slots, true);
    mask.select(0, 0).fill_(true);
    mask.select(0, 2).fill_(true);
    const at::Tensor batch = decode_attention(q, k, v, mask);
    const int threads = at::get_num_threads();
    at::set_num_threads(1);
    const at::Tensor alone = decode_attention(q.narrow(0, 1, 1), k.narrow(0, 1, 1).index_select(2, slots), v.narrow(0, 1, 1).index_select(2, slots), at::Tensor());
    at::set_num_threads(threads);
    EXPECT_TRUE(at::equal(alone[0], batch[1])) << at::toString(t);
  }
}

// The decode step's in-place form (Transformer::decode_step_attention): the key and value written straight into the cache
// and attention read from the rotated rows and the cache give the bits of the tensor form (KVCache::update / update_rows,
// then decode_attention), in either dtype, at one slot for all rows and at each row's own slot under a mask.
TEST(DecodeAttention, InPlaceFromTheCacheIsTheTensorFormBitForBit) {
  at::manual_seed(3);
  for (at::ScalarType t : {at::kFloat, at::kBFloat16}) {
    if (!have_kernel(t)) continue;
    const int64_t B = 3, H = 6, K = 2, E = 32, cap = 20, L = 1;
    const auto opts = at::TensorOptions().dtype(t);
    for (bool own_slots : {false, true}) {
      KVCache tensors(L, B, K, cap, E, opts), in_place(L, B, K, cap, E, opts);
      for (KVCache* c : {&tensors, &in_place}) {  // the same history in both
        at::manual_seed(4);
        c->update(0, 0, at::randn({B, K, 9, E}).to(t), at::randn({B, K, 9, E}).to(t));
      }
      const at::Tensor qkv = at::randn({B, 1, (H + 2 * K) * E}).to(t);
      const at::Tensor qk = qkv.narrow(-1, 0, (H + K) * E).view({B, 1, H + K, E}).contiguous();  // as rotated
      const at::Tensor slots = at::tensor(std::vector<int64_t>{9, 4, 7});
      const int64_t start = 9, end = start + 1;
      const at::Tensor mask = own_slots ? (at::rand({B, 1, 1, end}) > 0.3).logical_or(at::arange(end).eq(slots.view({B, 1, 1, 1}))) : at::Tensor();
      const at::Tensor q = qk.narrow(2, 0, H).transpose(1, 2), k = qk.narrow(2, H, K).transpose(1, 2);
      const at::Tensor v = qkv.narrow(-1, (H + K) * E, K * E).view({B, 1, K, E}).transpose(1, 2);
      auto [kc, vc] = own_slots ? tensors.update_rows(0, slots, end, k, v) : tensors.update(0, start, k, v);
      const at::Tensor want = decode_attention(q, kc, vc, mask).transpose(1, 2);
      ASSERT_TRUE(decode_attention_cached_applies(qk, H, in_place.keys(0), in_place.values(0), end, mask));
      const auto* qk_bytes = static_cast<const char*>(qk.data_ptr());
      const auto* qkv_bytes = static_cast<const char*>(qkv.data_ptr());
      const int64_t elt = qk.element_size();
      ASSERT_TRUE(in_place.store_token(0, start, own_slots ? slots : at::Tensor(), end, B, qk_bytes + H * E * elt, (H + K) * E,
                                       qkv_bytes + (H + K) * E * elt, (H + 2 * K) * E));
      EXPECT_TRUE(at::equal(in_place.keys(0), tensors.keys(0)) && at::equal(in_place.values(0), tensors.values(0))) << at::toString(t);
      EXPECT_TRUE(at::equal(decode_attention_cached(qk, H, in_place.keys(0), in_place.values(0), end, mask), want))
          << at::toString(t) << (own_slots ? " own slots" : " one slot");
    }
  }
}

TEST(DecodeAttention, AppliesOnlyWhereItShould) {
  const at::Tensor q = at::zeros({2, 4, 1, 32}), k = at::zeros({2, 2, 10, 32});
  const bool fp32 = have_kernel(at::kFloat);
  EXPECT_EQ(decode_attention_applies(q, k, k, at::Tensor(), false), fp32);
  EXPECT_FALSE(decode_attention_applies(q, k, k, at::Tensor(), /*causal=*/true));
  EXPECT_FALSE(decode_attention_applies(at::zeros({2, 4, 2, 32}), k, k, at::Tensor(), false));  // two queries: SDPA
  EXPECT_FALSE(decode_attention_applies(at::zeros({2, 3, 1, 32}), k, k, at::Tensor(), false));  // 3 heads over 2 kv heads
  EXPECT_FALSE(decode_attention_applies(at::zeros({2, 4, 1, 24}), at::zeros({2, 2, 10, 24}), at::zeros({2, 2, 10, 24}), at::Tensor(), false));
  EXPECT_FALSE(decode_attention_applies(q, k, k, at::zeros({2, 1, 1, 10}), false));  // an additive float mask: SDPA
  EXPECT_FALSE(decode_attention_applies(q.requires_grad_(), k, k, at::Tensor(), false));
  EXPECT_FALSE(decode_attention_applies(q.to(at::kDouble), k.to(at::kDouble), k.to(at::kDouble), at::Tensor(), false));
  small_linear_enable(false);
  EXPECT_FALSE(decode_attention_applies(at::zeros({2, 4, 1, 32}), k, k, at::Tensor(), false));
  small_linear_enable(true);
}

// Causal from slot 0, a left-padded batch's mask, and queries after a cached prefix (slot_start > 0), with partial blocks of
// 16 queries and head widths that take each path of the weighted sum (E/16 = 1, 3, 4, 8).
TEST(PrefillAttention, MatchesFloat64CausalAndMasked) {
  at::manual_seed(3);
  for (at::ScalarType t : {at::kFloat, at::kBFloat16}) {
    if (!have_kernel(t)) continue;
    for (int64_t E : {16, 48, 64, 128})
      for (int64_t T : {2, 17, 40}) {
        const int64_t B = 3, H = 4, K = 2;
        const at::Tensor q = (at::randn({B, T, H + K, E}) * 2).to(t).narrow(2, 0, H).transpose(1, 2);
        const at::Tensor k = at::randn({B, K, T + 5, E}).to(t), v = at::randn({B, K, T + 5, E}).to(t);
        const at::Tensor kc = k.narrow(2, 0, T), vc = v.narrow(2, 0, T);
        const at::Tensor causal = at::ones({T, T}, at::kBool).tril().expand({B, T, T});
        ASSERT_TRUE(prefill_attention_applies(q, kc, vc, at::Tensor(), true));
        expect_close_to(prefill_attention(q, kc, vc, at::Tensor(), true), q, kc, vc, causal);
        // left padding: row b's first 3b slots are padding; each query sees the valid keys up to its own slot, and a padding
        // query its own slot only (as the forward builds the mask)
        at::Tensor valid = at::ones({B, T}, at::kBool);
        for (int64_t b = 0; b < B; ++b) valid[b].narrow(0, 0, std::min<int64_t>(3 * b, T - 1)).fill_(false);
        const at::Tensor mask = causal.logical_and(valid.unsqueeze(1)).logical_or(at::eye(T, at::kBool));
        expect_close_to(prefill_attention(q, kc, vc, mask.unsqueeze(1), false), q, kc, vc, mask);
        // T queries at slots 5..T+4 after 5 cached keys
        const at::Tensor later = at::ones({T, T + 5}, at::kBool).tril(5).expand({B, T, T + 5});
        expect_close_to(prefill_attention(q, k, v, later.narrow(0, 0, 1).unsqueeze(1), false), q, k, v, later);
      }
  }
}

TEST(PrefillAttention, AgreesWithTorchSdpa) {
  if (!have_kernel(at::kFloat)) GTEST_SKIP() << "no AVX-512 on this CPU: the forward uses torch's SDPA";
  at::manual_seed(4);
  const at::Tensor q = at::randn({2, 12, 100, 64}), k = at::randn({2, 2, 100, 64}), v = at::randn({2, 2, 100, 64});
  const at::Tensor sdpa = at::scaled_dot_product_attention(q, k, v, std::nullopt, 0.0, /*is_causal=*/true, std::nullopt, /*enable_gqa=*/true);
  const at::Tensor y = prefill_attention(q, k, v, at::Tensor(), true);
  EXPECT_TRUE(at::allclose(y, sdpa, 1e-5, 1e-6)) << (y - sdpa).abs().max();
}

TEST(PrefillAttention, AppliesOnlyWhereItShould) {
  const at::Tensor q = at::zeros({2, 4, 8, 32}), k = at::zeros({2, 2, 8, 32});
  const bool fp32 = have_kernel(at::kFloat);
  EXPECT_EQ(prefill_attention_applies(q, k, k, at::Tensor(), true), fp32);
  EXPECT_EQ(prefill_attention_applies(q, k, k, at::ones({1, 1, 8, 8}, at::kBool), false), fp32);
  EXPECT_FALSE(prefill_attention_applies(q, k, k, at::Tensor(), false));                                   // no mask, not causal
  EXPECT_FALSE(prefill_attention_applies(q, at::zeros({2, 2, 9, 32}), at::zeros({2, 2, 9, 32}), at::Tensor(), true));  // causal needs S == T
  EXPECT_FALSE(prefill_attention_applies(at::zeros({2, 4, 1, 32}), k, k, at::ones({1, 1, 1, 8}, at::kBool), false));  // one query: decode
  EXPECT_FALSE(prefill_attention_applies(q, k, k, at::zeros({1, 1, 8, 8}), false));                        // an additive float mask
  EXPECT_FALSE(prefill_attention_applies(q.clone().requires_grad_(), k, k, at::Tensor(), true));             // autograd: SDPA
}
