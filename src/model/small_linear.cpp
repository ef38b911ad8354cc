#include "model/small_linear.h"

#include "model/simd.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <immintrin.h>

// GCC 12's _mm512_reduce_add_ps trips -W(maybe-)uninitialized inside its own header, and AVX-512 values in
// functions with a target attribute trip -Wpsabi (no ABI crosses this file: every vector stays inside).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wpsabi"

#include <algorithm>
#include <atomic>
#include <cmath>
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

// Asks for the cache line at byte offset `at` of each of the next block's R weight rows (row stride `stride`
// bytes): one step covers 64 bytes of a row in either dtype, so the next block arrives while this one is
// computed. Without it the 2nd and later groups of x rows (weights from L1) leave the memory idle.
template <int R>
__attribute__((always_inline)) inline void prefetch_lines(const char* next, int64_t stride, int64_t at) {
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) __builtin_prefetch(next + r * stride + at, 0, 3);
}

// One k step of a block: R weight vectors, then each x row against all of them; MASKED: the tail of K.
template <int M, int R, bool MASKED>
__attribute__((target("avx512f"), always_inline)) inline void step_f32(const float* x, int64_t K, const float* w, int64_t n, int64_t k, __mmask16 mask,
                                                                       const char* pf, __m512 (&acc)[R][M]) {
  if (pf != nullptr) prefetch_lines<R>(pf, K * 4, k * 4);
  __m512 wv[R];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) wv[r] = MASKED ? _mm512_maskz_loadu_ps(mask, w + (n + r) * K + k) : _mm512_loadu_ps(w + (n + r) * K + k);
#pragma GCC unroll 16
  for (int m = 0; m < M; ++m) {
    const __m512 xv = MASKED ? _mm512_maskz_loadu_ps(mask, x + m * K + k) : _mm512_loadu_ps(x + m * K + k);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) acc[r][m] = _mm512_fmadd_ps(wv[r], xv, acc[r][m]);
  }
}
template <int M, int R, bool MASKED>
__attribute__((target("avx512f,avx512bw,avx512bf16"), always_inline)) inline void step_bf16(const uint16_t* x, int64_t K, const uint16_t* w, int64_t n,
                                                                                            int64_t k, __mmask32 mask, const char* pf,
                                                                                            __m512 (&acc)[R][M]) {
  if (pf != nullptr) prefetch_lines<R>(pf, K * 2, k * 2);
  __m512bh wv[R];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
    wv[r] = (__m512bh)(MASKED ? _mm512_maskz_loadu_epi16(mask, w + (n + r) * K + k) : _mm512_loadu_si512(w + (n + r) * K + k));
#pragma GCC unroll 16
  for (int m = 0; m < M; ++m) {
    const __m512bh xv = (__m512bh)(MASKED ? _mm512_maskz_loadu_epi16(mask, x + m * K + k) : _mm512_loadu_si512(x + m * K + k));
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) acc[r][m] = _mm512_dpbf16_ps(acc[r][m], wv[r], xv);
  }
}

// What the group of x rows starting at row m prefetches while it computes a block: group g = m / 4 asks for the block
// g + 1 blocks ahead (block_bytes each), for g < 4. With only the first group prefetching, the memory sat idle while the
// later groups reused the block from L1; spread over the groups it stays busy (a batch-8 / 16 step 7-15% faster in
// either dtype, batch 32 5-7%; bench/README.md "The decode kernel").
inline const char* prefetch_for(const char* next, int64_t m, int64_t block_bytes) { return m <= 12 ? next + (m / 4) * block_bytes : nullptr; }

