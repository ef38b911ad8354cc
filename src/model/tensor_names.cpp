// The HF tensor-name table (tensor_names.h).
#include "model/tensor_names.h"

#include <stdexcept>

namespace ts {

namespace {

std::string layer_prefix(int64_t layer) { return "model.layers." + std::to_string(layer) + "."; }

int64_t extent_of(Extent e, const ModelConfig& c) {
  switch (e) {
    case Extent::d_model: return c.d_model;
    case Extent::d_mlp: return c.d_mlp;
    case Extent::q: return c.n_head * c.d_head;
    case Extent::kv: return c.n_kv_head * c.d_head;
  }
  return 0;
}

}  // namespace

std::string hf_layer_tensor_name(int64_t layer, const HfLayerTensor& t) { return layer_prefix(layer) + std::string(t.suffix); }

bool hf_tensor_present(const HfLayerTensor& t, const ModelConfig& c) {
  switch (t.presence) {
    case Presence::always: return true;
    case Presence::qkv_bias: return c.qkv_bias;
    case Presence::o_bias: return c.o_bias;
    case Presence::mlp_bias: return c.mlp_bias;
  }
  return false;
}

std::vector<int64_t> hf_tensor_shape(const HfLayerTensor& t, const ModelConfig& c) {
  std::vector<int64_t> shape;
  for (int i = 0; i < t.rank; ++i) shape.push_back(extent_of(t.shape[static_cast<size_t>(i)], c));
  return shape;
}

std::pair<int64_t, int64_t> qkv_rows(QkvPart part, const ModelConfig& c) {
  const int64_t q = c.n_head * c.d_head, kv = c.n_kv_head * c.d_head;
  switch (part) {
    case QkvPart::q: return {0, q};
    case QkvPart::k: return {q, kv};
    case QkvPart::v: return {q + kv, kv};
    case QkvPart::whole: break;
  }
  throw std::invalid_argument("qkv_rows: not a part of the fused q/k/v tensor");
}

std::string layer_slot_name(int64_t layer, LayerSlot slot) {
  if (slot == LayerSlot::w_qkv) return layer_prefix(layer) + "self_attn.qkv_proj.weight";
  if (slot == LayerSlot::b_qkv) return layer_prefix(layer) + "self_attn.qkv_proj.bias";
  for (const HfLayerTensor& t : HF_LAYER_TENSORS)
    if (t.slot == slot) return hf_layer_tensor_name(layer, t);
  throw std::invalid_argument("layer_slot_name: unknown slot");
}

}  // namespace ts
