#include "model/prefill_attention.h"

#include "model/decode_attention.h"
#include "model/simd.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <immintrin.h>

#pragma GCC diagnostic ignored "-Wpsabi"  // AVX-512 values in functions with a target attribute; none crosses an ABI boundary

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace ts {
namespace {

constexpr int64_t QB = 16;          // queries per block, keys per tile

// One call's tensors as pointers and element strides.
template <typename T>
struct Views {
  const T *q, *k, *v;
  const bool* mask;  // nullptr: causal
  T* out;            // [B, T, H, E] contiguous
  int64_t q_b, q_h, q_t, k_b, k_g, k_s, v_b, v_g, v_s, m_b, m_t, m_s;
  int64_t B, H, K, Tq, S, E;  // Tq: queries per row
  float scale;
};

// Per-thread buffers, reused across calls.
struct Scratch {
  std::vector<float> kt;         // [tiles][E][16]: the block's visible keys, transposed
  std::vector<float> q;          // [16][E]: the block's queries of one head
  std::vector<float> scores;     // [16][tiles * 16]
  std::vector<uint16_t> seen;    // [16][tiles]: bit l of tile j: query r sees key 16 j + l
  float sums[QB];
};

template <typename T>
bool visible(const Views<T>& a, int64_t b, int64_t t, int64_t s) {
  return a.mask == nullptr ? s <= a.S - a.Tq + t : a.mask[b * a.m_b + t * a.m_t + s * a.m_s];
}

// One past the last key any query of rows [t0, t1) sees.
template <typename T>
int64_t key_end(const Views<T>& a, int64_t b, int64_t t0, int64_t t1) {
  if (a.mask == nullptr) return a.S - a.Tq + t1;
  int64_t end = 0;
  for (int64_t t = t0; t < t1; ++t)
    for (int64_t s = a.S - 1; s >= end; --s)
      if (visible(a, b, t, s)) {
        end = s + 1;
        break;
      }
  return end;
}

inline float widen(float x) { return x; }
inline float widen(uint16_t bits) { return bf16_to_float(bits); }

// Keys [0, n) of (b, g) into tiles of 16, transposed: kt[tile][d][lane] = k[tile * 16 + lane][d] (0 past n).
template <typename T>
void transpose_keys(const T* k, int64_t k_s, int64_t n, int64_t E, std::vector<float>& kt) {
  const int64_t tiles = (n + QB - 1) / QB;
  kt.assign(static_cast<size_t>(tiles * E * QB), 0.0f);
  for (int64_t s = 0; s < n; ++s)
    for (int64_t d = 0; d < E; ++d) kt[static_cast<size_t>(((s / QB) * E + d) * QB + s % QB)] = widen(k[s * k_s + d]);
}

// Hidden keys' scores to -inf (softmax_weights turns them into exact zeros).
__attribute__((target("avx512f"))) void hide_unseen(float* row, const uint16_t* seen, int64_t tiles) {
  const __m512 hidden = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t j = 0; j < tiles; ++j) _mm512_storeu_ps(row + j * QB, _mm512_mask_mov_ps(hidden, seen[j], _mm512_loadu_ps(row + j * QB)));
}

// scores[r][s] = scale * q[r] · k[s] for 16 query rows and the tiles' keys: per tile 16 accumulators (one per query), each
// lane a key, one FMA per query per dimension.
__attribute__((target("avx512f"))) void tile_scores(const float* q, const float* kt, int64_t tiles, int64_t E, float scale, float* scores,
                                                    int64_t stride) {
  const __m512 sc = _mm512_set1_ps(scale);
  for (int64_t j = 0; j < tiles; ++j) {
    __m512 acc[QB];
#pragma GCC unroll 16
    for (int r = 0; r < QB; ++r) acc[r] = _mm512_setzero_ps();
    const float* tile = kt + j * E * QB;
    for (int64_t d = 0; d < E; ++d) {
      const __m512 kd = _mm512_loadu_ps(tile + d * QB);
#pragma GCC unroll 16
      for (int r = 0; r < QB; ++r) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(q[r * E + d]), kd, acc[r]);
    }
#pragma GCC unroll 16
    for (int r = 0; r < QB; ++r) _mm512_storeu_ps(scores + r * stride + j * QB, _mm512_mul_ps(acc[r], sc));
  }
}

