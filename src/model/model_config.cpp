#include "model/model_config.h"

#include <limits>

#include "core/error.h"
#include "model/tensor_names.h"

namespace ts {
namespace {

// Upper bounds far above any real model, so that the products the engine forms (heads x head_dim,
// weight element counts) cannot overflow int64 and the tensor inventory stays small.
constexpr int64_t MAX_DIM = int64_t{1} << 24;
constexpr int64_t MAX_LAYERS = 4096;

int64_t positive_int(const json& j, std::string_view key, const std::string& file, int64_t max = MAX_DIM) {
  int64_t v = json_int(j, key, file);
  if (v <= 0) throw InputError(file, std::string(key), "must be a positive integer, got " + std::to_string(v));
  if (v > max) throw InputError(file, std::string(key), std::to_string(v) + " is out of range (at most " + std::to_string(max) + ")");
  return v;
}

void read_rope(const json& j, const std::string& file, RopeConfig& rope) {
  // transformers >= 5 writes rope_parameters = {rope_type, rope_theta, ...}; checkpoints in the wild
  // write top-level rope_theta and rope_scaling = {type|rope_type, factor, ...} or null.
  const json* scaling = nullptr;
  std::string scaling_field;
  if (j.contains("rope_parameters") && !j["rope_parameters"].is_null()) {
    const json& p = j["rope_parameters"];
    if (!p.is_object()) throw InputError(file, "rope_parameters", "must be an object");
    if (p.contains("rope_theta")) rope.theta = json_number(p, "rope_theta", file, "rope_parameters");
    scaling = &p;
    scaling_field = "rope_parameters";
  }
  if (j.contains("rope_theta")) rope.theta = json_number(j, "rope_theta", file);
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    scaling = &j["rope_scaling"];
    scaling_field = "rope_scaling";
    if (!scaling->is_object()) throw InputError(file, "rope_scaling", "must be an object or null");
  }
  if (rope.theta <= 0) throw InputError(file, "rope_theta", "must be positive");
  if (!scaling) return;
  const json& s = *scaling;
  std::string type = "default";
  if (s.contains("rope_type")) type = json_string(s, "rope_type", file, scaling_field);
  else if (s.contains("type")) type = json_string(s, "type", file, scaling_field);
  rope.type = type;
  if (type == "default") return;
  if (type == "linear") {
    rope.factor = json_number(s, "factor", file, scaling_field);
  } else if (type == "llama3") {
    rope.factor = json_number(s, "factor", file, scaling_field);
    rope.low_freq_factor = json_number(s, "low_freq_factor", file, scaling_field);
    rope.high_freq_factor = json_number(s, "high_freq_factor", file, scaling_field);
    rope.original_max_position_embeddings = json_int(s, "original_max_position_embeddings", file, scaling_field);
    if (rope.high_freq_factor <= rope.low_freq_factor)
      throw InputError(file, scaling_field + ".high_freq_factor", "must exceed low_freq_factor");
    if (rope.original_max_position_embeddings <= 0)
      throw InputError(file, scaling_field + ".original_max_position_embeddings", "must be positive");
  } else {
    throw InputError(file, scaling_field + ".rope_type", "unsupported rope scaling '" + type + "' (supported: default, linear, llama3)");
  }
  if (rope.factor <= 0) throw InputError(file, scaling_field + ".factor", "must be positive");
}

}  // namespace

std::vector<int64_t> json_token_ids(const json& j, std::string_view key, const std::string& file) {
  std::vector<int64_t> ids;
  if (!j.contains(key) || j[std::string(key)].is_null()) return ids;
  const json& v = j[std::string(key)];
  if (v.is_number_integer()) ids.push_back(v.get<int64_t>());
  else if (v.is_array()) {
    for (const auto& e : v) {
      if (!e.is_number_integer()) throw InputError(file, std::string(key), "must be an integer or a list of integers");
      ids.push_back(e.get<int64_t>());
    }
  } else {
    throw InputError(file, std::string(key), "must be an integer or a list of integers");
  }
  return ids;
}

