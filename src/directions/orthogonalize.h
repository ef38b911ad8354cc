// Directional ablation as a weight edit (docs/algorithms.md §D, the refusal-direction method that §E's
// reasoning-direction analyses build on): a unit direction r projected out of everything that writes to
// the residual stream, so that the stream never has a component along r.
//
//   hooks   at every layer l: x <- x - (x.r) r at blocks.{l}.hook_resid_pre, hook_attn_out and
//           hook_mlp_out (HookSet::project_out);
//   weights W_E <- W_E - (W_E r) r^T (each token's embedding row), and at every layer
//           o_proj.weight <- (I - r r^T) o_proj.weight, down_proj.weight <- (I - r r^T) down_proj.weight
//           (their output spaces), with o_proj / down_proj biases (Llama attention_bias, mlp_bias)
//           projected the same way. With tied embeddings the unembedding must stay the original: the
//           export unties it (lm_head.weight = the original embedding, tie_word_embeddings = false).
//
// The two are the same function: the embedding enters the stream without r, every block adds only
// r-free outputs, so resid_pre's projection never has anything to remove (tests/directions checks the
// exported checkpoint against the hooks on the tiny HF reference models). Arithmetic in fp32.
#pragma once
#include <ATen/core/Tensor.h>

#include "model/checkpoint_edit.h"
#include "model/checkpoint_files.h"
#include "model/hooks.h"

namespace ts::directions {

// The edit for model/checkpoint_edit.h's writer: the replaced tensors, lm_head added when tied, and the
// config update. `direction` is [d_model] (normalised here; a zero direction is std::invalid_argument).
// The caller sets the marker and files.
CheckpointEdit orthogonalize(const CheckpointFiles& ck, const at::Tensor& direction);

// The hook version on `hooks` (every layer of the model): project_out at resid_pre, attn_out and mlp_out.
void ablate_with_hooks(HookSet& hooks, int64_t n_layer, const at::Tensor& direction);

}  // namespace ts::directions
