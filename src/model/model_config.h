// config.json of a Qwen2ForCausalLM / LlamaForCausalLM checkpoint, and the tensor inventory it implies.
// Both the legacy layout (top-level rope_theta / rope_scaling, as in the DeepSeek-R1-Distill, Qwen2.5 and
// Llama-3.1 checkpoints) and transformers-5's `rope_parameters` are read. Torch-free.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/json.h"

namespace ts {

struct RopeConfig {
  std::string type = "default";  // default | linear | llama3
  double theta = 10000.0;
  double factor = 1.0;                            // linear, llama3
  double low_freq_factor = 1.0;                   // llama3
  double high_freq_factor = 4.0;                  // llama3
  int64_t original_max_position_embeddings = 0;  // llama3
};

// Dimension names used across the engine (declared once):
//   B batch, T positions in this call, S cached key positions, D d_model, H n_head, K n_kv_head,
//   E d_head, F d_mlp, V n_vocab, L n_layer.
struct ModelConfig {
  std::string architecture;  // "Qwen2ForCausalLM" | "LlamaForCausalLM"
  int64_t n_layer = 0;       // L
  int64_t d_model = 0;       // D
  int64_t n_head = 0;        // H
  int64_t n_kv_head = 0;     // K (GQA when K < H)
  int64_t d_head = 0;        // E
  int64_t d_mlp = 0;         // F
  int64_t n_vocab = 0;       // V
  int64_t max_position = 0;
  double rms_norm_eps = 1e-6;
  RopeConfig rope;
  bool qkv_bias = false;     // Qwen2: true; Llama: attention_bias
  bool o_bias = false;       // Llama attention_bias also puts a bias on o_proj
  bool mlp_bias = false;     // Llama mlp_bias
  bool tie_word_embeddings = false;
  std::string torch_dtype;   // as stored ("bfloat16", "float32", ...); informational
  int64_t bos_token_id = -1;
  std::vector<int64_t> eos_token_ids;
  int64_t pad_token_id = -1;
};

// Parses and validates config.json content; `file` names it in errors. Throws InputError.
ModelConfig model_config_from_json(const json& config, const std::string& file);
ModelConfig model_config_read(const std::filesystem::path& config_json);

// A token-id field (config.json, generation_config.json): an integer or a list of integers; absent or
// null gives an empty list. Throws InputError naming `file` and `key` otherwise.
std::vector<int64_t> json_token_ids(const json& obj, std::string_view key, const std::string& file);

struct ExpectedTensor {
  std::string name;  // HF checkpoint name, e.g. model.layers.3.self_attn.q_proj.weight
  std::vector<int64_t> shape;
  bool optional = false;  // lm_head.weight when embeddings are tied
};
// The tensors a checkpoint must hold for layers [layer_begin, layer_end); embeddings if `with_embed`,
// final norm and lm_head if `with_head` (pipeline stages read only their own tensors).
std::vector<ExpectedTensor> model_expected_tensors(const ModelConfig& cfg, int64_t layer_begin, int64_t layer_end,
                                                   bool with_embed, bool with_head);

}  // namespace ts