// out[r] = sum_s p[r][s] v[s] / sums[r] for rows [0, rows), RG rows at a time (RG * NE accumulators), keys [0, n).
template <typename T, int NE>
__attribute__((target("avx512f"))) void weighted_values(const float* p, int64_t stride, const float* sums, int64_t rows, const T* v, int64_t v_s,
                                                        int64_t n, T* out, int64_t out_stride) {
  constexpr int RG = 16 / NE;
  for (int64_t r0 = 0; r0 < rows; r0 += RG) {
    __m512 acc[RG][NE];
#pragma GCC unroll 16
    for (int i = 0; i < RG; ++i)
#pragma GCC unroll 16
      for (int c = 0; c < NE; ++c) acc[i][c] = _mm512_setzero_ps();
    for (int64_t s = 0; s < n; ++s) {
      __m512 vs[NE];
#pragma GCC unroll 16
      for (int c = 0; c < NE; ++c) vs[c] = Lanes<T>::load(v + s * v_s + 16 * c);
#pragma GCC unroll 16
      for (int i = 0; i < RG; ++i) {
        const __m512 w = _mm512_set1_ps(p[(r0 + i) * stride + s]);
#pragma GCC unroll 16
        for (int c = 0; c < NE; ++c) acc[i][c] = _mm512_fmadd_ps(w, vs[c], acc[i][c]);
      }
    }
    for (int i = 0; i < RG && r0 + i < rows; ++i) {
      const __m512 inv = _mm512_set1_ps(sums[r0 + i] > 0 ? 1.0f / sums[r0 + i] : 0.0f);
#pragma GCC unroll 16
      for (int c = 0; c < NE; ++c) Lanes<T>::store(out + (r0 + i) * out_stride + 16 * c, _mm512_mul_ps(acc[i][c], inv));
    }
  }
}

template <typename T>
void weighted_values_any(const float* p, int64_t stride, const float* sums, int64_t rows, const T* v, int64_t v_s, int64_t n, int64_t E, T* out,
                         int64_t out_stride) {
  switch (E / 16) {
    case 1: return weighted_values<T, 1>(p, stride, sums, rows, v, v_s, n, out, out_stride);
    case 2: return weighted_values<T, 2>(p, stride, sums, rows, v, v_s, n, out, out_stride);
    case 4: return weighted_values<T, 4>(p, stride, sums, rows, v, v_s, n, out, out_stride);
    case 8: return weighted_values<T, 8>(p, stride, sums, rows, v, v_s, n, out, out_stride);
    case 16: return weighted_values<T, 16>(p, stride, sums, rows, v, v_s, n, out, out_stride);
    default:  // E = 48, 80, ...: 16-wide slices, each with the 16-row kernel
      for (int64_t c = 0; c < E / 16; ++c) weighted_values<T, 1>(p, stride, sums, rows, v + 16 * c, v_s, n, out + 16 * c, out_stride);
  }
}

