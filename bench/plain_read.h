// bench_engine's `bandwidth MB` command: the plain read that decode speeds are compared with. Header-only,
// included by bench_engine.cpp (compiled with -fopenmp for at::parallel_for, bench/CMakeLists.txt).
#pragma once
#include <ATen/Parallel.h>
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace plain_read {

// The machine's attainable read bandwidth for this process: a plain read of a buffer of `mb` MiB (64-byte
// vector loads summed into 8 independent accumulators; AVX-512 where the CPU has it, as the decode kernel
// uses), split over the same threads as the engine (at::parallel_for; this file is compiled with -fopenmp); the
// best of `reps` passes after one that faults the pages in. The buffer should be several times the weights so
// that no cache level holds it.
__attribute__((target("avx512f"))) inline uint64_t sum_avx512(const uint64_t* p, int64_t words) {
  __m512i acc[8];
  for (auto& a : acc) a = _mm512_setzero_si512();
  for (int64_t i = 0; i + 64 <= words; i += 64)
    for (int k = 0; k < 8; ++k) acc[k] = _mm512_add_epi64(acc[k], _mm512_loadu_si512(p + i + 8 * k));
  for (int k = 1; k < 8; ++k) acc[0] = _mm512_add_epi64(acc[0], acc[k]);
  alignas(64) uint64_t lanes[8];
  _mm512_store_si512(lanes, acc[0]);
  uint64_t t = 0;
  for (uint64_t x : lanes) t += x;
  return t;
}
inline uint64_t sum_plain(const uint64_t* p, int64_t words) {
  uint64_t acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int64_t i = 0; i + 8 <= words; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += p[i + k];
  uint64_t t = 0;
  for (uint64_t x : acc) t += x;
  return t;
}

inline std::string read_bandwidth(int64_t mb, int reps) {
  const int64_t n = (mb << 20) / 8 / 64 * 64;
  std::vector<uint64_t> buf(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) buf[static_cast<size_t>(i)] = static_cast<uint64_t>(i);
  const bool avx512 = __builtin_cpu_supports("avx512f");
  double best = 0.0;
  uint64_t check = 0;
  for (int r = 0; r <= reps; ++r) {
    std::vector<uint64_t> sums(static_cast<size_t>(at::get_num_threads()) + 1, 0);
    const auto t0 = std::chrono::steady_clock::now();
    at::parallel_for(0, n / 64, 1 << 10, [&](int64_t b, int64_t e) {
      const uint64_t* p = buf.data() + b * 64;
      sums[static_cast<size_t>(at::get_thread_num())] += avx512 ? sum_avx512(p, (e - b) * 64) : sum_plain(p, (e - b) * 64);
    });
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (uint64_t x : sums) check += x;
    if (r > 0) best = std::max(best, static_cast<double>(n * 8) / secs / 1e9);
  }
  return "{\"gb_s\":" + std::to_string(best) + ",\"bytes\":" + std::to_string(n * 8) + ",\"vector\":\"" + (avx512 ? "avx512" : "scalar") +
         "\",\"check\":" + std::to_string(check % 1000) + "}";
}

}  // namespace plain_read