// The fp32 sum of an output is two chains of FMAs, one over the even 16-value blocks of k and one over the odd ones
// (the masked tail block in its chain by its index), added lane by lane and then across the lanes. One chain
// would bound a row to 64 bytes per FMA latency (4 cycles): at batch 1 that is ~40 GB/s a core at 2.6 GHz, below
// what the memory gives at times (bench/README.md "Two chains per output"). The order depends on K only, so every
// path below gives the same bits.
//
// Both chains in one sweep over k: 2 * R * M accumulators, for the blocks that have registers for them.
template <int M, int R>
__attribute__((target("avx512f"), always_inline)) inline void chains_one_sweep(const float* x, int64_t K, const float* w, int64_t n, const char* pf,
                                                                               __m512 (&even)[R][M], __m512 (&odd)[R][M]) {
  const int64_t K16 = K & ~int64_t{15};
  const auto tail = static_cast<__mmask16>((1u << (K - K16)) - 1u);
  int64_t k = 0;
  for (; k + 32 <= K16; k += 32) {
    step_f32<M, R, false>(x, K, w, n, k, 0, pf, even);
    step_f32<M, R, false>(x, K, w, n, k + 16, 0, pf, odd);
  }
  if (k < K16) {  // one even block left; the tail, if any, is odd
    step_f32<M, R, false>(x, K, w, n, k, 0, pf, even);
    if (K16 < K) step_f32<M, R, true>(x, K, w, n, K16, tail, pf, odd);
  } else if (K16 < K) {
    step_f32<M, R, true>(x, K, w, n, K16, tail, pf, even);
  }
}
// One chain (blocks first, first + 32, ...) in a sweep of its own: R * M accumulators. The block's weight rows are in L1
// for the second sweep.
template <int M, int R>
__attribute__((target("avx512f"), always_inline)) inline void chain_sweep(const float* x, int64_t K, const float* w, int64_t n, const char* pf, int64_t first,
                                                                          __m512 (&acc)[R][M]) {
  const int64_t K16 = K & ~int64_t{15};
  int64_t k = first;
  for (; k < K16; k += 32) step_f32<M, R, false>(x, K, w, n, k, 0, pf, acc);
  if (k == K16 && K16 < K) step_f32<M, R, true>(x, K, w, n, K16, static_cast<__mmask16>((1u << (K - K16)) - 1u), pf, acc);
}

// R rows of w from row n times M rows of x: the two chains of each of the R * M outputs (one sweep where 2 * R * M
// accumulators fit in 16 registers, else one sweep per chain with the odd sums parked on the stack), then the sums.
template <int M, int R>
__attribute__((target("avx512f"), always_inline)) inline void block_f32(const float* x, int64_t K, const float* w, int64_t n, const float* bias,
                                                                        float* y, int64_t N, const char* pf) {
  __m512 acc[R][M], odd[R][M];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int m = 0; m < M; ++m) acc[r][m] = odd[r][m] = _mm512_setzero_ps();
  if constexpr (2 * R * M <= 16) {
    chains_one_sweep<M, R>(x, K, w, n, pf, acc, odd);
  } else {
    chain_sweep<M, R>(x, K, w, n, pf, 16, odd);
    alignas(64) float parked[R][M][16];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
      for (int m = 0; m < M; ++m) _mm512_store_ps(parked[r][m], odd[r][m]);
    chain_sweep<M, R>(x, K, w, n, pf, 0, acc);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
      for (int m = 0; m < M; ++m) odd[r][m] = _mm512_load_ps(parked[r][m]);
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int m = 0; m < M; ++m) acc[r][m] = _mm512_add_ps(acc[r][m], odd[r][m]);
  if constexpr (M == 4 && R == 4) {
    __m512 sums = reduce_4x4(acc);
    if (bias != nullptr) sums = _mm512_add_ps(sums, _mm512_broadcast_f32x4(_mm_loadu_ps(bias + n)));
#pragma GCC unroll 4
    for (int m = 0; m < 4; ++m) _mm_storeu_ps(y + m * N + n, _mm512_extractf32x4_ps(sums, m));
    return;
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int m = 0; m < M; ++m) y[m * N + n + r] = _mm512_reduce_add_ps(acc[r][m]) + (bias != nullptr ? bias[n + r] : 0.0f);
}

