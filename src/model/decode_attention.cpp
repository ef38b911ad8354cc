#include "model/decode_attention.h"

#include "model/simd.h"
#include "model/small_linear.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <immintrin.h>

// As in small_linear.cpp: GCC 12's _mm512_reduce_* trip -W(maybe-)uninitialized in its own header, and AVX-512
// values in functions with a target attribute trip -Wpsabi (no vector crosses an ABI boundary here).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wpsabi"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace ts {
namespace {

constexpr int64_t MAX_CHUNKS = 16;  // heads up to E = 256, the widest the kernels are tested at

// One call's tensors as pointers and element strides.
template <typename T>
struct Views {
  const T *q, *k, *v;
  const bool* mask;  // nullptr: every key visible
  T* out;            // [B, H, E] contiguous
  int64_t q_b, q_h, k_b, k_g, k_s, v_b, v_g, v_s, m_b, m_s;
  int64_t B, H, K, S, E;
  float scale;
};

// The slots of row b's visible keys, in slot order.
template <typename T>
void visible_keys(const Views<T>& a, int64_t b, std::vector<int32_t>& keys) {
  keys.clear();
  for (int64_t s = 0; s < a.S; ++s)
    if (a.mask == nullptr || a.mask[b * a.m_b + s * a.m_s]) keys.push_back(static_cast<int32_t>(s));
}

// Per query head h of a block of HB heads (q: fp32, ne chunks of 16 per head, heads E floats apart), scores[h * n + j] =
// scale * q_h · k[keys[j]]: each an fp32 sum of the chunks' products in chunk order, then across the lanes. Keys go four at
// a time, so each key chunk is widened once for the block's heads; a full block (HB = 4) sums its 16 vectors with one
// transpose tree, which associates every sum as _mm512_reduce_add_ps does (simd.h): the bits do not depend on the blocking.
template <typename T, int HB>
__attribute__((target("avx512f"), always_inline)) inline void scores_of(const float* q, int64_t ne, int64_t E, const T* k, int64_t k_s,
                                                                       const std::vector<int32_t>& keys, float scale, float* scores) {
  const auto n = static_cast<int64_t>(keys.size());
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    __m512 acc[4][4];
#pragma GCC unroll 4
    for (int h = 0; h < HB; ++h)
#pragma GCC unroll 4
      for (int u = 0; u < 4; ++u) acc[h][u] = _mm512_setzero_ps();
    for (int64_t c = 0; c < ne; ++c) {
      __m512 kv[4];
#pragma GCC unroll 4
      for (int u = 0; u < 4; ++u) kv[u] = Lanes<T>::load(k + keys[j + u] * k_s + 16 * c);
#pragma GCC unroll 4
      for (int h = 0; h < HB; ++h)
#pragma GCC unroll 4
        for (int u = 0; u < 4; ++u) acc[h][u] = _mm512_fmadd_ps(_mm512_loadu_ps(q + h * E + 16 * c), kv[u], acc[h][u]);
    }
    if constexpr (HB == 4) {
      alignas(64) float sums[16];  // lane 4u + h: the sum of acc[h][u]
      _mm512_store_ps(sums, _mm512_mul_ps(reduce_4x4(acc), _mm512_set1_ps(scale)));
#pragma GCC unroll 4
      for (int h = 0; h < 4; ++h)
#pragma GCC unroll 4
        for (int u = 0; u < 4; ++u) scores[h * n + j + u] = sums[4 * u + h];
    } else {
#pragma GCC unroll 4
      for (int h = 0; h < HB; ++h)
#pragma GCC unroll 4
        for (int u = 0; u < 4; ++u) scores[h * n + j + u] = _mm512_reduce_add_ps(acc[h][u]) * scale;
    }
  }
  for (; j < n; ++j)
#pragma GCC unroll 4
    for (int h = 0; h < HB; ++h) {
      __m512 acc = _mm512_setzero_ps();
      for (int64_t c = 0; c < ne; ++c) acc = _mm512_fmadd_ps(_mm512_loadu_ps(q + h * E + 16 * c), Lanes<T>::load(k + keys[j] * k_s + 16 * c), acc);
      scores[h * n + j] = _mm512_reduce_add_ps(acc) * scale;
    }
}

