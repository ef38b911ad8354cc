// One pass over the last position's logits of a decode step on the CPU: whether every value is finite and, for greedy
// decoding, each row's first maximum (torch.argmax's tie rule). It replaces the unfused form (widen bf16 to fp32,
// isfinite, all, argmax: 5-6 torch passes and 3 temporaries), which cost 0.25 ms of a 5.6 ms bf16 step at batch 8 and
// 0.5 ms at batch 16 (bench/README.md "Greedy choice in one pass"). The result is exact: the same token ids as
// argmax on the widened logits whenever all are finite (widening bf16 is exact, and a maximum has no rounding).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace ts {

// Whether logits_scan handles `logits` [n, V]: CPU, fp32 or bf16 where the decode kernels run (model/small_linear.h's
// decode_kernels_take), the last dimension contiguous.
bool logits_scan_applies(const at::Tensor& logits);

// Scans each row of `logits` [n, V] (logits_scan_applies). Returns false when some value is NaN or infinite; otherwise
// true, and with `argmax` non-null fills it with each row's first maximum ([n] entries).
bool logits_scan(const at::Tensor& logits, std::vector<int64_t>* argmax);

}  // namespace ts
