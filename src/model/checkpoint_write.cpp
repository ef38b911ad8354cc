#include "model/checkpoint_write.h"

#include <ATen/ATen.h>

#include <stdexcept>

#include "core/atomic_file.h"
#include "model/safetensors.h"
#include "model/tensor_names.h"

namespace ts {
namespace fs = std::filesystem;

json model_config_to_json(const ModelConfig& c, const std::string& dtype_name) {
  const bool qwen2 = c.architecture == "Qwen2ForCausalLM";
  json j = {{"architectures", {c.architecture}},
            {"model_type", qwen2 ? "qwen2" : "llama"},
            {"hidden_size", c.d_model},
            {"intermediate_size", c.d_mlp},
            {"num_hidden_layers", c.n_layer},
            {"num_attention_heads", c.n_head},
            {"num_key_value_heads", c.n_kv_head},
            {"head_dim", c.d_head},
            {"vocab_size", c.n_vocab},
            {"max_position_embeddings", c.max_position},
            {"rms_norm_eps", c.rms_norm_eps},
            {"rope_theta", c.rope.theta},
            {"hidden_act", "silu"},
            {"tie_word_embeddings", c.tie_word_embeddings},
            {"torch_dtype", dtype_name},
            {"attention_dropout", 0.0},
            {"use_cache", true}};
  if (c.bos_token_id >= 0) j["bos_token_id"] = c.bos_token_id;
  if (c.eos_token_ids.size() == 1) j["eos_token_id"] = c.eos_token_ids[0];
  else if (!c.eos_token_ids.empty()) j["eos_token_id"] = c.eos_token_ids;
  if (c.pad_token_id >= 0) j["pad_token_id"] = c.pad_token_id;
  if (qwen2) {
    if (!c.qkv_bias || c.o_bias || c.mlp_bias) throw std::invalid_argument("a Qwen2 checkpoint has q/k/v biases and no others");
    j["use_sliding_window"] = false;
    j["sliding_window"] = nullptr;
    j["max_window_layers"] = c.n_layer;
  } else {
    if (c.qkv_bias != c.o_bias) throw std::invalid_argument("a Llama checkpoint has either all attention biases or none");
    j["attention_bias"] = c.qkv_bias;
    j["mlp_bias"] = c.mlp_bias;
  }
  if (c.rope.type == "linear") {
    j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", c.rope.factor}};
  } else if (c.rope.type == "llama3") {
    j["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", c.rope.factor},
                         {"low_freq_factor", c.rope.low_freq_factor},
                         {"high_freq_factor", c.rope.high_freq_factor},
                         {"original_max_position_embeddings", c.rope.original_max_position_embeddings}};
  }
  return j;
}

std::map<std::string, at::Tensor> checkpoint_tensors(const ModelWeights& w, c10::ScalarType dtype) {
  const ModelConfig& c = w.config;
  if (w.layer_begin != 0 || static_cast<int64_t>(w.layers.size()) != c.n_layer || !w.embed.defined() || !w.final_norm.defined())
    throw std::invalid_argument("checkpoint_write needs the whole model (all layers, embeddings and head)");
  std::map<std::string, at::Tensor> out;
  auto put = [&](const std::string& name, const at::Tensor& t) {
    if (t.defined()) out[name] = t.detach().to(at::kCPU, dtype).contiguous();
  };
  put(std::string(HF_EMBED_TOKENS), w.embed);
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const LayerWeights& lw = w.layers[static_cast<size_t>(l)];
    for (const HfLayerTensor& h : HF_LAYER_TENSORS) {
      const at::Tensor& t = layer_tensor(lw, h.slot);
      if (!t.defined()) continue;
      if (h.part == QkvPart::whole) {
        put(hf_layer_tensor_name(l, h), t);
      } else {
        const auto [first, count] = qkv_rows(h.part, c);
        put(hf_layer_tensor_name(l, h), t.narrow(0, first, count));
      }
    }
  }
  put(std::string(HF_FINAL_NORM), w.final_norm);
  if (!c.tie_word_embeddings) put(std::string(HF_LM_HEAD), w.lm_head);
  return out;
}

namespace {

DType safetensors_dtype(c10::ScalarType t) {
  switch (t) {
    case at::kFloat: return DType::F32;
    case at::kBFloat16: return DType::BF16;
    case at::kHalf: return DType::F16;
    default: throw std::invalid_argument(std::string("checkpoint_write: unsupported dtype ") + c10::toString(t));
  }
}

std::string dtype_config_name(c10::ScalarType t) {
  return t == at::kBFloat16 ? "bfloat16" : t == at::kHalf ? "float16" : "float32";
}

}  // namespace

void checkpoint_write(const fs::path& dir, const ModelWeights& w, const CheckpointWrite& opts) {
  const std::map<std::string, at::Tensor> tensors = checkpoint_tensors(w, opts.dtype);
  std::vector<TensorBytes> bytes;
  for (const auto& [name, t] : tensors)
    bytes.push_back({name, safetensors_dtype(opts.dtype), t.sizes().vec(),
                     {reinterpret_cast<const std::byte*>(t.data_ptr()), static_cast<size_t>(t.nbytes())}});
  std::map<std::string, std::string> metadata = opts.metadata;
  metadata.emplace("format", "pt");

  json gen = opts.generation_config;
  if (!gen.contains("bos_token_id") && w.config.bos_token_id >= 0) gen["bos_token_id"] = w.config.bos_token_id;
  if (!gen.contains("eos_token_id") && !w.config.eos_token_ids.empty())
    gen["eos_token_id"] = w.config.eos_token_ids.size() == 1 ? json(w.config.eos_token_ids[0]) : json(w.config.eos_token_ids);

  const fs::path partial = dir.string() + ".partial";
  remove_tree(partial);
  fs::create_directories(partial);
  safetensors_write(partial / "model.safetensors", bytes, metadata);
  write_file_atomic(partial / "config.json", model_config_to_json(w.config, dtype_config_name(opts.dtype)).dump(2) + "\n");
  write_file_atomic(partial / "generation_config.json", gen.dump(2) + "\n");
  for (const auto& [name, content] : opts.files) write_file_atomic(partial / name, content);
  remove_tree(dir);
  fs::rename(partial, dir);
}

}  // namespace ts