// out_h = sum_j p[h * n + j] v[keys[j]] for a block of HB heads, one chunk of 16 values at a time: even and odd j in two
// sums per head (two chains of FMAs), added at the end, times inv[h]. Each value chunk is widened once for the block.
template <typename T, int HB>
__attribute__((target("avx512f"), always_inline)) inline void weighted_sum(const float* p, int64_t n, const float* inv, int64_t ne, const T* v,
                                                                          int64_t v_s, const std::vector<int32_t>& keys, T* out, int64_t E) {
  for (int64_t c = 0; c < ne; ++c) {
    __m512 even[HB], odd[HB];
#pragma GCC unroll 8
    for (int h = 0; h < HB; ++h) even[h] = odd[h] = _mm512_setzero_ps();
    int64_t j = 0;
    for (; j + 2 <= n; j += 2) {
      const __m512 v0 = Lanes<T>::load(v + keys[j] * v_s + 16 * c), v1 = Lanes<T>::load(v + keys[j + 1] * v_s + 16 * c);
#pragma GCC unroll 8
      for (int h = 0; h < HB; ++h) {
        even[h] = _mm512_fmadd_ps(_mm512_set1_ps(p[h * n + j]), v0, even[h]);
        odd[h] = _mm512_fmadd_ps(_mm512_set1_ps(p[h * n + j + 1]), v1, odd[h]);
      }
    }
    if (j < n) {
      const __m512 v0 = Lanes<T>::load(v + keys[j] * v_s + 16 * c);
#pragma GCC unroll 8
      for (int h = 0; h < HB; ++h) even[h] = _mm512_fmadd_ps(_mm512_set1_ps(p[h * n + j]), v0, even[h]);
    }
#pragma GCC unroll 8
    for (int h = 0; h < HB; ++h) Lanes<T>::store(out + h * E + 16 * c, _mm512_mul_ps(_mm512_add_ps(even[h], odd[h]), _mm512_set1_ps(inv[h])));
  }
}

// The query heads of one KV head's group that share each widened key and value: scores four heads at a time, weighted
// sums eight at a time (16 accumulators either way).
constexpr int64_t SCORE_HEADS = 4, SUM_HEADS = 8;

struct Scratch {  // per thread, reused across calls: no allocation per step
  std::vector<int32_t> keys;
  std::vector<float> q, p, inv;
};