// The same for bf16 operands: 32 values per step through avx512_bf16's pairwise dot product into fp32
// lanes; the sum (plus the bias, in fp32) is rounded to bf16 once.
template <int M, int R>
__attribute__((target("avx512f,avx512bw,avx512bf16"), always_inline)) inline void block_bf16(const uint16_t* x, int64_t K, const uint16_t* w, int64_t n,
                                                                                             const uint16_t* bias, uint16_t* y, int64_t N,
                                                                                             const char* pf) {
  const int64_t K32 = K & ~int64_t{31};
  __m512 acc[R][M];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int m = 0; m < M; ++m) acc[r][m] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K32; k += 32) step_bf16<M, R, false>(x, K, w, n, k, 0, pf, acc);
  if (K32 < K) step_bf16<M, R, true>(x, K, w, n, K32, static_cast<__mmask32>((1u << (K - K32)) - 1u), pf, acc);
  if constexpr (M == 4 && R == 4) {
    __m512 sums = reduce_4x4(acc);
    if (bias != nullptr) {
      uint16_t b4[16] = {bias[n], bias[n + 1], bias[n + 2], bias[n + 3]};
      sums = _mm512_add_ps(sums, _mm512_broadcast_f32x4(_mm512_castps512_ps128(bf16x16_load(b4))));
    }
    alignas(32) uint16_t out[16];
    _mm256_store_si256(reinterpret_cast<__m256i*>(out), bf16x16_round(sums));
#pragma GCC unroll 4
    for (int m = 0; m < 4; ++m) std::memcpy(y + m * N + n, out + 4 * m, 4 * sizeof(uint16_t));
    return;
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int m = 0; m < M; ++m) {
      float v = _mm512_reduce_add_ps(acc[r][m]);
      if (bias != nullptr) v += static_cast<float>(c10::BFloat16(bias[n + r], c10::BFloat16::from_bits()));
      y[m * N + n + r] = c10::BFloat16(v).x;
    }
}

// Rows [n0, n1) of y for all M rows of x: blocks of R = 4 rows of w (then the rest one at a time), and within a
// block the rows of x in groups of 4 (then 1-3): a group's 16 accumulators are in registers, it reads 4 weight
// vectors and 4 x vectors per 16 FMAs, and the block's weight rows are still in L1 for the next group, so the
// weights come from memory once per call whatever M is. Up to STREAM_MAX_ROWS_* rows of x, where the time is the
// memory's alone, the blocks are single weight rows instead: each thread then reads its rows of w in memory order,
// one stream (four streams 4 rows apart read 20-30% slower here). A row's sum is the same either way (each output
// is its own chain of FMAs over k, reduced as _mm512_reduce_add_ps reduces it). bf16 streams up to 8 rows: a weight
// vector there is 32 products for 8 x vectors from L1, and at 8 rows the single-row blocks read 27-29 GB/s where the
// 4-row blocks read 17-19 on a 2-core Zen 4 (bench_small_linear); fp32, with two chains and twice the loads per
// weight byte, reads 16-17 GB/s that way against 18-20 (bench/README.md "The decode kernel").
constexpr int64_t STREAM_MAX_ROWS_F32 = 4;
constexpr int64_t STREAM_MAX_ROWS_BF16 = 8;

