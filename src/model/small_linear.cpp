#include "model/small_linear.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <immintrin.h>

// GCC 12's _mm512_reduce_add_ps trips -Wmaybe-uninitialized inside its own header, and AVX-512 values in
// functions with a target attribute trip -Wpsabi (no ABI crosses this file: every vector stays inside).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wpsabi"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

namespace ts {
namespace {

std::atomic<int> g_enabled{-1};  // -1: not read yet

bool enabled() {
  int e = g_enabled.load(std::memory_order_relaxed);
  if (e < 0) {
    const char* v = std::getenv("THINKSTEER_SMALL_LINEAR");
    e = v != nullptr && std::strcmp(v, "0") == 0 ? 0 : 1;
    g_enabled.store(e, std::memory_order_relaxed);
  }
  return e == 1;
}

bool cpu_has_avx512() {
  static const bool has = __builtin_cpu_supports("avx512f");
  return has;
}
bool cpu_has_avx512_bf16() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16");
  return has;
}

// Rows [n0, n1) of y[m, n] = sum_k x[m, k] w[n, k] (+ bias[n]) for M rows of x, R rows of w at a time
// (M * R accumulators of 16 lanes in registers; k in steps of 16, the tail masked).
template <int M, int R>
__attribute__((target("avx512f"))) void rows_f32(const float* x, int64_t K, const float* w, int64_t n0, int64_t n1, const float* bias,
                                                 float* y, int64_t N) {
  const int64_t K16 = K & ~int64_t{15};
  const auto tail = static_cast<__mmask16>((1u << (K - K16)) - 1u);
  for (int64_t n = n0; n < n1; n += R) {
    const int r_here = n + R <= n1 ? R : static_cast<int>(n1 - n);
    __m512 acc[R][M];
    for (int r = 0; r < R; ++r)
      for (int m = 0; m < M; ++m) acc[r][m] = _mm512_setzero_ps();
    for (int64_t k = 0; k < K16; k += 16) {
      __m512 xv[M];
      for (int m = 0; m < M; ++m) xv[m] = _mm512_loadu_ps(x + m * K + k);
      for (int r = 0; r < r_here; ++r) {
        const __m512 wv = _mm512_loadu_ps(w + (n + r) * K + k);
        for (int m = 0; m < M; ++m) acc[r][m] = _mm512_fmadd_ps(wv, xv[m], acc[r][m]);
      }
    }
    if (K16 < K)
      for (int r = 0; r < r_here; ++r) {
        const __m512 wv = _mm512_maskz_loadu_ps(tail, w + (n + r) * K + K16);
        for (int m = 0; m < M; ++m) acc[r][m] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(tail, x + m * K + K16), acc[r][m]);
      }
    for (int r = 0; r < r_here; ++r)
      for (int m = 0; m < M; ++m) y[m * N + n + r] = _mm512_reduce_add_ps(acc[r][m]) + (bias != nullptr ? bias[n + r] : 0.0f);
  }
}

// The same for bf16 operands: 32 values per step through avx512_bf16's pairwise dot product into fp32
// lanes; the sum (plus the bias, in fp32) is rounded to bf16 once.
template <int M, int R>
__attribute__((target("avx512f,avx512bw,avx512bf16"))) void rows_bf16(const uint16_t* x, int64_t K, const uint16_t* w, int64_t n0, int64_t n1,
                                                                       const uint16_t* bias, uint16_t* y, int64_t N) {
  const int64_t K32 = K & ~int64_t{31};
  const auto tail = static_cast<__mmask32>(K - K32 == 0 ? 0u : (1u << (K - K32)) - 1u);
  for (int64_t n = n0; n < n1; n += R) {
    const int r_here = n + R <= n1 ? R : static_cast<int>(n1 - n);
    __m512 acc[R][M];
    for (int r = 0; r < R; ++r)
      for (int m = 0; m < M; ++m) acc[r][m] = _mm512_setzero_ps();
    for (int64_t k = 0; k < K; k += 32) {
      const __mmask32 mask = k < K32 ? ~__mmask32{0} : tail;  // a masked load with every lane on is a plain load
      __m512bh xv[M];
      for (int m = 0; m < M; ++m) xv[m] = (__m512bh)_mm512_maskz_loadu_epi16(mask, x + m * K + k);
      for (int r = 0; r < r_here; ++r) {
        const __m512bh wv = (__m512bh)_mm512_maskz_loadu_epi16(mask, w + (n + r) * K + k);
        for (int m = 0; m < M; ++m) acc[r][m] = _mm512_dpbf16_ps(acc[r][m], wv, xv[m]);
      }
    }
    for (int r = 0; r < r_here; ++r)
      for (int m = 0; m < M; ++m) {
        float v = _mm512_reduce_add_ps(acc[r][m]);
        if (bias != nullptr) v += static_cast<float>(c10::BFloat16(bias[n + r], c10::BFloat16::from_bits()));
        y[m * N + n + r] = c10::BFloat16(v).x;
      }
  }
}