// One (row, kv head): every query head of the group against the row's visible keys.
template <typename T>
__attribute__((target("avx512f"))) void group(const Views<T>& a, int64_t b, int64_t g, Scratch& s) {
  visible_keys(a, b, s.keys);
  const auto n = static_cast<int64_t>(s.keys.size());
  const int64_t ne = a.E / 16, per_group = a.H / a.K, h0 = g * per_group;
  s.q.resize(static_cast<size_t>(per_group * a.E));
  s.p.resize(static_cast<size_t>(per_group * n));
  s.inv.resize(static_cast<size_t>(per_group));
  for (int64_t h = 0; h < per_group; ++h)
    for (int64_t c = 0; c < ne; ++c) _mm512_storeu_ps(s.q.data() + h * a.E + 16 * c, Lanes<T>::load(a.q + b * a.q_b + (h0 + h) * a.q_h + 16 * c));
  const T* k = a.k + b * a.k_b + g * a.k_g;
  const T* v = a.v + b * a.v_b + g * a.v_g;
  for (int64_t h = 0; h < per_group; h += SCORE_HEADS) {
    const float* q = s.q.data() + h * a.E;
    float* p = s.p.data() + h * n;
    switch (std::min(SCORE_HEADS, per_group - h)) {
      case 4: scores_of<T, 4>(q, ne, a.E, k, a.k_s, s.keys, a.scale, p); break;
      case 3: scores_of<T, 3>(q, ne, a.E, k, a.k_s, s.keys, a.scale, p); break;
      case 2: scores_of<T, 2>(q, ne, a.E, k, a.k_s, s.keys, a.scale, p); break;
      default: scores_of<T, 1>(q, ne, a.E, k, a.k_s, s.keys, a.scale, p); break;
    }
  }
  for (int64_t h = 0; h < per_group; ++h) s.inv[static_cast<size_t>(h)] = n > 0 ? 1.0f / softmax_weights(s.p.data() + h * n, n) : 0.0f;
  T* out = a.out + (b * a.H + h0) * a.E;
  for (int64_t h = 0; h < per_group; h += SUM_HEADS) {
    const float* p = s.p.data() + h * n;
    const float* inv = s.inv.data() + h;
    switch (std::min(SUM_HEADS, per_group - h)) {
      case 8: weighted_sum<T, 8>(p, n, inv, ne, v, a.v_s, s.keys, out + h * a.E, a.E); break;
      case 7: weighted_sum<T, 7>(p, n, inv, ne, v, a.v_s, s.keys, out + h * a.E, a.E); break;
      case 6: weighted_sum<T, 6>(p, n, inv, ne, v, a.v_s, s.keys, out + h * a.E, a.E); break;
      case 5: weighted_sum<T, 5>(p, n, inv, ne, v, a.v_s, s.keys, out + h * a.E, a.E); break;
      case 4: weighted_sum<T, 4>(p, n, inv, ne, v, a.v_s, s.keys, out + h * a.E, a.E); break;
      case 3: weighted_sum<T, 3>(p, n, inv, ne, v, a.v_s, s.keys, out + h * a.E, a.E); break;
      case 2: weighted_sum<T, 2>(p, n, inv, ne, v, a.v_s, s.keys, out + h * a.E, a.E); break;
      default: weighted_sum<T, 1>(p, n, inv, ne, v, a.v_s, s.keys, out + h * a.E, a.E); break;
    }
  }
}

template <typename T>
void run(const Views<T>& a) {
  at::parallel_for(0, a.B * a.K, 1, [&](int64_t i0, int64_t i1) {
    thread_local Scratch scratch;
    for (int64_t i = i0; i < i1; ++i) group(a, i / a.K, i % a.K, scratch);
  });
}

// The kernel's pointers and element strides: q_data holds row b's head h at b * q_b + h * q_h; k and v are
// [B, K, >= S, E] (strided); the first S slots are the keys.
template <typename T, typename Stored>
Views<T> views_of(const at::Tensor& q_data, int64_t q_b, int64_t q_h, int64_t H, const at::Tensor& k, const at::Tensor& v, int64_t S,
                  const at::Tensor& mask, at::Tensor& out) {
  const auto ptr = [](const at::Tensor& t) { return reinterpret_cast<const T*>(t.data_ptr<Stored>()); };
  const int64_t E = k.size(3);
  return Views<T>{ptr(q_data), ptr(k), ptr(v), mask.defined() ? mask.data_ptr<bool>() : nullptr, reinterpret_cast<T*>(out.data_ptr<Stored>()),
                  q_b, q_h, k.stride(0), k.stride(1), k.stride(2), v.stride(0), v.stride(1), v.stride(2),
                  mask.defined() && mask.size(0) > 1 ? mask.stride(0) : 0, mask.defined() ? mask.stride(3) : 0,
                  k.size(0), H, k.size(1), S, E, static_cast<float>(1.0 / std::sqrt(static_cast<double>(E)))};
}

