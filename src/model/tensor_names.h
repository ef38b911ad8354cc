// The HF checkpoint's tensor names (Qwen2ForCausalLM / LlamaForCausalLM layout) and how the engine's
// weights (model/weights.h) map onto them: the one table that the expected-tensor inventory
// (model_config.cpp), the loader and the parameter list (weights.cpp) and the checkpoint writer
// (checkpoint_write.cpp) all read. Torch-free.
//
// Per decoder layer i the HF tensors are "model.layers.{i}.<suffix>". The engine keeps one tensor per
// LayerSlot; q_proj, k_proj and v_proj fill consecutive row ranges of the fused q/k/v slot (rows: q
// H*E, then k K*E, then v K*E), every other HF tensor is one slot whole.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "model/model_config.h"

namespace ts {

inline constexpr std::string_view HF_EMBED_TOKENS = "model.embed_tokens.weight";
inline constexpr std::string_view HF_FINAL_NORM = "model.norm.weight";
inline constexpr std::string_view HF_LM_HEAD = "lm_head.weight";  // absent when embeddings are tied

// The engine's tensors of one decoder layer (LayerWeights' members), in the order weights_parameters
// lists them.
enum class LayerSlot { attn_norm, w_qkv, b_qkv, w_o, b_o, mlp_norm, w_gate, b_gate, w_up, b_up, w_down, b_down };
inline constexpr std::array<LayerSlot, 12> LAYER_SLOTS = {LayerSlot::attn_norm, LayerSlot::w_qkv,  LayerSlot::b_qkv,  LayerSlot::w_o,
                                                          LayerSlot::b_o,       LayerSlot::mlp_norm, LayerSlot::w_gate, LayerSlot::b_gate,
                                                          LayerSlot::w_up,      LayerSlot::b_up,   LayerSlot::w_down, LayerSlot::b_down};

// The rows of the fused q/k/v slot an HF tensor fills (whole: the slot is that one tensor).
enum class QkvPart { whole, q, k, v };
// When a checkpoint holds the tensor: always, or with the config's bias flag.
enum class Presence { always, qkv_bias, o_bias, mlp_bias };
// An extent of a layer tensor: D, F, q = H*E or kv = K*E (ModelConfig's dimension names).
enum class Extent { d_model, d_mlp, q, kv };

struct HfLayerTensor {
  std::string_view suffix;  // after "model.layers.{i}.", e.g. "self_attn.q_proj.weight"
  LayerSlot slot;
  QkvPart part;
  Presence presence;
  std::array<Extent, 2> shape;  // unused extents are left out of the table
  int rank;                     // 1 or 2: the first `rank` extents of `shape` are the tensor's
};

// Every HF tensor of a decoder layer, in the order of model_expected_tensors.
inline constexpr std::array<HfLayerTensor, 16> HF_LAYER_TENSORS = {{
    {"input_layernorm.weight", LayerSlot::attn_norm, QkvPart::whole, Presence::always, {Extent::d_model}, 1},
    {"self_attn.q_proj.weight", LayerSlot::w_qkv, QkvPart::q, Presence::always, {Extent::q, Extent::d_model}, 2},
    {"self_attn.k_proj.weight", LayerSlot::w_qkv, QkvPart::k, Presence::always, {Extent::kv, Extent::d_model}, 2},
    {"self_attn.v_proj.weight", LayerSlot::w_qkv, QkvPart::v, Presence::always, {Extent::kv, Extent::d_model}, 2},
    {"self_attn.q_proj.bias", LayerSlot::b_qkv, QkvPart::q, Presence::qkv_bias, {Extent::q}, 1},
    {"self_attn.k_proj.bias", LayerSlot::b_qkv, QkvPart::k, Presence::qkv_bias, {Extent::kv}, 1},
    {"self_attn.v_proj.bias", LayerSlot::b_qkv, QkvPart::v, Presence::qkv_bias, {Extent::kv}, 1},
    {"self_attn.o_proj.weight", LayerSlot::w_o, QkvPart::whole, Presence::always, {Extent::d_model, Extent::q}, 2},
    {"self_attn.o_proj.bias", LayerSlot::b_o, QkvPart::whole, Presence::o_bias, {Extent::d_model}, 1},
    {"post_attention_layernorm.weight", LayerSlot::mlp_norm, QkvPart::whole, Presence::always, {Extent::d_model}, 1},
    {"mlp.gate_proj.weight", LayerSlot::w_gate, QkvPart::whole, Presence::always, {Extent::d_mlp, Extent::d_model}, 2},
    {"mlp.up_proj.weight", LayerSlot::w_up, QkvPart::whole, Presence::always, {Extent::d_mlp, Extent::d_model}, 2},
    {"mlp.down_proj.weight", LayerSlot::w_down, QkvPart::whole, Presence::always, {Extent::d_model, Extent::d_mlp}, 2},
    {"mlp.gate_proj.bias", LayerSlot::b_gate, QkvPart::whole, Presence::mlp_bias, {Extent::d_mlp}, 1},
    {"mlp.up_proj.bias", LayerSlot::b_up, QkvPart::whole, Presence::mlp_bias, {Extent::d_mlp}, 1},
    {"mlp.down_proj.bias", LayerSlot::b_down, QkvPart::whole, Presence::mlp_bias, {Extent::d_model}, 1},
}};

// "model.layers.{layer}.<suffix>".
std::string hf_layer_tensor_name(int64_t layer, const HfLayerTensor& t);
// Whether a checkpoint of `cfg` holds the tensor.
bool hf_tensor_present(const HfLayerTensor& t, const ModelConfig& cfg);
// Its shape under `cfg`.
std::vector<int64_t> hf_tensor_shape(const HfLayerTensor& t, const ModelConfig& cfg);
// The rows [first, first + count) of the fused q/k/v slot that `part` fills (not for QkvPart::whole).
std::pair<int64_t, int64_t> qkv_rows(QkvPart part, const ModelConfig& cfg);

// The name weights_parameters gives a slot of layer `layer`: the HF name of its tensor, except the
// fused q/k/v slots, "model.layers.{layer}.self_attn.qkv_proj.{weight,bias}".
std::string layer_slot_name(int64_t layer, LayerSlot slot);

}  // namespace ts