// Query rows [t0, t1) (at most 16) of row b against kv head g, for every query head of the group.
template <typename T>
void block(const Views<T>& a, int64_t b, int64_t g, int64_t t0, int64_t t1, Scratch& w) {
  const int64_t n = key_end(a, b, t0, t1), rows = t1 - t0, E = a.E, tiles = (n + QB - 1) / QB, stride = tiles * QB;
  transpose_keys(a.k + b * a.k_b + g * a.k_g, a.k_s, n, E, w.kt);
  w.q.assign(static_cast<size_t>(QB * E), 0.0f);
  w.scores.resize(static_cast<size_t>(QB * stride));
  w.seen.assign(static_cast<size_t>(QB * tiles), 0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t s = 0; s < n; ++s)
      if (visible(a, b, t0 + r, s)) w.seen[static_cast<size_t>(r * tiles + s / QB)] |= static_cast<uint16_t>(1u << (s % QB));
  const int64_t per_group = a.H / a.K;
  for (int64_t h = g * per_group; h < (g + 1) * per_group; ++h) {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t d = 0; d < E; ++d) w.q[static_cast<size_t>(r * E + d)] = widen(a.q[b * a.q_b + h * a.q_h + (t0 + r) * a.q_t + d]);
    tile_scores(w.q.data(), w.kt.data(), tiles, E, a.scale, w.scores.data(), stride);
    for (int64_t r = 0; r < rows; ++r) {
      float* row = w.scores.data() + r * stride;
      const uint16_t* seen = w.seen.data() + r * tiles;
      if (std::any_of(seen, seen + tiles, [](uint16_t x) { return x != 0; })) {
        hide_unseen(row, seen, tiles);
        w.sums[r] = softmax_weights(row, stride);
      } else {
        std::fill(row, row + stride, 0.0f);
        w.sums[r] = 0.0f;
      }
    }
    T* out = a.out + ((b * a.Tq + t0) * a.H + h) * E;
    weighted_values_any<T>(w.scores.data(), stride, w.sums, rows, a.v + b * a.v_b + g * a.v_g, a.v_s, n, E, out, a.H * E);
  }
}

template <typename T>
void run(const Views<T>& a) {
  const int64_t blocks = (a.Tq + QB - 1) / QB, pairs = (blocks + 1) / 2;
  // Task (b, g, j): query blocks j and blocks - 1 - j, so every task carries about the same causal work.
  at::parallel_for(0, a.B * a.K * pairs, 1, [&](int64_t i0, int64_t i1) {
    thread_local Scratch w;
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / (a.K * pairs), g = (i / pairs) % a.K, lo = i % pairs, hi = blocks - 1 - lo;
      block(a, b, g, lo * QB, std::min(a.Tq, (lo + 1) * QB), w);
      if (hi != lo) block(a, b, g, hi * QB, std::min(a.Tq, (hi + 1) * QB), w);
    }
  });
}

template <typename T, typename Stored>
Views<T> views_of(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask, at::Tensor& out) {
  const auto ptr = [](const at::Tensor& t) { return reinterpret_cast<const T*>(t.data_ptr<Stored>()); };
  const bool m = mask.defined();
  return Views<T>{ptr(q), ptr(k), ptr(v), m ? mask.data_ptr<bool>() : nullptr, reinterpret_cast<T*>(out.data_ptr<Stored>()),
                  q.stride(0), q.stride(1), q.stride(2), k.stride(0), k.stride(1), k.stride(2), v.stride(0), v.stride(1), v.stride(2),
                  m && mask.size(0) > 1 ? mask.stride(0) : 0, m ? mask.stride(2) : 0, m ? mask.stride(3) : 0,
                  q.size(0), q.size(1), k.size(1), q.size(2), k.size(2), q.size(3), static_cast<float>(1.0 / std::sqrt(static_cast<double>(q.size(3))))};
}

}  // namespace

bool prefill_attention_applies(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask, bool causal) {
  if (q.dim() != 4 || k.dim() != 4 || q.size(2) < 2 || k.size(2) < q.size(2)) return false;
  if (causal ? mask.defined() || k.size(2) != q.size(2) : !mask.defined()) return false;
  return attention_kernels_take(q, k, v, mask);
}

at::Tensor prefill_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask, bool causal) {
  at::Tensor out = at::empty({q.size(0), q.size(2), q.size(1), q.size(3)}, q.options());  // [B, T, H, E]
  const at::Tensor m = causal ? at::Tensor() : mask;
  if (q.scalar_type() == at::kFloat) run(views_of<float, float>(q, k, v, m, out));
  else run(views_of<uint16_t, at::BFloat16>(q, k, v, m, out));
  return out.transpose(1, 2);
}

}  // namespace ts
