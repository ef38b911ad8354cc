// bench_engine's `bandwidth MB` command: the plain read that decode speeds are compared with. Header-only,
// included by bench_engine.cpp (compiled with -fopenmp for at::parallel_for, bench/CMakeLists.txt).
#pragma once
#include <ATen/Parallel.h>
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

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

// One parallel pass over words [0, n) of p, as read_bandwidth times it: seconds; the sum goes to `check`.
inline double read_once(const uint64_t* p, int64_t n, uint64_t& check) {
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  std::vector<uint64_t> sums(static_cast<size_t>(at::get_num_threads()) + 1, 0);
  const auto t0 = std::chrono::steady_clock::now();
  at::parallel_for(0, n / 64, 1 << 10, [&](int64_t b, int64_t e) {
    sums[static_cast<size_t>(at::get_thread_num())] += avx512 ? sum_avx512(p + b * 64, (e - b) * 64) : sum_plain(p + b * 64, (e - b) * 64);
  });
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (uint64_t x : sums) check += x;
  return secs;
}

// A buffer of `mb` MiB, filled (its pages faulted in), read in windows of `window_bytes` in turn. Its memory is advised
// for transparent huge pages before the fill, as the engine's CPU weights are (src/model/weights.cpp): on a VM whose THP
// is `madvise`, a buffer on 4 KiB pages reads slower than the weights and would flatter the decode's share.
class Windows {
 public:
  Windows(int64_t mb, int64_t window_bytes)
      : words_((mb << 20) / 8 / 64 * 64), buf_(allocate(words_), std::free), window_(window_bytes / 8 / 64 * 64) {
    for (int64_t i = 0; i < words_; ++i) buf_.get()[i] = static_cast<uint64_t>(i);
  }
  // Seconds to read the next window.
  double read_next() {
    if (next_ + window_ > words_) next_ = 0;
    const double s = read_once(buf_.get() + next_, window_, check_);
    next_ += window_;
    return s;
  }
  int64_t window_bytes() const { return window_ * 8; }
  uint64_t check() const { return check_; }

 private:
  static uint64_t* allocate(int64_t words) {
    constexpr size_t huge = size_t{1} << 21;
    const size_t bytes = (static_cast<size_t>(words) * 8 + huge - 1) / huge * huge;
    void* p = nullptr;
    if (posix_memalign(&p, huge, bytes) != 0) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    madvise(p, bytes, MADV_HUGEPAGE);
#endif
    return static_cast<uint64_t*>(p);
  }

  int64_t words_;
  std::unique_ptr<uint64_t, decltype(&std::free)> buf_;
  int64_t window_, next_ = 0;
  uint64_t check_ = 0;
};

// The median (of an even count, the mean of the middle two); 0 for none. bench_engine's medians are this one.
inline double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Runs `step` once, then `steps` times, each followed by a plain read of weight_bytes (windows of a buffer 4x that, in
// turn, so no cache holds them): JSON with the medians over the pairs of read time / step time ("share") and of both
// GB/s. A pair's halves are milliseconds apart, so the VM's bandwidth drift cancels.
inline std::string paired(const std::function<void()>& step, int64_t steps, int64_t weight_bytes) {
  Windows reads(4 * (weight_bytes >> 20) + 4, weight_bytes);
  step();
  reads.read_next();
  std::vector<double> shares, step_gb, read_gb;
  for (int64_t i = 0; i < steps; ++i) {
    const auto t = std::chrono::steady_clock::now();
    step();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count(), r = reads.read_next();
    shares.push_back(r / s);
    step_gb.push_back(static_cast<double>(weight_bytes) / s / 1e9);
    read_gb.push_back(static_cast<double>(reads.window_bytes()) / r / 1e9);
  }
  return "{\"steps\":" + std::to_string(steps) + ",\"share\":" + std::to_string(median(shares)) + ",\"step_gb_s\":" + std::to_string(median(step_gb)) +
         ",\"read_gb_s\":" + std::to_string(median(read_gb)) + ",\"check\":" + std::to_string(reads.check() % 1000) + "}";
}

inline std::string read_bandwidth(int64_t mb, int reps) {
  Windows w(mb, mb << 20);
  double best = 0.0;
  for (int r = 0; r <= reps; ++r) {
    const double secs = w.read_next();
    if (r > 0) best = std::max(best, static_cast<double>(w.window_bytes()) / secs / 1e9);
  }
  return "{\"gb_s\":" + std::to_string(best) + ",\"bytes\":" + std::to_string(w.window_bytes()) + ",\"vector\":\"" +
         (__builtin_cpu_supports("avx512f") ? "avx512" : "scalar") + "\",\"check\":" + std::to_string(w.check() % 1000) + "}";
}

}  // namespace plain_read