// Runs the kernel in q's dtype into out [B, 1, H, E].
void run_into(const at::Tensor& q_data, int64_t q_b, int64_t q_h, int64_t H, const at::Tensor& k, const at::Tensor& v, int64_t S,
              const at::Tensor& mask, at::Tensor& out) {
  if (q_data.scalar_type() == at::kFloat) run(views_of<float, float>(q_data, q_b, q_h, H, k, v, S, mask, out));
  else run(views_of<uint16_t, at::BFloat16>(q_data, q_b, q_h, H, k, v, S, mask, out));
}

}  // namespace

namespace {

// The device, dtype and autograd side of what the kernels ask of their three operands.
bool operands_take(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  if (!q.device().is_cpu() || !k.device().is_cpu() || !v.device().is_cpu()) return false;
  if (q.scalar_type() != k.scalar_type() || q.scalar_type() != v.scalar_type() || !decode_kernels_take(q.scalar_type())) return false;
  return !q.requires_grad() && !k.requires_grad() && !v.requires_grad();
}

// The shape side: H query heads over K KV heads, E a multiple of 16 up to 256, T queries against S keys and the mask.
bool shapes_take(int64_t B, int64_t H, int64_t T, int64_t E, int64_t K, int64_t S, const at::Tensor& mask) {
  if (K < 1 || H % K != 0 || E % 16 != 0 || E < 16 || E > 16 * MAX_CHUNKS) return false;
  if (!mask.defined()) return true;
  return mask.device().is_cpu() && mask.scalar_type() == at::kBool && mask.dim() == 4 && (mask.size(0) == 1 || mask.size(0) == B) && mask.size(1) == 1 &&
         mask.size(2) == T && mask.size(3) == S;
}

}  // namespace

bool attention_kernels_take(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask) {
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4 || !operands_take(q, k, v)) return false;
  const int64_t B = q.size(0), E = q.size(3);
  if (k.size(0) != B || !v.sizes().equals(k.sizes()) || k.size(3) != E || q.stride(3) != 1 || k.stride(3) != 1 || v.stride(3) != 1) return false;
  return shapes_take(B, q.size(1), q.size(2), E, k.size(1), k.size(2), mask);
}

bool decode_attention_applies(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask, bool causal) {
  return !causal && q.dim() == 4 && q.size(2) == 1 && attention_kernels_take(q, k, v, mask);
}

bool decode_attention_cached_applies(const at::Tensor& rows, int64_t H, const at::Tensor& k_cache, const at::Tensor& v_cache, int64_t S,
                                     const at::Tensor& mask) {
  if (rows.dim() != 4 || k_cache.dim() != 4 || !operands_take(rows, k_cache, v_cache)) return false;
  if (!rows.is_contiguous() || !k_cache.is_contiguous() || !v_cache.is_contiguous() || !v_cache.sizes().equals(k_cache.sizes())) return false;
  const int64_t B = rows.size(0), E = rows.size(3);
  if (rows.size(1) != 1 || rows.size(2) < H || H < 1 || k_cache.size(0) != B || k_cache.size(3) != E || S < 1 || S > k_cache.size(2)) return false;
  return shapes_take(B, H, 1, E, k_cache.size(1), S, mask);
}

at::Tensor decode_attention_cached(const at::Tensor& rows, int64_t H, const at::Tensor& k_cache, const at::Tensor& v_cache, int64_t S,
                                   const at::Tensor& mask) {
  at::Tensor out = at::empty({rows.size(0), 1, H, rows.size(3)}, rows.options());
  run_into(rows, rows.stride(0), rows.stride(2), H, k_cache, v_cache, S, mask, out);
  return out;
}

at::Tensor decode_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask) {
  at::Tensor out = at::empty({q.size(0), 1, q.size(1), q.size(3)}, q.options());  // [B, 1, H, E]
  run_into(q, q.stride(0), q.stride(1), q.size(1), k, v, k.size(2), mask, out);
  return out.transpose(1, 2);
}

}  // namespace ts