template <int R>
__attribute__((target("avx512f"))) void groups_f32(const float* x, int64_t M, int64_t K, const float* w, int64_t n, const float* bias, float* y,
                                                   int64_t N) {
  // The first group streams this block from memory; the groups prefetch the blocks after it (prefetch_for; past the end
  // of w a prefetch is only a hint, never a fault).
  const char* next = reinterpret_cast<const char*>(w + (n + R) * K);
  int64_t m = 0;
  for (; m + 4 <= M; m += 4) block_f32<4, R>(x + m * K, K, w, n, bias, y + m * N, N, prefetch_for(next, m, R * K * 4));
  switch (M - m) {
    case 3: block_f32<3, R>(x + m * K, K, w, n, bias, y + m * N, N, prefetch_for(next, m, R * K * 4)); break;
    case 2: block_f32<2, R>(x + m * K, K, w, n, bias, y + m * N, N, prefetch_for(next, m, R * K * 4)); break;
    case 1: block_f32<1, R>(x + m * K, K, w, n, bias, y + m * N, N, prefetch_for(next, m, R * K * 4)); break;
    default: break;
  }
}
// One row of w against one row of x (the batch-1 decode step): block_f32<1, 1> written out as one loop, the two lines of
// the next row that a step covers prefetched first. The same sums in the same order, so the same bits; the batch-1 pass
// over the weights reads 0.98-0.99 of a plain read at ~36 GB/s and 0.92-0.94 at ~60 where the template read 0.96-0.97
// and 0.83-0.85 (bench/README.md "Two chains per output").
__attribute__((target("avx512f"))) void row1_f32(const float* x, int64_t K, const float* w, int64_t n, const float* bias, float* y) {
  const float* wr = w + n * K;
  const char* next = reinterpret_cast<const char*>(wr + K);  // past the end of w a prefetch is only a hint
  const int64_t K16 = K & ~int64_t{15};
  __m512 even = _mm512_setzero_ps(), odd = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 32 <= K16; k += 32) {
    __builtin_prefetch(next + k * 4, 0, 3);
    __builtin_prefetch(next + k * 4 + 64, 0, 3);
    even = _mm512_fmadd_ps(_mm512_loadu_ps(wr + k), _mm512_loadu_ps(x + k), even);
    odd = _mm512_fmadd_ps(_mm512_loadu_ps(wr + k + 16), _mm512_loadu_ps(x + k + 16), odd);
  }
  if (k < K16) {
    __builtin_prefetch(next + k * 4, 0, 3);
    even = _mm512_fmadd_ps(_mm512_loadu_ps(wr + k), _mm512_loadu_ps(x + k), even);
  }
  if (K16 < K) {  // the masked tail, in the chain of its block's index
    const auto tail = static_cast<__mmask16>((1u << (K - K16)) - 1u);
    __m512& chain = (K16 / 16) % 2 == 0 ? even : odd;
    chain = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, wr + K16), _mm512_maskz_loadu_ps(tail, x + K16), chain);
  }
  y[n] = _mm512_reduce_add_ps(_mm512_add_ps(even, odd)) + (bias != nullptr ? bias[n] : 0.0f);
}

__attribute__((target("avx512f"))) void rows_f32(const float* x, int64_t M, int64_t K, const float* w, int64_t n0, int64_t n1, const float* bias,
                                                 float* y, int64_t N) {
  int64_t n = n0;
  if (M == 1) {
    for (; n < n1; ++n) row1_f32(x, K, w, n, bias, y);
    return;
  }
  if (M > STREAM_MAX_ROWS_F32)
    for (; n + 4 <= n1; n += 4) groups_f32<4>(x, M, K, w, n, bias, y, N);
  for (; n < n1; ++n) groups_f32<1>(x, M, K, w, n, bias, y, N);
}

