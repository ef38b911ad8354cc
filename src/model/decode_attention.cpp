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

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace ts {
namespace {

constexpr int64_t MAX_CHUNKS = 16;  // E <= 256: a head's query and accumulators stay in registers

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

// scores[j] = scale * q · k[keys[j]], four keys at a time (four independent sums); each an fp32 sum over the E/16
// chunks in order, then across the lanes.
template <typename T, int NE>
__attribute__((target("avx512f"), always_inline)) inline void scores_of(const __m512 (&qv)[MAX_CHUNKS], int64_t ne, const T* k, int64_t k_s,
                                                                       const std::vector<int32_t>& keys, float scale, float* scores) {
  const auto n = static_cast<int64_t>(keys.size());
  const int64_t chunks = NE > 0 ? NE : ne;
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int64_t c = 0; c < chunks; ++c)
#pragma GCC unroll 4
      for (int u = 0; u < 4; ++u) acc[u] = _mm512_fmadd_ps(qv[c], Lanes<T>::load(k + keys[j + u] * k_s + 16 * c), acc[u]);
#pragma GCC unroll 4
    for (int u = 0; u < 4; ++u) scores[j + u] = _mm512_reduce_add_ps(acc[u]) * scale;
  }
  for (; j < n; ++j) {
    __m512 acc = _mm512_setzero_ps();
    for (int64_t c = 0; c < chunks; ++c) acc = _mm512_fmadd_ps(qv[c], Lanes<T>::load(k + keys[j] * k_s + 16 * c), acc);
    scores[j] = _mm512_reduce_add_ps(acc) * scale;
  }
}

// One (row, kv head): every query head of the group against the row's visible keys.
template <typename T, int NE>
__attribute__((target("avx512f"))) void group(const Views<T>& a, int64_t b, int64_t g, std::vector<int32_t>& keys, std::vector<float>& p) {
  visible_keys(a, b, keys);
  const auto n = static_cast<int64_t>(keys.size());
  p.resize(static_cast<size_t>(n));
  const int64_t ne = NE > 0 ? NE : a.E / 16, per_group = a.H / a.K;
  const T* k = a.k + b * a.k_b + g * a.k_g;
  const T* v = a.v + b * a.v_b + g * a.v_g;
  for (int64_t h = g * per_group; h < (g + 1) * per_group; ++h) {
    __m512 qv[MAX_CHUNKS], even[MAX_CHUNKS], odd[MAX_CHUNKS];
    for (int64_t c = 0; c < ne; ++c) {
      qv[c] = Lanes<T>::load(a.q + b * a.q_b + h * a.q_h + 16 * c);
      even[c] = odd[c] = _mm512_setzero_ps();
    }
    scores_of<T, NE>(qv, ne, k, a.k_s, keys, a.scale, p.data());
    const float sum = n > 0 ? softmax_weights(p.data(), n) : 0.0f;
    // out = sum_j p[j] v[keys[j]] / sum, even and odd j in two sums (two chains of FMAs), added at the end.
    int64_t j = 0;
    for (; j + 2 <= n; j += 2) {
      const __m512 p0 = _mm512_set1_ps(p[j]), p1 = _mm512_set1_ps(p[j + 1]);
      const T *v0 = v + keys[j] * a.v_s, *v1 = v + keys[j + 1] * a.v_s;
      for (int64_t c = 0; c < ne; ++c) {
        even[c] = _mm512_fmadd_ps(p0, Lanes<T>::load(v0 + 16 * c), even[c]);
        odd[c] = _mm512_fmadd_ps(p1, Lanes<T>::load(v1 + 16 * c), odd[c]);
      }
    }
    if (j < n)
      for (int64_t c = 0; c < ne; ++c) even[c] = _mm512_fmadd_ps(_mm512_set1_ps(p[j]), Lanes<T>::load(v + keys[j] * a.v_s + 16 * c), even[c]);
    const __m512 inv = _mm512_set1_ps(n > 0 ? 1.0f / sum : 0.0f);
    for (int64_t c = 0; c < ne; ++c) Lanes<T>::store(a.out + (b * a.H + h) * a.E + 16 * c, _mm512_mul_ps(_mm512_add_ps(even[c], odd[c]), inv));
  }
}

template <typename T>
void run(const Views<T>& a) {
  at::parallel_for(0, a.B * a.K, 1, [&](int64_t i0, int64_t i1) {
    thread_local std::vector<int32_t> keys;  // reused across calls: no allocation per step
    thread_local std::vector<float> p;
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / a.K, g = i % a.K;
      if (a.E == 64) group<T, 4>(a, b, g, keys, p);
      else if (a.E == 128) group<T, 8>(a, b, g, keys, p);
      else group<T, 0>(a, b, g, keys, p);
    }
  });
}

template <typename T, typename Stored>
Views<T> views_of(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask, at::Tensor& out) {
  const auto ptr = [](const at::Tensor& t) { return reinterpret_cast<const T*>(t.data_ptr<Stored>()); };
  Views<T> a{ptr(q), ptr(k), ptr(v), mask.defined() ? mask.data_ptr<bool>() : nullptr, reinterpret_cast<T*>(out.data_ptr<Stored>()),
             q.stride(0), q.stride(1), k.stride(0), k.stride(1), k.stride(2), v.stride(0), v.stride(1), v.stride(2),
             mask.defined() && mask.size(0) > 1 ? mask.stride(0) : 0, mask.defined() ? mask.stride(3) : 0,
             q.size(0), q.size(1), k.size(1), k.size(2), q.size(3), static_cast<float>(1.0 / std::sqrt(static_cast<double>(q.size(3))))};
  return a;
}

}  // namespace

bool attention_kernels_take(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask) {
  if (!q.device().is_cpu() || !k.device().is_cpu() || !v.device().is_cpu() || q.dim() != 4 || k.dim() != 4 || v.dim() != 4) return false;
  if (q.scalar_type() != k.scalar_type() || q.scalar_type() != v.scalar_type() || !decode_kernels_take(q.scalar_type())) return false;
  if (q.requires_grad() || k.requires_grad() || v.requires_grad()) return false;
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), E = q.size(3), K = k.size(1), S = k.size(2);
  if (k.size(0) != B || !v.sizes().equals(k.sizes()) || k.size(3) != E || K < 1 || H % K != 0) return false;
  if (E % 16 != 0 || E < 16 || E > 16 * MAX_CHUNKS || q.stride(3) != 1 || k.stride(3) != 1 || v.stride(3) != 1) return false;
  if (!mask.defined()) return true;
  return mask.device().is_cpu() && mask.scalar_type() == at::kBool && mask.dim() == 4 && (mask.size(0) == 1 || mask.size(0) == B) && mask.size(1) == 1 &&
         mask.size(2) == T && mask.size(3) == S;
}

bool decode_attention_applies(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask, bool causal) {
  return !causal && q.dim() == 4 && q.size(2) == 1 && attention_kernels_take(q, k, v, mask);
}

at::Tensor decode_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask) {
  at::Tensor out = at::empty({q.size(0), 1, q.size(1), q.size(3)}, q.options());  // [B, 1, H, E]
  if (q.scalar_type() == at::kFloat) run(views_of<float, float>(q, k, v, mask, out));
  else run(views_of<uint16_t, at::BFloat16>(q, k, v, mask, out));
  return out.transpose(1, 2);
}

}  // namespace ts
