// The CPU attention kernels (src/model/decode_attention.h, src/model/prefill_attention.h) against torch's SDPA, the
// reference, on the attention of the ~100M Qwen2 of bench_engine.py (12 query heads of 64 over 2 KV heads), in one run,
// same threads:
//
//   bench_attention [--threads 2] [--reps 200]
//
// Decode, per dtype and (batch, context): the time of one call, q [B, 12, 1, 64] against a KV cache view [B, 2, S, 64] of
// a larger cache with a key_valid mask as the continuous batcher passes it, for
//   * the kernel;
//   * at::scaled_dot_product_attention in the same dtype (enable_gqa), the reference;
//   * bf16 only: SDPA of q, k and v cast to fp32, what the forward did for bf16 before the kernel;
// and the ratio reference / kernel (> 1: the kernel is faster). Prefill, per dtype and [B, T]: causal self-attention of
// q [B, 12, T, 64] over k, v [B, 2, T, 64], the kernel against SDPA (is_causal, enable_gqa) in the same dtype. Results
// are checked against the fp32 SDPA first (1e-4 of the magnitude; bf16 2e-2).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/allocator.h"
#include "kernel_bench.h"
#include "model/decode_attention.h"
#include "model/prefill_attention.h"

namespace {

double median_ms(const std::function<at::Tensor()>& f, int reps) {
  for (int r = 0; r < 3; ++r) f();
  std::vector<double> runs;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    at::Tensor y = f();
    runs.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return kernel_bench::middle(runs);
}

}  // namespace

int main(int argc, char** argv) {
  ts::pin_allocator();
  const int threads = kernel_bench::int_flag(argc, argv, "--threads", 2), reps = kernel_bench::int_flag(argc, argv, "--reps", 200);
  at::set_num_threads(threads);
  c10::InferenceMode guard;
  at::manual_seed(0);
  std::printf("%-5s %5s %7s %10s %10s %14s %8s\n", "dtype", "batch", "context", "SDPA ms", "kernel ms", "SDPA fp32 ms", "ratio");
  for (at::ScalarType dt : {at::kFloat, at::kBFloat16})
    for (int64_t B : {1, 8, 32})
      for (int64_t S : {128, 512, 2048}) {
        const at::Tensor q = at::randn({B, 12, 1, 64}).to(dt);
        const at::Tensor k = at::randn({B, 2, S + 64, 64}).to(dt).narrow(2, 0, S), v = at::randn({B, 2, S + 64, 64}).to(dt).narrow(2, 0, S);
        const at::Tensor mask = at::rand({B, 1, 1, S}).lt(0.95).logical_or(at::arange(S).eq(S - 1));
        if (!ts::decode_attention_applies(q, k, v, mask, false)) {
          std::printf("%-5s: the kernel does not apply on this CPU\n", dt == at::kFloat ? "fp32" : "bf16");
          break;
        }
        const auto sdpa = [&] { return at::scaled_dot_product_attention(q, k, v, mask, 0.0, false, std::nullopt, true); };
        const auto sdpa_f32 = [&] {
          return at::scaled_dot_product_attention(q.to(at::kFloat), k.to(at::kFloat), v.to(at::kFloat), mask, 0.0, false, std::nullopt, true).to(dt);
        };
        const auto kernel = [&] { return ts::decode_attention(q, k, v, mask); };
        const at::Tensor ref = sdpa_f32().to(at::kFloat);
        const double diff = (kernel().to(at::kFloat) - ref).abs().max().item<double>();
        if (diff > (dt == at::kFloat ? 1e-4 : 2e-2) * std::max(1.0, ref.abs().max().item<double>())) {
          std::printf("MISMATCH batch %lld context %lld: max |diff| %g\n", static_cast<long long>(B), static_cast<long long>(S), diff);
          return 1;
        }
        const int r = std::max(10, static_cast<int>(reps * 128 / S / B));
        const double tk = median_ms(kernel, r), ts_ = median_ms(sdpa, r);
        const double tf = dt == at::kBFloat16 ? median_ms(sdpa_f32, r) : ts_;
        std::printf("%-5s %5lld %7lld %10.4f %10.4f %14.4f %7.2fx\n", dt == at::kFloat ? "fp32" : "bf16", static_cast<long long>(B), static_cast<long long>(S),
                    ts_, tk, tf, std::min(ts_, tf) / tk);
      }
  std::printf("\n%-5s %5s %6s %10s %10s %8s %16s\n", "dtype", "batch", "T", "SDPA ms", "kernel ms", "ratio", "kernel GFLOP/s");
  for (at::ScalarType dt : {at::kFloat, at::kBFloat16})
    for (auto [B, T] : {std::pair<int64_t, int64_t>{4, 256}, {1, 1024}, {1, 2048}}) {
      const at::Tensor q = at::randn({B, 12, T, 64}).to(dt), k = at::randn({B, 2, T, 64}).to(dt), v = at::randn({B, 2, T, 64}).to(dt);
      if (!ts::prefill_attention_applies(q, k, v, at::Tensor(), true)) break;
      const auto sdpa = [&] { return at::scaled_dot_product_attention(q, k, v, std::nullopt, 0.0, true, std::nullopt, true); };
      const auto kernel = [&] { return ts::prefill_attention(q, k, v, at::Tensor(), true); };
      const at::Tensor ref = at::scaled_dot_product_attention(q.to(at::kFloat), k.to(at::kFloat), v.to(at::kFloat), std::nullopt, 0.0, true,
                                                              std::nullopt, true);
      const double diff = (kernel().to(at::kFloat) - ref).abs().max().item<double>();
      if (diff > (dt == at::kFloat ? 1e-4 : 2e-2) * std::max(1.0, ref.abs().max().item<double>())) {
        std::printf("MISMATCH prefill [%lld, %lld]: max |diff| %g\n", static_cast<long long>(B), static_cast<long long>(T), diff);
        return 1;
      }
      const int r = std::max(3, static_cast<int>(reps * 256 * 4 / (B * T * T / 64) / 10));
      const double tk = median_ms(kernel, r), ts_ = median_ms(sdpa, r);
      const double flops = 2.0 * 2 * B * 12 * 64 * (T * (T + 1) / 2.0);  // q k^T and p v over the causal half
      std::printf("%-5s %5lld %6lld %10.3f %10.3f %7.2fx %16.1f\n", dt == at::kFloat ? "fp32" : "bf16", static_cast<long long>(B),
                  static_cast<long long>(T), ts_, tk, ts_ / tk, flops / tk / 1e6);
    }
  return 0;
}
