// Model weights as named tensors, one struct per layer (shapes in comments; the HF checkpoint names
// of each, and which are fused, in model/tensor_names.h).
// Checkpoint-format translation happens here, at load time: q/k/v are fused into one [(H+2K)E, D]
// matrix so the forward pass does one matmul for them (gate/up stay separate: fused, the [T, 2F]
// output made prefill ~15% slower on CPU and silu then reads a strided half; see bench/README.md).
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <filesystem>
#include <vector>

#include "core/options.h"
#include "model/checkpoint_files.h"
#include "model/model_config.h"
#include "model/tensor_names.h"

namespace ts {

struct LayerWeights {
  at::Tensor attn_norm;   // [D]
  at::Tensor w_qkv;       // [(H+2K)*E, D]  rows: q (H*E), k (K*E), v (K*E)
  at::Tensor b_qkv;       // [(H+2K)*E] or undefined
  at::Tensor w_o;         // [D, H*E]
  at::Tensor b_o;         // [D] or undefined
  at::Tensor mlp_norm;    // [D]
  at::Tensor w_gate;      // [F, D]
  at::Tensor b_gate;      // [F] or undefined
  at::Tensor w_up;        // [F, D]
  at::Tensor b_up;        // [F] or undefined
  at::Tensor w_down;      // [D, F]
  at::Tensor b_down;      // [D] or undefined
};

// The member of `lw` that holds `slot` (model/tensor_names.h).
at::Tensor& layer_tensor(LayerWeights& lw, LayerSlot slot);
const at::Tensor& layer_tensor(const LayerWeights& lw, LayerSlot slot);

struct ModelWeights {
  ModelConfig config;
  int64_t layer_begin = 0;          // this object holds layers [layer_begin, layer_begin + layers.size())
  at::Tensor embed;                 // [V, D] (undefined when not loaded)
  std::vector<LayerWeights> layers;
  at::Tensor final_norm;            // [D]
  at::Tensor lm_head;               // [V, D] (same storage as embed when tied)
  int64_t parameter_bytes = 0;      // resident bytes of the tensors above (tied counted once)
};

struct LoadOptions {
  c10::ScalarType dtype = c10::ScalarType::Float;
  c10::Device device = c10::Device(c10::DeviceType::CPU);
  int64_t layer_begin = 0;
  int64_t layer_end = -1;  // -1: all
  bool with_embed = true;
  bool with_head = true;
};

// Loads validated checkpoint tensors, converting to opts.dtype on opts.device. Weights never require grad.
ModelWeights weights_load(const CheckpointFiles& ck, const LoadOptions& opts);

// A freshly initialised float32 CPU model for training from scratch, deterministic given `seed`:
// embeddings and matrices ~ N(0, init_std^2), the output projections (o_proj, down_proj) scaled by
// 1/sqrt(2 L) as in GPT-2 so the residual stream does not grow with depth, norms 1, biases 0.
ModelWeights weights_init(const ModelConfig& cfg, double init_std, uint64_t seed);

// Every distinct parameter tensor of `w` with a name (HF names; the fused q/k/v matrix is
// "model.layers.N.self_attn.qkv_proj.weight"); a tied lm_head appears once, as the embedding.
std::vector<std::pair<std::string, at::Tensor>> weights_parameters(const ModelWeights& w);

// A CPU tensor holding a copy of a safetensors tensor in its stored dtype.
at::Tensor tensor_from_safetensors(const TensorInfo& info, std::span<const std::byte> bytes);

// Resolves model.dtype for a device (auto: fp32 on CPU, the checkpoint's dtype on GPU).
c10::ScalarType dtype_resolve(ComputeDType dtype, const ModelConfig& cfg, const c10::Device& device);

}  // namespace ts
