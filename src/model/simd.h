// AVX-512 helpers of the CPU kernels (model/small_linear.cpp, model/decode_attention.cpp, model/prefill_attention.cpp):
// bf16 <-> fp32 for 16 lanes with AVX-512F alone, bit for bit as torch converts; 16 lanes of either dtype as fp32;
// the exponential of the softmax; 16 horizontal sums at once. Internal to src/model.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <limits>

// GCC 12's _mm512_reduce_* trip -W(maybe-)uninitialized in its own header, and AVX-512 values in functions with a
// target attribute trip -Wpsabi (no vector crosses an ABI boundary: everything here is inlined).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wpsabi"

namespace ts {

// One bf16 value (its bits) widened to fp32, exactly.
inline float bf16_to_float(uint16_t bits) {
  const uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &wide, sizeof f);
  return f;
}

// 16 bf16 values widened to fp32: exact (a bf16's bits are the top half of an fp32's).
__attribute__((target("avx512f"), always_inline)) inline __m512 bf16x16_load(const uint16_t* p) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
}

// 16 bf16 values (their bits in 16-bit lanes) widened to fp32, exactly.
__attribute__((target("avx512f"), always_inline)) inline __m512 bf16x16_widen(__m256i bits) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bits), 16));
}

// 16 fp32 values rounded to bf16 bits: to nearest, ties to even, NaN to the quiet NaN 0x7FC0 (c10::BFloat16's rule).
__attribute__((target("avx512f"), always_inline)) inline __m256i bf16x16_round(__m512 v) {
  const __m512i bits = _mm512_castps_si512(v);
  const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(bits, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7FFF))), 16);
  rounded = _mm512_mask_mov_epi32(rounded, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), _mm512_set1_epi32(0x7FC0));
  return _mm512_cvtepi32_epi16(rounded);
}

// e^x for x <= 0 (a score minus its row's maximum): x = n ln2 + r with |r| <= ln2/2, e^r by its Taylor series to
// r^7 (truncation below 6e-9 relative), then scaled by 2^n; within 2 fp32 ulps, and 0 or a subnormal below -87.
__attribute__((target("avx512f"), always_inline)) inline __m512 exp_nonpositive(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-88.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);  // ln2 in two parts: n ln2_hi is exact
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040);
  for (float c : {1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f}) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
  return _mm512_scalef_ps(p, n);
}

// Scores -> e^(score - max) in place, a score of -inf (a hidden key) to exactly 0; returns their sum (16 lanes in a
// fixed order, then across them). n >= 1 and at least one finite score.
__attribute__((target("avx512f"))) inline float softmax_weights(float* p, int64_t n) {
  __m512 mx = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t j = 0; j < n; j += 16) {
    const auto m = static_cast<__mmask16>(n - j >= 16 ? 0xFFFF : (1u << (n - j)) - 1u);
    mx = _mm512_mask_max_ps(mx, m, mx, _mm512_maskz_loadu_ps(m, p + j));
  }
  const __m512 top = _mm512_set1_ps(_mm512_reduce_max_ps(mx)), hidden = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 sum = _mm512_setzero_ps();
  for (int64_t j = 0; j < n; j += 16) {
    const auto m = static_cast<__mmask16>(n - j >= 16 ? 0xFFFF : (1u << (n - j)) - 1u);
    const __m512 x = _mm512_maskz_loadu_ps(m, p + j);
    const auto keep = static_cast<__mmask16>(m & _mm512_cmp_ps_mask(x, hidden, _CMP_NEQ_OQ));
    const __m512 e = _mm512_maskz_mov_ps(keep, exp_nonpositive(_mm512_sub_ps(x, top)));
    _mm512_mask_storeu_ps(p + j, m, e);
    sum = _mm512_add_ps(sum, e);
  }
  return _mm512_reduce_add_ps(sum);
}

// The 16 sums of a full block's accumulators in one vector, lane 4m + r holding the sum of acc[r][m]: a transpose
// tree of 45 instructions instead of 16 reductions of 9. Each sum is associated exactly as _mm512_reduce_add_ps
// associates it (GCC: lanes i + (i+8), then + (i+4), then (0+2) and (1+3), then their sum), so a row's result is
// the same bits whether its block went through here or through the reductions one at a time (blocks of fewer rows).
__attribute__((target("avx512f"), always_inline)) inline __m512 reduce_4x4(const __m512 (&acc)[4][4]) {
  __m512 c[8], e[4], g[2];
#pragma GCC unroll 8
  for (int p = 0; p < 8; ++p) {  // a[2p], a[2p+1] with a[4r + m] = acc[r][m]: [i + (i+8) of the first, of the second]
    const __m512 a = acc[p / 2][(p % 2) * 2], b = acc[p / 2][(p % 2) * 2 + 1];
    c[p] = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
  }
#pragma GCC unroll 4
  for (int q = 0; q < 4; ++q)  // 128-bit block b: the 4 partial sums of a[4q + b]
    e[q] = _mm512_add_ps(_mm512_shuffle_f32x4(c[2 * q], c[2 * q + 1], 0x88), _mm512_shuffle_f32x4(c[2 * q], c[2 * q + 1], 0xDD));
#pragma GCC unroll 2
  for (int r = 0; r < 2; ++r)  // block b: (0+2), (1+3) of a[8r + b], then of a[8r + 4 + b]
    g[r] = _mm512_add_ps(_mm512_shuffle_ps(e[2 * r], e[2 * r + 1], 0x44), _mm512_shuffle_ps(e[2 * r], e[2 * r + 1], 0xEE));
  return _mm512_add_ps(_mm512_shuffle_ps(g[0], g[1], 0x88), _mm512_shuffle_ps(g[0], g[1], 0xDD));  // block m: a[m], a[4+m], a[8+m], a[12+m]
}

// 16 values of T as fp32 lanes, and back (bf16: the two functions above).
template <typename T>
struct Lanes;
template <>
struct Lanes<float> {
  __attribute__((target("avx512f"), always_inline)) static __m512 load(const float* p) { return _mm512_loadu_ps(p); }
  __attribute__((target("avx512f"), always_inline)) static void store(float* p, __m512 v) { _mm512_storeu_ps(p, v); }
};
template <>
struct Lanes<uint16_t> {
  __attribute__((target("avx512f"), always_inline)) static __m512 load(const uint16_t* p) { return bf16x16_load(p); }
  __attribute__((target("avx512f"), always_inline)) static void store(uint16_t* p, __m512 v) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), bf16x16_round(v));
  }
};

}  // namespace ts

#pragma GCC diagnostic pop
