// Token selection. Greedy is argmax (first index on ties, as torch.argmax). Sampling follows HF's
// order (temperature, top-k, top-p) and draws its uniform number from a counter-based stream keyed by
// (seed, prompt stream id, step), so a prompt's tokens never depend on its batch, rank or restart.
#pragma once
#include <cstdint>
#include <string_view>

namespace ts {

struct SamplingParams {
  double temperature = 0.0;  // 0: greedy
  double top_p = 1.0;
  int64_t top_k = 0;         // 0: off
};

// Stable 64-bit id of a prompt (FNV-1a of its id string).
uint64_t stream_id_of(std::string_view prompt_id);
// Uniform double in [0, 1) for (seed, stream, step); pure function.
double stream_uniform(uint64_t seed, uint64_t stream, uint64_t step);

// Picks a token from one row of logits (fp32, length V) with uniform draw u.
int64_t sample_from_logits(const float* logits, int64_t V, const SamplingParams& params, double u);

}  // namespace ts
