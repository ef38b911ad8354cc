// y = x W^T + b for a few rows of x on the CPU (and RMSNorm on them): the decode step's matrix-vector products, where the time
// is reading W once from memory (docs/architecture.md "Decode kernels").
//
// torch's CPU linear for a handful of rows reads W well below the memory bandwidth on some CPUs (MKL's
// fp32 GEMV on AMD reads ~18 GB/s of a 35 GB/s machine; a batch of 8 rows, 10 GB/s: bench/bench_engine.py
// --profile). This kernel streams each row of W once per call and multiplies it with every row of x while
// it is in registers (AVX-512, fp32 accumulation), split over torch's threads by rows of W (at::parallel_for:
// this file is compiled with -fopenmp, cmake/Dependencies.cmake).
//
// Numerics: y[m, n] is the fp32 dot product of x[m] and W[n] summed in a fixed order that depends on K
// only, never on the number of rows or threads, so a row's result is the same alone or in a batch (the
// continuous batcher relies on nothing more than what at::linear gives, but this is stronger). bf16
// operands: products accumulated in fp32 (avx512_bf16's dot product), the result rounded to bf16 once, as
// oneDNN does.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace ts {

// The most rows the kernel takes; more go to at::linear. On this project's AMD CPU (bench/bench_small_linear,
// bench/README.md "The decode kernel") MKL's fp32 GEMM reads W at 5-7 GB/s from 17 to 64 rows and the kernel is
// 2.3-3x faster there (batched decode at batch 32 ran slower than at batch 8 before); oneDNN's bf16 GEMM is 1.2-1.5x
// slower than the kernel at 32 rows and 1.1-1.3x at 64, once the kernel reduces a full block with a transpose tree.
inline constexpr int64_t SMALL_LINEAR_MAX_ROWS = 64;

// Whether small_linear handles (x, w): CPU, fp32 (any AVX-512 CPU) or bf16 (AVX-512 BF16), w [N, K]
// contiguous, x [..., K] with at most SMALL_LINEAR_MAX_ROWS rows, and the switch
// below on.
bool small_linear_applies(const at::Tensor& x, const at::Tensor& w);

// x [..., K], w [N, K], b [N] or undefined: [..., N] in x's dtype. Requires small_linear_applies, and for a defined
// `residual` small_linear_takes_residual: then the result is residual + (x W^T + b), each output added by the thread that
// computed it, in the arithmetic of torch's add (the same bits as the two ops; the decode step's residual adds, 24 a
// step, cost a dispatch and an allocation each).
at::Tensor small_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, const at::Tensor& residual = {});
// residual [..., N] like the output: x's dtype, contiguous, CPU, no autograd.
bool small_linear_takes_residual(const at::Tensor& x, const at::Tensor& w, const at::Tensor& residual);

// at::linear (plus `residual` when given, residual + linear), or small_linear where it applies: what the forward pass calls.
at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b = {}, const at::Tensor& residual = {});

// HF's RMSNorm, weight * (x * rsqrt(mean(x^2) + eps)) with the normalisation in fp32 and rounded to x's dtype
// before the scale, fused into one pass per row for the decode step (the unfused form is 6-8 torch ops, 25
// times a token: 0.3 ms of a 10 ms fp32 step at batch 1, 0.8 ms of an 8 ms bf16 step at batch 8). Applies to the
// same rows as small_linear (CPU, fp32 / bf16 with AVX-512 / AVX-512 BF16, at most SMALL_LINEAR_MAX_ROWS rows, no
// autograd, x contiguous in its last dimension, weight [D] of x's dtype); each row alone, so the same bits in any
// batch. The sum of squares is in fp32 in another order than torch's: within a few fp32 ulps of the unfused form.
bool small_rms_norm_applies(const at::Tensor& x, const at::Tensor& weight);
at::Tensor small_rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps);

// HF's rotary embedding x * cos + rotate_half(x) * sin of the decode rows in one pass, with the same roundings as the
// unfused form (each product and the sum rounded to x's dtype; no fused multiply-add): the same bits. The unfused form is
// 8 torch ops a layer (narrow, neg, cat, 2 mul, add and views). x [B, T, n, E] contiguous in its last dimension, cos and sin
// [B, T, 1, E] contiguous of x's dtype, B * T at most SMALL_LINEAR_MAX_ROWS, CPU, fp32 or bf16 where the kernels run, no
// autograd. Returns a contiguous [B, T, n, E].
bool small_rope_applies(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);
at::Tensor small_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

// On by default; THINKSTEER_SMALL_LINEAR=0 in the environment (read once) or this call turns the decode kernels off
// (these two and model/decode_attention.h: the benchmark's reference, a suspected kernel problem).
void small_linear_enable(bool on);

// Whether the decode kernels are on and this CPU has what `dtype` needs (fp32: AVX-512; bf16: AVX-512 BF16).
bool decode_kernels_take(at::ScalarType dtype);

}  // namespace ts