template <int R>
__attribute__((target("avx512f,avx512bw,avx512bf16"))) void groups_bf16(const uint16_t* x, int64_t M, int64_t K, const uint16_t* w, int64_t n,
                                                                         const uint16_t* bias, uint16_t* y, int64_t N) {
  // The first group streams this block from memory; the groups prefetch the blocks after it (prefetch_for; past the end
  // of w a prefetch is only a hint, never a fault).
  const char* next = reinterpret_cast<const char*>(w + (n + R) * K);
  int64_t m = 0;
  for (; m + 4 <= M; m += 4) block_bf16<4, R>(x + m * K, K, w, n, bias, y + m * N, N, prefetch_for(next, m, R * K * 2));
  switch (M - m) {
    case 3: block_bf16<3, R>(x + m * K, K, w, n, bias, y + m * N, N, prefetch_for(next, m, R * K * 2)); break;
    case 2: block_bf16<2, R>(x + m * K, K, w, n, bias, y + m * N, N, prefetch_for(next, m, R * K * 2)); break;
    case 1: block_bf16<1, R>(x + m * K, K, w, n, bias, y + m * N, N, prefetch_for(next, m, R * K * 2)); break;
    default: break;
  }
}
__attribute__((target("avx512f,avx512bw,avx512bf16"))) void rows_bf16(const uint16_t* x, int64_t M, int64_t K, const uint16_t* w, int64_t n0,
                                                                       int64_t n1, const uint16_t* bias, uint16_t* y, int64_t N) {
  int64_t n = n0;
  if (M > STREAM_MAX_ROWS_BF16)
    for (; n + 4 <= n1; n += 4) groups_bf16<4>(x, M, K, w, n, bias, y, N);
  for (; n < n1; ++n) groups_bf16<1>(x, M, K, w, n, bias, y, N);
}

// The fp32 sum of squares of a row's D values (T widened exactly): 16 lanes, the tail zero-padded, then across the lanes.
template <typename T>
__attribute__((target("avx512f"))) float sum_of_squares(const T* x, int64_t D) {
  __m512 acc = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= D; i += 16) {
    const __m512 v = Lanes<T>::load(x + i);
    acc = _mm512_fmadd_ps(v, v, acc);
  }
  if (i < D) {
    T tail[16] = {};
    std::copy(x + i, x + D, tail);
    const __m512 v = Lanes<T>::load(tail);
    acc = _mm512_fmadd_ps(v, v, acc);
  }
  return _mm512_reduce_add_ps(acc);
}

// One row of RMSNorm: r = 1 / sqrt(mean of squares + eps), then y = w * round(x * r) in fp32 or bf16.
__attribute__((target("avx512f"))) void rms_row_f32(const float* x, const float* w, float* y, int64_t D, float eps) {
  const auto tail = static_cast<__mmask16>((1u << (D % 16)) - 1u);
  const __m512 r = _mm512_set1_ps(1.0f / std::sqrt(sum_of_squares(x, D) / static_cast<float>(D) + eps));
  int64_t i = 0;
  for (; i + 16 <= D; i += 16) _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_loadu_ps(w + i), _mm512_mul_ps(_mm512_loadu_ps(x + i), r)));
  if (i < D) _mm512_mask_storeu_ps(y + i, tail, _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, w + i), _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, x + i), r)));
}

uint16_t f32_to_bf16(float f) { return c10::BFloat16(f).x; }  // round to nearest even, as torch

// The same for bf16 rows: y = round(w * round(x * r)).
__attribute__((target("avx512f"))) void rms_row_bf16(const uint16_t* x, const uint16_t* w, uint16_t* y, int64_t D, float eps) {
  const float r = 1.0f / std::sqrt(sum_of_squares(x, D) / static_cast<float>(D) + eps);
  const __m512 rv = _mm512_set1_ps(r);
  int64_t i = 0;
  for (; i + 16 <= D; i += 16) {
    const __m512 normed = bf16x16_widen(bf16x16_round(_mm512_mul_ps(bf16x16_load(x + i), rv)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), bf16x16_round(_mm512_mul_ps(bf16x16_load(w + i), normed)));
  }
  for (; i < D; ++i) y[i] = f32_to_bf16(bf16_to_float(w[i]) * bf16_to_float(f32_to_bf16(bf16_to_float(x[i]) * r)));
}

int64_t rows_of(const at::Tensor& x) { return x.dim() == 0 || x.size(-1) == 0 ? 0 : x.numel() / x.size(-1); }

