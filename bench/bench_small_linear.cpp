// The decode kernel (src/model/small_linear.h) against at::linear, the reference, on the linears of the
// ~100M Qwen2 of bench_engine.py, in one run, same threads:
//
//   bench_small_linear [--threads 2] [--reps 200] [--in-cache 1]
//
// --in-cache 1: 128 rows per matrix (about 2 MB in all), which the caches hold: the kernel's arithmetic alone.
//
// Per dtype (fp32; bf16 where the CPU has AVX-512 BF16) and rows M in {1, 4, 8, 16}: the time of one pass
// over all of a layer's weights (q/k/v, o, gate, up, down) plus the lm_head, the weight bytes read per
// second by each, and the ratio at::linear / small_linear (> 1: the kernel is faster). Weights are 4x the
// last-level cache in total, so they come from memory as in a decode step; results are checked equal
// within the tolerance of tests/unit/test_small_linear.cpp first.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "kernel_bench.h"
#include "model/small_linear.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Shape {
  const char* name;
  int64_t n, k;
};
// One layer of the bench model (d 768, 12 heads of 64, 2 KV heads, MLP 2048) and its head (vocab 32000).
const std::vector<Shape> kShapes = {{"qkv", 1024, 768}, {"o", 768, 768}, {"gate", 2048, 768}, {"up", 2048, 768}, {"down", 768, 2048}, {"lm_head", 32000, 768}};

double time_pass(const std::vector<at::Tensor>& ws, const at::Tensor& x_small, const at::Tensor& x_wide, bool kernel, int reps) {
  std::vector<double> runs;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    for (size_t i = 0; i < ws.size(); ++i) {
      const at::Tensor& x = ws[i].size(1) == x_small.size(-1) ? x_small : x_wide;
      at::Tensor y = kernel ? ts::small_linear(x, ws[i], {}) : at::linear(x, ws[i]);
    }
    runs.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return kernel_bench::middle(runs);
}

}  // namespace

int main(int argc, char** argv) {
  ts::pin_allocator();
  const int threads = kernel_bench::int_flag(argc, argv, "--threads", 2), reps = kernel_bench::int_flag(argc, argv, "--reps", 200);
  const bool in_cache = kernel_bench::int_flag(argc, argv, "--in-cache", 0) != 0;
  at::set_num_threads(threads);
  c10::InferenceMode guard;
  std::printf("%-6s %4s %14s %14s %12s %12s %8s\n", "dtype", "rows", "at::linear ms", "kernel ms", "at GB/s", "kernel GB/s", "ratio");
  for (at::ScalarType dt : {at::kFloat, at::kBFloat16}) {
    // Four copies of the weights (about 4 x 200 MB in fp32), visited round robin: none is in cache when it is read.
    std::vector<at::Tensor> ws;
    double bytes = 0;
    for (int copy = 0; copy < 4; ++copy)
      for (const Shape& s : kShapes) {
        ws.push_back(at::randn({in_cache ? 128 : s.n, s.k}).to(dt));
        if (copy == 0) bytes += static_cast<double>(ws.back().nbytes());
      }
    if (!ts::small_linear_applies(at::zeros({1, 768}, dt), ws[0])) {
      std::printf("%-6s: the kernel does not apply on this CPU\n", dt == at::kFloat ? "fp32" : "bf16");
      continue;
    }
    for (int64_t m : {int64_t{1}, int64_t{4}, int64_t{8}, int64_t{16}, int64_t{32}, int64_t{64}}) {
      const at::Tensor x = at::randn({m, 768}).to(dt), xw = at::randn({m, 2048}).to(dt);
      for (size_t i = 0; i < kShapes.size(); ++i) {  // same results first (fp32: 1e-3 of the magnitudes; bf16: a few bf16 steps)
        const at::Tensor& xi = kShapes[i].k == 768 ? x : xw;
        const double diff = (ts::small_linear(xi, ws[i], {}).to(at::kFloat) - at::linear(xi, ws[i]).to(at::kFloat)).abs().max().item<double>();
        const double scale = at::linear(xi, ws[i]).to(at::kFloat).abs().max().item<double>();
        if (diff > (dt == at::kFloat ? 1e-4 : 2e-2) * scale) {
          std::printf("MISMATCH %s rows %lld: max |diff| %g of %g\n", kShapes[i].name, static_cast<long long>(m), diff, scale);
          return 1;
        }
      }
      const int r = std::max(5, reps / static_cast<int>(m));
      time_pass(ws, x, xw, true, 3);
      time_pass(ws, x, xw, false, 3);
      const double tk = time_pass(ws, x, xw, true, r) / 4, ta = time_pass(ws, x, xw, false, r) / 4;  // per copy of the weights
      std::printf("%-6s %4lld %14.3f %14.3f %12.1f %12.1f %7.2fx\n", dt == at::kFloat ? "fp32" : "bf16", static_cast<long long>(m), 1e3 * ta, 1e3 * tk,
                  bytes / ta / 1e9, bytes / tk / 1e9, ta / tk);
    }
  }
  return 0;
}