template <typename T>
using RowsFn = void (*)(const T*, int64_t, const T*, int64_t, int64_t, const T*, T*, int64_t);

// The kernel for M rows of x: two rows of w per pass while 2 M accumulators leave registers for the operands.
template <typename T, int M>
RowsFn<T> pick() {
  constexpr int R = M <= 8 ? 2 : 1;
  if constexpr (std::is_same_v<T, float>) return rows_f32<M, R>;
  else return rows_bf16<M, R>;
}
template <typename T, int... Ms>
RowsFn<T> kernel_for(int64_t m, std::integer_sequence<int, Ms...>) {
  static const RowsFn<T> fns[] = {pick<T, Ms + 1>()...};
  return fns[m - 1];
}

int64_t rows_of(const at::Tensor& x) { return x.dim() == 0 || x.size(-1) == 0 ? 0 : x.numel() / x.size(-1); }

}  // namespace

void small_linear_enable(bool on) { g_enabled.store(on ? 1 : 0, std::memory_order_relaxed); }

bool small_linear_applies(const at::Tensor& x, const at::Tensor& w) {
  if (!enabled() || !x.device().is_cpu() || w.dim() != 2 || !w.is_contiguous() || x.scalar_type() != w.scalar_type() || x.size(-1) != w.size(1))
    return false;
  const int64_t m = rows_of(x);
  if (m < 1 || m > SMALL_LINEAR_MAX_ROWS || x.requires_grad() || w.requires_grad()) return false;
  if (x.scalar_type() == at::kFloat) return cpu_has_avx512();
  return x.scalar_type() == at::kBFloat16 && cpu_has_avx512_bf16();
}

at::Tensor small_linear(const at::Tensor& x_in, const at::Tensor& w, const at::Tensor& b) {
  const int64_t K = w.size(1), N = w.size(0), M = rows_of(x_in);
  const at::Tensor x = x_in.reshape({M, K}).contiguous();
  const at::Tensor bias = b.defined() ? b.contiguous() : b;
  at::Tensor y = at::empty({M, N}, x.options());
  // Chunks of w's rows per task: about 4 per thread, so uneven thread speed evens out.
  const int64_t grain = std::max<int64_t>(16, N / (4 * std::max(1, at::get_num_threads())));
  const auto seq = std::make_integer_sequence<int, SMALL_LINEAR_MAX_ROWS>{};
  if (x.scalar_type() == at::kFloat) {
    const RowsFn<float> fn = kernel_for<float>(M, seq);
    const float *xp = x.data_ptr<float>(), *wp = w.data_ptr<float>(), *bp = bias.defined() ? bias.data_ptr<float>() : nullptr;
    float* yp = y.data_ptr<float>();
    at::parallel_for(0, N, grain, [&](int64_t n0, int64_t n1) { fn(xp, K, wp, n0, n1, bp, yp, N); });
  } else {
    const RowsFn<uint16_t> fn = kernel_for<uint16_t>(M, seq);
    const auto* xp = reinterpret_cast<const uint16_t*>(x.data_ptr<at::BFloat16>());
    const auto* wp = reinterpret_cast<const uint16_t*>(w.data_ptr<at::BFloat16>());
    const auto* bp = bias.defined() ? reinterpret_cast<const uint16_t*>(bias.data_ptr<at::BFloat16>()) : nullptr;
    auto* yp = reinterpret_cast<uint16_t*>(y.data_ptr<at::BFloat16>());
    at::parallel_for(0, N, grain, [&](int64_t n0, int64_t n1) { fn(xp, K, wp, n0, n1, bp, yp, N); });
  }
  std::vector<int64_t> shape(x_in.sizes().begin(), x_in.sizes().end());
  shape.back() = N;
  return y.view(shape);
}

at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  const bool bias_ok = !b.defined() || (b.scalar_type() == x.scalar_type() && !b.requires_grad());
  return bias_ok && small_linear_applies(x, w) ? small_linear(x, w, b) : at::linear(x, w, b);
}

}  // namespace ts