// What both kernels ask of x and of the parameter p (w or the norm's weight): the switch on, CPU, the same
// dtype, fp32 with AVX-512 or bf16 with AVX-512 BF16, at most the dtype's row limit, no autograd.
bool kernel_takes(const at::Tensor& x, const at::Tensor& p) {
  if (!x.device().is_cpu() || !p.device().is_cpu() || !p.is_contiguous() || x.scalar_type() != p.scalar_type()) return false;
  const int64_t m = rows_of(x);
  return m >= 1 && m <= SMALL_LINEAR_MAX_ROWS && !x.requires_grad() && !p.requires_grad() && decode_kernels_take(x.scalar_type());
}

// y[m, n0:n1] += r[m, n0:n1] for the M rows (row stride N), as torch adds two tensors of T: fp32 exactly, bf16 widened,
// added in fp32 and rounded once. Run by the task that has just written those outputs, while they are in L1.
template <typename T>
__attribute__((target("avx512f"))) void add_residual(T* y, const T* r, int64_t M, int64_t N, int64_t n0, int64_t n1) {
  for (int64_t m = 0; m < M; ++m) {
    T* yr = y + m * N;
    const T* rr = r + m * N;
    int64_t n = n0;
    for (; n + 16 <= n1; n += 16) Lanes<T>::store(yr + n, _mm512_add_ps(Lanes<T>::load(yr + n), Lanes<T>::load(rr + n)));
    if (n < n1) {
      T a[16] = {}, b[16] = {};
      std::copy(yr + n, yr + n1, a);
      std::copy(rr + n, rr + n1, b);
      Lanes<T>::store(a, _mm512_add_ps(Lanes<T>::load(a), Lanes<T>::load(b)));
      std::copy(a, a + (n1 - n), yr + n);
    }
  }
}

}  // namespace

void small_linear_enable(bool on) { g_enabled.store(on ? 1 : 0, std::memory_order_relaxed); }

bool decode_kernels_take(at::ScalarType dtype) {
  if (!enabled()) return false;
  if (dtype == at::kFloat) return cpu_has_avx512();
  return dtype == at::kBFloat16 && cpu_has_avx512_bf16();
}

bool small_linear_applies(const at::Tensor& x, const at::Tensor& w) {
  return w.dim() == 2 && x.dim() >= 1 && x.size(-1) == w.size(1) && kernel_takes(x, w);
}

bool small_linear_takes_residual(const at::Tensor& x, const at::Tensor& w, const at::Tensor& residual) {
  if (!residual.defined() || residual.scalar_type() != x.scalar_type() || !residual.device().is_cpu() || residual.requires_grad() ||
      !residual.is_contiguous() || residual.dim() != x.dim())
    return false;
  for (int64_t d = 0; d + 1 < x.dim(); ++d)
    if (residual.size(d) != x.size(d)) return false;
  return residual.size(-1) == w.size(0);
}

at::Tensor small_linear(const at::Tensor& x_in, const at::Tensor& w, const at::Tensor& b, const at::Tensor& residual) {
  const int64_t K = w.size(1), N = w.size(0), M = rows_of(x_in);
  // x's rows of K values back to back, and y [..., N] allocated in its final shape: no reshape or view to dispatch (a
  // decode step has about 85 linears, and each dispatch costs 0.3-1 µs, bench_engine --profile).
  const at::Tensor x = x_in.contiguous();
  const at::Tensor bias = b.defined() ? b.contiguous() : b;
  at::DimVector shape(x_in.sizes());
  shape.back() = N;
  at::Tensor y = at::empty(shape, x.options());
  // Chunks of w's rows per task: about 4 per thread, so uneven thread speed evens out.
  const int64_t grain = std::max<int64_t>(16, N / (4 * std::max(1, at::get_num_threads())) / 4 * 4);
  if (x.scalar_type() == at::kFloat) {
    const float *xp = x.data_ptr<float>(), *wp = w.data_ptr<float>(), *bp = bias.defined() ? bias.data_ptr<float>() : nullptr;
    float* yp = y.data_ptr<float>();
    const float* rp = residual.defined() ? residual.data_ptr<float>() : nullptr;
    at::parallel_for(0, N, grain, [&](int64_t n0, int64_t n1) {
      rows_f32(xp, M, K, wp, n0, n1, bp, yp, N);
      if (rp != nullptr) add_residual(yp, rp, M, N, n0, n1);
    });
  } else {
    const auto* xp = reinterpret_cast<const uint16_t*>(x.data_ptr<at::BFloat16>());
    const auto* wp = reinterpret_cast<const uint16_t*>(w.data_ptr<at::BFloat16>());
    const auto* bp = bias.defined() ? reinterpret_cast<const uint16_t*>(bias.data_ptr<at::BFloat16>()) : nullptr;
    auto* yp = reinterpret_cast<uint16_t*>(y.data_ptr<at::BFloat16>());
    const auto* rp = residual.defined() ? reinterpret_cast<const uint16_t*>(residual.data_ptr<at::BFloat16>()) : nullptr;
    at::parallel_for(0, N, grain, [&](int64_t n0, int64_t n1) {
      rows_bf16(xp, M, K, wp, n0, n1, bp, yp, N);
      if (rp != nullptr) add_residual(yp, rp, M, N, n0, n1);
    });
  }
  return y;
}

