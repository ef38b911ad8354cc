// Batched generation with a preallocated KV cache. Prompts are left-padded to a common length; each
// row's rotary positions start at 0 at its first real token and padding keys are masked, so a
// prompt's result does not depend on the other prompts in its batch. Hooks attached to `hooks`
// apply at the prefill and at every decode step (see hooks.h for slot addressing).
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "model/hooks.h"
#include "model/sampling.h"
#include "model/transformer.h"

namespace ts {

struct GenerateOptions {
  int64_t max_new_tokens = 256;
  SamplingParams sampling;
  uint64_t seed = 0;
  std::vector<int64_t> eos_ids;
  std::vector<std::string> stop_strings;
  // Detokenizer for stop strings (required when stop_strings is non-empty).
  std::function<std::string(std::span<const int32_t>)> decode;
  int64_t pad_id = 0;
};

struct GenerateRequest {
  std::vector<int32_t> prompt;  // token ids, non-empty
  uint64_t stream = 0;          // sampling stream (stream_id_of(prompt id))
};

enum class FinishReason { EOS, STOP_STRING, LENGTH };
const char* finish_reason_name(FinishReason r);

struct GenerateResult {
  std::vector<int32_t> tokens;  // new tokens, including the EOS token or the tokens completing a stop string
  FinishReason finish = FinishReason::LENGTH;
};

// Generates for every request in one batch. `hooks` may be null.
std::vector<GenerateResult> generate_batch(const Transformer& model, const std::vector<GenerateRequest>& requests,
                                           const GenerateOptions& options, HookSet* hooks = nullptr);

}  // namespace ts
