// Batched generation with a preallocated KV cache. Prompts are left-padded to a common length; each
// row's rotary positions start at 0 at its first real token and padding keys are masked, so a
// prompt's result does not depend on the other prompts in its batch. Hooks attached to `hooks`
// apply at the prefill and at every decode step (see hooks.h for slot addressing).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
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

// The decoding state of one batch, apart from where the forward pass runs: generate_batch drives it
// with one Transformer; a pipeline of stages (dist/pipeline.h) drives one Decoder per stage and
// micro-batch, the last stage choosing the tokens and every stage advancing with the same tokens, so
// all stages agree on the batch's rows, positions and cache slots without further messages.
class Decoder {
 public:
  // `n_layer_held` and `cache_options` describe the KV cache of the layers this process holds.
  Decoder(const std::vector<GenerateRequest>& requests, const GenerateOptions& options, const ModelConfig& config,
          int64_t n_layer_held, const at::TensorOptions& cache_options, HookSet* hooks);

  // Arguments of the next forward pass: the prefill first, then one token per remaining row.
  const ForwardArgs& args() const { return args_; }
  // Rows of the next forward pass (batch dimension of args().tokens).
  int64_t rows() const { return static_cast<int64_t>(rows_.size()); }
  // Picks each row's next token from the last position's logits [rows(), 1, V] (the last stage).
  std::vector<int64_t> choose(const at::Tensor& logits) const;
  // Appends the tokens, applies EOS and stop strings, drops finished rows (without hooks) and
  // prepares args(). Returns false when every request has finished.
  bool advance(const std::vector<int64_t>& next);
  std::vector<GenerateResult> take_results() { return std::move(results_); }
  // The request of each row of the next forward pass, and the KV cache (the hybrid, hybrid/lockstep.h,
  // drives two decoders in lockstep with the same tokens and recomputes a step with an edit).
  const std::vector<size_t>& row_requests() const { return rows_; }
  KVCache& cache() { return *cache_; }

 private:
  const std::vector<GenerateRequest>& requests_;
  const GenerateOptions& opt_;
  HookSet* hooks_;
  std::vector<GenerateResult> results_;
  std::vector<bool> done_;
  std::vector<size_t> rows_;  // batch row -> request
  std::vector<int64_t> next_position_;
  int64_t prompt_len_ = 0, step_ = 0;
  size_t max_stop_ = 0;
  bool padded_ = false;
  at::Tensor key_valid_;
  std::unique_ptr<KVCache> cache_;
  ForwardArgs args_;
};

// Prompts left-padded to their longest length L, built on the CPU: tokens [B, L] (pad_id before each prompt),
// rotary positions [B, L] counted from each prompt's first token, key_valid [B, L + generated] (each prompt's
// slots, and the `generated` slots after L). Both decoders prefill through it. Throws std::invalid_argument
// ("<who>: empty prompt") when a prompt has no tokens.
struct LeftPadded {
  at::Tensor tokens, positions, key_valid;
  int64_t length = 0;   // L
  bool padded = false;  // some prompt is shorter than L
};
LeftPadded left_pad(std::span<const GenerateRequest> requests, int64_t pad_id, int64_t generated, const char* who);

// The per-row steps both decoders share. choose_tokens picks each row's next token from the last
// position's logits [n, 1, V]: argmax, or a draw with stream_uniform(options.seed, streams[j], steps[j]);
// rows with steps[j] < 0 are skipped (pad_id). Throws NonFiniteError on non-finite logits.
std::vector<int64_t> choose_tokens(const at::Tensor& logits, const GenerateOptions& options, std::span<const uint64_t> streams,
                                   std::span<const int64_t> steps);
// Appends `token` to `result` and returns whether the request has finished (EOS, a stop string ending at
// this token, or max_new_tokens reached), setting result.finish. `max_stop` is the longest stop string.
bool accept_token(GenerateResult& result, int64_t token, const GenerateOptions& options, size_t max_stop);

// Generates for every request in one batch. `hooks` may be null.
std::vector<GenerateResult> generate_batch(const Transformer& model, const std::vector<GenerateRequest>& requests,
                                           const GenerateOptions& options, HookSet* hooks = nullptr);

}  // namespace ts
