// The decoder-only transformer shared by Qwen2 and Llama (one generic block; qkv bias and rope scaling
// come from the config, never from an architecture check). Dimension names: see model_config.h.
#pragma once
#include <ATen/core/Tensor.h>

#include <filesystem>
#include <limits>

#include "model/hooks.h"
#include "model/kv_cache.h"
#include "model/weights.h"

namespace ts {

enum class LogitsMode { ALL, LAST, NONE };

struct ForwardArgs {
  at::Tensor tokens;     // [B, T] int64
  at::Tensor positions;  // [B, T] int64 rotary positions (per row: left padding shifts them)
  at::Tensor key_valid;  // [B, slot_start+T] bool: false marks padding keys; undefined: all valid
  int64_t slot_start = 0;                                     // slot of tokens[:, 0]
  at::Tensor row_slots;  // [B] int64: one token per row, row b at its own slot row_slots[b] (continuous batching);
                         // then slot_start = max(row_slots) and key_valid [B, slot_start+1] marks each row's keys
  int64_t prompt_end = std::numeric_limits<int64_t>::max();   // slots < prompt_end are prompt (for hooks)
  KVCache* cache = nullptr;  // nullptr: attend within this call only
  HookSet* hooks = nullptr;
  LogitsMode logits = LogitsMode::ALL;
  at::Tensor hidden_in;  // [B, T, D]: start from this residual stream instead of embedding tokens (pipeline stages)
  int64_t first_layer = 0;  // held layer to start at (> 0 needs hidden_in: the stream entering it; the hybrid's
                            // steered step reruns only the layers after the steering layer)
  int64_t end_layer = -1;   // held layer to stop before (-1: all); a forward that stops early returns the residual
                            // stream entering it, as LogitsMode::NONE
};

class Transformer {
 public:
  explicit Transformer(ModelWeights weights);
  static Transformer load(const std::filesystem::path& dir, const LoadOptions& opts);

  // Logits [B, T, V] (ALL), [B, 1, V] (LAST) in the compute dtype; NONE returns the residual stream
  // after the last held layer ([B, T, D], before the final norm).
  at::Tensor forward(const ForwardArgs& args) const;

  // The final norm and lm_head on chosen rows of the residual stream after the last layer ([N, D] of a
  // forward with LogitsMode::NONE): logits [N, V] where only some positions need them (the
  // ln_final hook does not run here). Needs the last layers' weights.
  at::Tensor head(const at::Tensor& rows) const;

  const ModelConfig& config() const { return w_.config; }
  const ModelWeights& weights() const { return w_; }
  at::TensorOptions options() const;
  int64_t n_layer_held() const { return static_cast<int64_t>(w_.layers.size()); }

 private:
  at::Tensor block(int64_t il, at::Tensor x, const ForwardArgs& args, const at::Tensor& cos, const at::Tensor& sin,
                   const at::Tensor& mask, bool causal, const HookContext& ctx) const;
  // attention and mlp return their output plus `residual` when it is defined (the block's residual add, fused into the
  // last linear where the kernels run: model/small_linear.h).
  at::Tensor attention(int64_t il, const at::Tensor& x, const ForwardArgs& args, const at::Tensor& cos, const at::Tensor& sin,
                       const at::Tensor& mask, bool causal, const HookContext& ctx, const at::Tensor& residual = {}) const;
  at::Tensor decode_step_attention(int64_t il, const at::Tensor& qk, const at::Tensor& qkv, const ForwardArgs& args, const at::Tensor& mask,
                                   bool causal) const;
  at::Tensor mlp(int64_t il, const at::Tensor& x, const at::Tensor& residual = {}) const;
  at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight) const;

  ModelWeights w_;
  at::Tensor inv_freq_;  // [E/2] fp32, rope scaling applied
};

// Rotary inverse frequencies exactly as HF computes them (fp32), with default, linear or llama3 scaling.
at::Tensor rope_inv_freq(const ModelConfig& cfg);

}  // namespace ts
