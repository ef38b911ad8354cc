// Attention of many queries per row on the CPU (a prefill, T >= 2) without autograd: softmax(q kᵀ / √E + mask) v, where
// torch's CPU flash attention reaches about 100 GFLOP/s against 230+ for the linears, so it took a quarter of a bf16
// prefill (docs/architecture.md "Decode kernels").
//
// One task per (row, kv head, a pair of 16-query blocks from both ends, so causal work is even): the keys the block can see
// are transposed once into 16-key tiles (fp32; bf16 widened exactly) and shared by the group's query heads (GQA); scores
// are 16 queries x 16 keys per tile, one FMA per query per key dimension; softmax and the weighted sum of values in fp32,
// the exponential within 2 fp32 ulps (model/simd.h); bf16 results rounded once. Sums run in an order fixed by E and the
// block's key range, not by the thread count.
#pragma once
#include <ATen/core/Tensor.h>

namespace ts {

// Whether prefill_attention handles this call: attention_kernels_take (model/decode_attention.h) with T >= 2 queries and
// S >= T keys; either causal with S == T and no mask, or not causal with a bool mask [B or 1, 1, T, S] (query t sits at
// slot S - T + t).
bool prefill_attention_applies(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask, bool causal);

// [B, H, T, E] in q's dtype (a view of a [B, T, H, E] tensor). A query whose mask hides every key gets zeros. Requires
// prefill_attention_applies.
at::Tensor prefill_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask, bool causal);

}  // namespace ts