bool small_rms_norm_applies(const at::Tensor& x, const at::Tensor& weight) {
  return weight.dim() == 1 && x.dim() >= 1 && weight.size(0) == x.size(-1) && kernel_takes(x, weight);
}

at::Tensor small_rms_norm(const at::Tensor& x_in, const at::Tensor& weight, double eps) {
  const int64_t D = x_in.size(-1), M = rows_of(x_in);
  const at::Tensor x = x_in.contiguous();  // rows of D values back to back
  at::Tensor y = at::empty(x_in.sizes(), x.options());
  const auto e = static_cast<float>(eps);
  for (int64_t m = 0; m < M; ++m) {
    if (x.scalar_type() == at::kFloat) rms_row_f32(x.data_ptr<float>() + m * D, weight.data_ptr<float>(), y.data_ptr<float>() + m * D, D, e);
    else
      rms_row_bf16(reinterpret_cast<const uint16_t*>(x.data_ptr<at::BFloat16>()) + m * D, reinterpret_cast<const uint16_t*>(weight.data_ptr<at::BFloat16>()),
                   reinterpret_cast<uint16_t*>(y.data_ptr<at::BFloat16>()) + m * D, D, e);
  }
  return y;
}

bool small_rope_applies(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  if (x.dim() != 4 || cos.dim() != 4 || !x.device().is_cpu() || x.stride(3) != 1 || x.size(3) % 2 != 0) return false;
  const std::vector<int64_t> table{x.size(0), x.size(1), 1, x.size(3)};
  if (!cos.sizes().equals(table) || !sin.sizes().equals(table) || !cos.is_contiguous() || !sin.is_contiguous()) return false;
  if (cos.scalar_type() != x.scalar_type() || sin.scalar_type() != x.scalar_type() || !cos.device().is_cpu() || !sin.device().is_cpu()) return false;
  return x.size(0) * x.size(1) <= SMALL_LINEAR_MAX_ROWS && !x.requires_grad() && !cos.requires_grad() && !sin.requires_grad() &&
         decode_kernels_take(x.scalar_type());
}

