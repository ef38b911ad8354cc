// bf16 <-> fp32 for 16 AVX-512 lanes with AVX-512F alone, bit for bit as torch converts (the decode kernels:
// model/small_linear.cpp, model/decode_attention.cpp). Internal to src/model.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace ts {

// 16 bf16 values widened to fp32: exact (a bf16's bits are the top half of an fp32's).
__attribute__((target("avx512f"), always_inline)) inline __m512 bf16x16_load(const uint16_t* p) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
}

// 16 fp32 values rounded to bf16 bits: to nearest, ties to even, NaN to the quiet NaN 0x7FC0 (c10::BFloat16's rule).
__attribute__((target("avx512f"), always_inline)) inline __m256i bf16x16_round(__m512 v) {
  const __m512i bits = _mm512_castps_si512(v);
  const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(bits, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7FFF))), 16);
  rounded = _mm512_mask_mov_epi32(rounded, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), _mm512_set1_epi32(0x7FC0));
  return _mm512_cvtepi32_epi16(rounded);
}

}  // namespace ts