ModelConfig model_config_from_json(const json& j, const std::string& file) {
  if (!j.is_object()) throw InputError(file, "<root>", "config.json must be a JSON object");
  ModelConfig c;
  const json& archs = json_require(j, "architectures", file);
  if (!archs.is_array() || archs.empty() || !archs[0].is_string())
    throw InputError(file, "architectures", "must be a non-empty list of strings");
  c.architecture = archs[0].get<std::string>();
  const bool is_qwen2 = c.architecture == "Qwen2ForCausalLM";
  const bool is_llama = c.architecture == "LlamaForCausalLM";
  if (!is_qwen2 && !is_llama)
    throw InputError(file, "architectures", "unsupported architecture '" + c.architecture + "' (supported: Qwen2ForCausalLM, LlamaForCausalLM)");

  c.n_layer = positive_int(j, "num_hidden_layers", file, MAX_LAYERS);
  c.d_model = positive_int(j, "hidden_size", file);
  c.n_head = positive_int(j, "num_attention_heads", file);
  c.n_kv_head = j.contains("num_key_value_heads") && !j["num_key_value_heads"].is_null() ? positive_int(j, "num_key_value_heads", file) : c.n_head;
  c.d_mlp = positive_int(j, "intermediate_size", file);
  c.n_vocab = positive_int(j, "vocab_size", file);
  c.max_position = j.contains("max_position_embeddings") ? positive_int(j, "max_position_embeddings", file, std::numeric_limits<int64_t>::max()) : 4096;
  if (j.contains("head_dim") && !j["head_dim"].is_null()) c.d_head = positive_int(j, "head_dim", file);
  else {
    if (c.d_model % c.n_head != 0) throw InputError(file, "num_attention_heads", "does not divide hidden_size");
    c.d_head = c.d_model / c.n_head;
  }
  if (c.d_head % 2 != 0) throw InputError(file, "head_dim", "must be even for rotary embeddings");
  if (c.n_head % c.n_kv_head != 0) throw InputError(file, "num_key_value_heads", "must divide num_attention_heads");
  if (j.contains("rms_norm_eps")) c.rms_norm_eps = json_number(j, "rms_norm_eps", file);
  read_rope(j, file, c.rope);
  if (j.contains("hidden_act")) {
    std::string act = json_string(j, "hidden_act", file);
    if (act != "silu") throw InputError(file, "hidden_act", "unsupported activation '" + act + "' (supported: silu)");
  }
  if (j.contains("tie_word_embeddings")) c.tie_word_embeddings = json_bool(j, "tie_word_embeddings", file);
  if (is_qwen2) {
    c.qkv_bias = true;
    if (j.contains("use_sliding_window") && j["use_sliding_window"].is_boolean() && j["use_sliding_window"].get<bool>())
      throw InputError(file, "use_sliding_window", "sliding-window attention is not supported");
  } else {
    if (j.contains("attention_bias")) c.qkv_bias = c.o_bias = json_bool(j, "attention_bias", file);
    if (j.contains("mlp_bias")) c.mlp_bias = json_bool(j, "mlp_bias", file);
  }
  if (j.contains("torch_dtype") && j["torch_dtype"].is_string()) c.torch_dtype = j["torch_dtype"].get<std::string>();
  else if (j.contains("dtype") && j["dtype"].is_string()) c.torch_dtype = j["dtype"].get<std::string>();
  // Every id (bos and pad lists too, though only their first entry is used) must be in the vocabulary.
  auto token_ids_in_vocab = [&](const char* key) {
    std::vector<int64_t> ids = json_token_ids(j, key, file);
    for (int64_t id : ids)
      if (id < 0 || id >= c.n_vocab)
        throw InputError(file, key, "token id " + std::to_string(id) + " outside the vocabulary [0, " + std::to_string(c.n_vocab) + ")");
    return ids;
  };
  const std::vector<int64_t> bos = token_ids_in_vocab("bos_token_id");
  if (!bos.empty()) c.bos_token_id = bos[0];
  c.eos_token_ids = token_ids_in_vocab("eos_token_id");
  const std::vector<int64_t> pad = token_ids_in_vocab("pad_token_id");
  if (!pad.empty()) c.pad_token_id = pad[0];
  return c;
}

ModelConfig model_config_read(const std::filesystem::path& config_json) {
  return model_config_from_json(json_read_file(config_json), config_json.string());
}

std::vector<ExpectedTensor> model_expected_tensors(const ModelConfig& c, int64_t layer_begin, int64_t layer_end,
                                                   bool with_embed, bool with_head) {
  std::vector<ExpectedTensor> t;
  if (with_embed || (with_head && c.tie_word_embeddings)) t.push_back({std::string(HF_EMBED_TOKENS), {c.n_vocab, c.d_model}});
  for (int64_t l = layer_begin; l < layer_end; ++l)
    for (const HfLayerTensor& h : HF_LAYER_TENSORS)
      if (hf_tensor_present(h, c)) t.push_back({hf_layer_tensor_name(l, h), hf_tensor_shape(h, c)});
  if (with_head) {
    t.push_back({std::string(HF_FINAL_NORM), {c.d_model}});
    t.push_back({std::string(HF_LM_HEAD), {c.n_vocab, c.d_model}, /*optional=*/c.tie_word_embeddings});
  }
  return t;
}

}  // namespace ts
