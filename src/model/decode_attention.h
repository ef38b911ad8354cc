// Attention of one new token per row against its keys and values on the CPU: the decode step's
// softmax(q kᵀ / √E) v, where torch's SDPA spends more on the call than on the arithmetic (docs/architecture.md
// "Decode kernels").
//
// One task per (row, kv head) reads that row's keys and values once for all the query heads that share them
// (GQA), widening bf16 exactly to fp32; keys the mask hides are skipped, not multiplied by zero.
//
// Numerics: scores, softmax and the weighted sum are fp32, the exponential a polynomial within 2 fp32 ulps, the
// sums in an order fixed by E and by the row's visible keys taken in slot order, never by where those keys sit,
// the other rows or the thread count: a row's result is the same bits alone or in a batch, padded or not. bf16:
// the result is rounded to bf16 once (as the fp32 SDPA of widened inputs that it replaces).
#pragma once
#include <ATen/core/Tensor.h>

namespace ts {

// What both CPU attention kernels (this one and model/prefill_attention.h) ask of their operands: the decode kernels on
// (small_linear_enable), CPU, q, k, v all fp32 (AVX-512) or all bf16 (AVX-512 BF16), q [B, H, T, E], k and v [B, K, S, E]
// with H a multiple of K and E a multiple of 16 up to 256, each contiguous in its last dimension, no autograd; mask
// undefined or bool [B or 1, 1, T, S].
bool attention_kernels_take(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask);

// Whether decode_attention handles this call: attention_kernels_take with one query (T = 1), mask undefined (every
// key visible) or [B or 1, 1, 1, S], not causal.
bool decode_attention_applies(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask, bool causal);

// [B, H, 1, E] in q's dtype (a view of a [B, 1, H, E] tensor, so the forward's transpose back is free). A row whose
// mask hides every key gets zeros. Requires decode_attention_applies.
at::Tensor decode_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask);

// decode_attention with q read in place from a decode step's rotated rows `rows` [B, 1, n, E] (contiguous; heads [0, H))
// and k, v from a KV cache's [B, K, capacity, E] tensors, slots [0, S): the same kernel on the same values, so the same
// bits, without the views, KV copies and transposes the tensor form costs (15 dispatches a layer). [B, 1, H, E].
bool decode_attention_cached_applies(const at::Tensor& rows, int64_t H, const at::Tensor& k_cache, const at::Tensor& v_cache, int64_t S,
                                     const at::Tensor& mask);
at::Tensor decode_attention_cached(const at::Tensor& rows, int64_t H, const at::Tensor& k_cache, const at::Tensor& v_cache, int64_t S,
                                   const at::Tensor& mask);

}  // namespace ts
