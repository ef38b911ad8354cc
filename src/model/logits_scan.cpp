#include "model/logits_scan.h"

#include "model/simd.h"
#include "model/small_linear.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

// As in small_linear.cpp: GCC 12's _mm512_reduce_* trip -W(maybe-)uninitialized in its own header, and AVX-512 values in
// functions with a target attribute trip -Wpsabi (none crosses an ABI boundary here).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wpsabi"

namespace ts {
namespace {

template <typename T>
float value_of(T x) {
  if constexpr (std::is_same_v<T, float>) return x;
  else return bf16_to_float(x);
}

// A row's first maximum, or -1 when some value is not finite. Pass 1: the maximum and the exponent test (all ones:
// infinite or NaN) 16 lanes at a time; pass 2: the first lane equal to it. The tail of V is scalar.
template <typename T>
__attribute__((target("avx512f"))) int64_t row_first_max(const T* x, int64_t V) {
  const __m512i exponent = _mm512_set1_epi32(0x7F800000);
  __m512 top = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __mmask16 bad = 0;
  int64_t j = 0;
  for (; j + 16 <= V; j += 16) {
    const __m512 v = Lanes<T>::load(x + j);
    bad |= _mm512_cmpeq_epi32_mask(_mm512_and_si512(_mm512_castps_si512(v), exponent), exponent);
    top = _mm512_max_ps(top, v);
  }
  float m = _mm512_reduce_max_ps(top);
  for (int64_t t = j; t < V; ++t) {
    const float v = value_of(x[t]);
    if (!std::isfinite(v)) return -1;
    m = std::max(m, v);
  }
  if (bad != 0) return -1;
  const __m512 mv = _mm512_set1_ps(m);
  for (j = 0; j + 16 <= V; j += 16) {
    const __mmask16 hit = _mm512_cmp_ps_mask(Lanes<T>::load(x + j), mv, _CMP_EQ_OQ);
    if (hit != 0) return j + __builtin_ctz(hit);
  }
  for (; j < V; ++j)
    if (value_of(x[j]) == m) return j;
  return -1;  // unreachable: m is one of the values
}

template <typename T, typename Stored>
bool scan(const at::Tensor& logits, std::vector<int64_t>* argmax) {
  const int64_t n = logits.size(0), V = logits.size(1), stride = logits.stride(0);
  const auto* base = reinterpret_cast<const T*>(logits.data_ptr<Stored>());
  std::vector<int64_t> first(static_cast<size_t>(n), -1);
  at::parallel_for(0, n, 4, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) first[static_cast<size_t>(r)] = row_first_max(base + r * stride, V);
  });
  for (int64_t f : first)
    if (f < 0) return false;
  if (argmax != nullptr) *argmax = std::move(first);
  return true;
}

}  // namespace

bool logits_scan_applies(const at::Tensor& logits) {
  return logits.device().is_cpu() && logits.dim() == 2 && logits.size(1) > 0 && logits.stride(1) == 1 && !logits.requires_grad() &&
         (logits.scalar_type() == at::kFloat || logits.scalar_type() == at::kBFloat16) && decode_kernels_take(logits.scalar_type());
}

bool logits_scan(const at::Tensor& logits, std::vector<int64_t>* argmax) {
  return logits.scalar_type() == at::kFloat ? scan<float, float>(logits, argmax) : scan<uint16_t, at::BFloat16>(logits, argmax);
}

}  // namespace ts