namespace {

// One head's row of the rotation. Plain scalar code in a function without a target attribute: the baseline x86-64 ISA
// has no fused multiply-add for the compiler to contract into, so every product and sum is rounded as torch's ops round.
template <typename T>
void rope_row(const T* x, const T* c, const T* s, T* y, int64_t E) {
  const int64_t half = E / 2;
  for (int64_t i = 0; i < E; ++i) {
    const float rot = i < half ? -static_cast<float>(x[i + half]) : static_cast<float>(x[i - half]);
    const T a = static_cast<T>(static_cast<float>(x[i]) * static_cast<float>(c[i]));
    const T b = static_cast<T>(rot * static_cast<float>(s[i]));
    y[i] = static_cast<T>(static_cast<float>(a) + static_cast<float>(b));
  }
}

// 16 lanes rounded to T and widened back: what storing a torch op's result in T does to it. In fp32 the value is already
// rounded, but GCC contracts an intrinsic's product and a later sum into one fused multiply-add (which rounds once) unless
// the product passes through something it cannot see into: the empty asm.
template <typename T>
__attribute__((target("avx512f"), always_inline)) inline __m512 rounded(__m512 v) {
  if constexpr (std::is_same_v<T, float>) {
    asm("" : "+v"(v));
    return v;
  } else {
    return bf16x16_widen(bf16x16_round(v));
  }
}

// The same row 16 lanes at a time (E / 2 a multiple of 16): the same operations in the same order, each rounded to T.
template <typename T>
__attribute__((target("avx512f"))) void rope_row_x16(const T* x, const T* c, const T* s, T* y, int64_t E) {
  const int64_t half = E / 2;
  const __m512i sign = _mm512_set1_epi32(static_cast<int32_t>(0x80000000u));
  for (int64_t i = 0; i < half; i += 16) {
    const __m512 lo = Lanes<T>::load(x + i), hi = Lanes<T>::load(x + i + half);
    const __m512 neg_hi = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(hi), sign));  // -x exactly, zeros included
    const __m512 a_lo = rounded<T>(_mm512_mul_ps(lo, Lanes<T>::load(c + i))), b_lo = rounded<T>(_mm512_mul_ps(neg_hi, Lanes<T>::load(s + i)));
    const __m512 a_hi = rounded<T>(_mm512_mul_ps(hi, Lanes<T>::load(c + i + half))), b_hi = rounded<T>(_mm512_mul_ps(lo, Lanes<T>::load(s + i + half)));
    Lanes<T>::store(y + i, _mm512_add_ps(a_lo, b_lo));
    Lanes<T>::store(y + i + half, _mm512_add_ps(a_hi, b_hi));
  }
}

template <typename T, typename Stored>
void rope_rows(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, at::Tensor& y) {
  const int64_t B = x.size(0), T_ = x.size(1), n = x.size(2), E = x.size(3);
  const Stored *xs = x.data_ptr<Stored>(), *cs = cos.data_ptr<Stored>(), *ss = sin.data_ptr<Stored>();
  Stored* ys = y.data_ptr<Stored>();
  // The 16-lane path sees the values as T (bf16: their bits); the scalar one as torch's types, which round as torch does.
  const auto* xp = reinterpret_cast<const T*>(xs);
  const auto* cp = reinterpret_cast<const T*>(cs);
  const auto* sp = reinterpret_cast<const T*>(ss);
  auto* yp = reinterpret_cast<T*>(ys);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T_; ++t)
      for (int64_t h = 0; h < n; ++h) {
        const int64_t xo = b * x.stride(0) + t * x.stride(1) + h * x.stride(2), yo = ((b * T_ + t) * n + h) * E, to = (b * T_ + t) * E;
        if ((E / 2) % 16 == 0) rope_row_x16(xp + xo, cp + to, sp + to, yp + yo, E);
        else rope_row(xs + xo, cs + to, ss + to, ys + yo, E);
      }
}

}  // namespace

at::Tensor small_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  at::Tensor y = at::empty(x.sizes(), x.options());
  if (x.scalar_type() == at::kFloat) rope_rows<float, float>(x, cos, sin, y);
  else rope_rows<uint16_t, at::BFloat16>(x, cos, sin, y);
  return y;
}

at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, const at::Tensor& residual) {
  const bool bias_ok = !b.defined() || (b.scalar_type() == x.scalar_type() && !b.requires_grad());
  const bool kernel = bias_ok && small_linear_applies(x, w);
  if (kernel && (!residual.defined() || small_linear_takes_residual(x, w, residual))) return small_linear(x, w, b, residual);
  const at::Tensor y = kernel ? small_linear(x, w, b) : at::linear(x, w, b);
  return residual.defined() ? residual + y : y;
}

}  // namespace ts
