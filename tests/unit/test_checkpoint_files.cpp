// checkpoint_open on tiny checkpoints built in a temp dir with safetensors_write and a config.json
// string (no Python): tensor inventory, shapes against config.json, tied embeddings, sharded index
// consistency, layer ranges; and the config.json checks of model_config_from_json.
#include <gtest/gtest.h>

#include "temp_dir.h"
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/json.h"
#include "model/checkpoint_files.h"
#include "model/model_config.h"
#include "model/safetensors.h"

using namespace ts;
namespace fs = std::filesystem;

namespace {

using ts_test::TempDir;

// L=2, D=8, H=2, K=1, E=4, F=16, V=32.
json base_config(const std::string& arch = "Qwen2ForCausalLM", bool tied = false) {
  return json{{"architectures", {arch}},
              {"hidden_size", 8},
              {"intermediate_size", 16},
              {"num_attention_heads", 2},
              {"num_key_value_heads", 1},
              {"num_hidden_layers", 2},
              {"vocab_size", 32},
              {"max_position_embeddings", 64},
              {"rms_norm_eps", 1e-6},
              {"rope_theta", 10000.0},
              {"hidden_act", "silu"},
              {"tie_word_embeddings", tied},
              {"bos_token_id", 1},
              {"eos_token_id", 2}};
}

struct Spec {
  std::string name;
  std::vector<int64_t> shape;
  DType dtype = DType::F32;
};

// Every tensor the config implies (lm_head only when untied), in model order.
std::vector<Spec> full_inventory(const json& config) {
  ModelConfig c = model_config_from_json(config, "config.json");
  std::vector<Spec> out;
  for (const auto& e : model_expected_tensors(c, 0, c.n_layer, true, true))
    if (!e.optional) out.push_back({e.name, e.shape});
  return out;
}

void write_text(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
}

void write_shard(const fs::path& p, const std::vector<Spec>& specs) {
  std::vector<std::vector<std::byte>> storage;
  std::vector<TensorBytes> tensors;
  storage.reserve(specs.size());
  for (const auto& s : specs) {
    int64_t n = 1;
    for (int64_t d : s.shape) n *= d;
    storage.emplace_back(static_cast<size_t>(n * dtype_bits(s.dtype) / 8), std::byte{0});
    tensors.push_back({s.name, s.dtype, s.shape, storage.back()});
  }
  safetensors_write(p, tensors, {{"format", "pt"}});
}

// A checkpoint directory holding config.json and either model.safetensors or shards + index.
struct Checkpoint {
  TempDir tmp;
  fs::path dir() const { return tmp.path(); }

  void config(const json& c) { write_text(dir() / "config.json", c.dump(2)); }
  void single(const std::vector<Spec>& specs) { write_shard(dir() / "model.safetensors", specs); }
  // Shards given as file name -> tensors; the index maps every tensor to its shard unless `index` is given.
  void sharded(const std::map<std::string, std::vector<Spec>>& shards, const json* index = nullptr) {
    json wm = json::object();
    for (const auto& [file, specs] : shards) {
      write_shard(dir() / file, specs);
      for (const auto& s : specs) wm[s.name] = file;
    }
    json idx = index ? *index : json{{"metadata", {{"total_size", 0}}}, {"weight_map", wm}};
    write_text(dir() / "model.safetensors.index.json", idx.dump(2));
  }
};

std::vector<Spec> without(std::vector<Spec> v, const std::string& name) {
  std::erase_if(v, [&](const Spec& s) { return s.name == name; });
  return v;
}

InputError open_fails(const fs::path& dir, int64_t b = 0, int64_t e = -1, bool embed = true, bool head = true) {
  try {
    checkpoint_open(dir, b, e, embed, head);
  } catch (const InputError& err) {
    return err;
  }
  ADD_FAILURE() << "checkpoint_open succeeded";
  return InputError("", "", "");
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Two shards: embeddings + layer 0 in the first, layer 1 + head in the second.
std::map<std::string, std::vector<Spec>> split_in_two(const std::vector<Spec>& all) {
  std::map<std::string, std::vector<Spec>> shards;
  for (const auto& s : all) {
    const bool first = s.name.rfind("model.embed_tokens", 0) == 0 || s.name.rfind("model.layers.0.", 0) == 0;
    shards[first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors"].push_back(s);
  }
  return shards;
}

}  // namespace

TEST(CheckpointFiles, SingleFileQwen2Untied) {
  Checkpoint ck;
  json c = base_config();
  ck.config(c);
  std::vector<Spec> all = full_inventory(c);
  // embed + 2 layers x (2 norms + q,k,v,o + 3 biases + 3 mlp) + final norm + lm_head
  ASSERT_EQ(all.size(), 1u + 2u * 12u + 2u);
  ck.single(all);
  CheckpointFiles f = checkpoint_open(ck.dir());
  EXPECT_EQ(f.shards.size(), 1u);
  EXPECT_EQ(f.tensors.size(), all.size());
  EXPECT_TRUE(f.unexpected.empty());
  EXPECT_EQ(f.info("model.layers.1.self_attn.k_proj.weight").shape, (std::vector<int64_t>{4, 8}));  // K*E x D
  EXPECT_EQ(f.info("model.layers.0.self_attn.o_proj.weight").shape, (std::vector<int64_t>{8, 8}));
  EXPECT_EQ(f.bytes("model.embed_tokens.weight").size(), 32u * 8u * 4u);
  EXPECT_EQ(f.shard_path("lm_head.weight"), ck.dir() / "model.safetensors");
  EXPECT_THROW(f.info("nope"), InputError);
}

TEST(CheckpointFiles, MissingTensorNamesTensorAndExpectedShape) {
  Checkpoint ck;
  json c = base_config();
  ck.config(c);
  ck.single(without(full_inventory(c), "model.layers.1.mlp.up_proj.weight"));
  InputError e = open_fails(ck.dir());
  EXPECT_EQ(e.field(), "model.layers.1.mlp.up_proj.weight");
  EXPECT_EQ(e.file(), ck.dir().string());
  EXPECT_TRUE(contains(e.what(), "missing tensor")) << e.what();
  EXPECT_TRUE(contains(e.what(), "[16, 8]")) << e.what();
}

TEST(CheckpointFiles, ShapeMismatchMessage) {
  Checkpoint ck;
  json c = base_config();
  ck.config(c);
  std::vector<Spec> all = full_inventory(c);
  for (auto& s : all)
    if (s.name == "model.layers.0.self_attn.q_proj.weight") s.shape = {8, 4};
  ck.single(all);
  InputError e = open_fails(ck.dir());
  EXPECT_EQ(e.file(), (ck.dir() / "model.safetensors").string());
  EXPECT_EQ(e.field(), "model.layers.0.self_attn.q_proj.weight");
  EXPECT_TRUE(contains(e.what(), "shape [8, 4] disagrees with config.json, which implies [8, 8]")) << e.what();

  // The same checkpoint against a config.json with another hidden size: the first tensor checked fails.
  json c2 = c;
  c2["hidden_size"] = 16;
  c2["head_dim"] = 4;
  ck.config(c2);
  InputError e2 = open_fails(ck.dir());
  EXPECT_EQ(e2.field(), "model.embed_tokens.weight");
  EXPECT_TRUE(contains(e2.what(), "[32, 8]") && contains(e2.what(), "[32, 16]")) << e2.what();
}

TEST(CheckpointFiles, WeightDtypes) {
  Checkpoint ck;
  json c = base_config("LlamaForCausalLM");
  ck.config(c);
  std::vector<Spec> all = full_inventory(c);
  for (auto& s : all) s.dtype = DType::BF16;
  ck.single(all);
  EXPECT_NO_THROW(checkpoint_open(ck.dir()));
  all[3].dtype = DType::I32;
  ck.single(all);
  InputError e = open_fails(ck.dir());
  EXPECT_EQ(e.field(), all[3].name + ".dtype");
  EXPECT_TRUE(contains(e.what(), "I32")) << e.what();
}

TEST(CheckpointFiles, TiedEmbeddingsMakeLmHeadOptional) {
  Checkpoint ck;
  json c = base_config("LlamaForCausalLM", /*tied=*/true);
  ck.config(c);
  std::vector<Spec> all = full_inventory(c);
  for (const auto& s : all) EXPECT_NE(s.name, "lm_head.weight");
  ck.single(all);
  CheckpointFiles f = checkpoint_open(ck.dir());
  EXPECT_FALSE(f.has("lm_head.weight"));
  // Present anyway (some exporters write it): accepted, checked, not "unexpected".
  all.push_back({"lm_head.weight", {32, 8}});
  ck.single(all);
  f = checkpoint_open(ck.dir());
  EXPECT_TRUE(f.has("lm_head.weight"));
  EXPECT_TRUE(f.unexpected.empty());
  all.back().shape = {8, 32};
  ck.single(all);
  EXPECT_EQ(open_fails(ck.dir()).field(), "lm_head.weight");
  // Untied: lm_head is required.
  c["tie_word_embeddings"] = false;
  ck.config(c);
  ck.single(without(all, "lm_head.weight"));
  InputError e = open_fails(ck.dir());
  EXPECT_EQ(e.field(), "lm_head.weight");
  // A head-only stage of a tied model needs the embeddings (the head reads them).
  json t = base_config("LlamaForCausalLM", true);
  ck.config(t);
  std::vector<Spec> head_stage;
  for (const auto& s : full_inventory(t))
    if (s.name.rfind("model.layers.0.", 0) != 0) head_stage.push_back(s);
  ck.single(without(head_stage, "model.embed_tokens.weight"));
  EXPECT_EQ(open_fails(ck.dir(), 1, 2, false, true).field(), "model.embed_tokens.weight");
}

TEST(CheckpointFiles, UnexpectedTensorsAreReported) {
  Checkpoint ck;
  json c = base_config();
  ck.config(c);
  std::vector<Spec> all = full_inventory(c);
  all.push_back({"model.layers.0.self_attn.rotary_emb.inv_freq", {2}});
  all.push_back({"model.layers.7.input_layernorm.weight", {8}});  // a layer config.json does not have
  ck.single(all);
  CheckpointFiles f = checkpoint_open(ck.dir());
  EXPECT_EQ(f.unexpected, (std::vector<std::string>{"model.layers.0.self_attn.rotary_emb.inv_freq", "model.layers.7.input_layernorm.weight"}));
}

TEST(CheckpointFiles, ShardedIndexConsistency) {
  json c = base_config();
  const std::vector<Spec> all = full_inventory(c);
  const auto shards = split_in_two(all);
  const std::string s1 = "model-00001-of-00002.safetensors", s2 = "model-00002-of-00002.safetensors";
  {
    Checkpoint ck;
    ck.config(c);
    ck.sharded(shards);
    CheckpointFiles f = checkpoint_open(ck.dir());
    EXPECT_EQ(f.shards.size(), 2u);
    EXPECT_EQ(f.tensors.size(), all.size());
    EXPECT_EQ(f.shard_path("lm_head.weight"), ck.dir() / s2);
    EXPECT_EQ(f.shard_path("model.embed_tokens.weight"), ck.dir() / s1);
  }
  auto index_for = [&](const std::function<void(json&)>& edit) {
    json wm = json::object();
    for (const auto& [file, specs] : shards)
      for (const auto& s : specs) wm[s.name] = file;
    json idx = {{"metadata", json::object()}, {"weight_map", wm}};
    edit(idx);
    return idx;
  };
  auto sharded_fails = [&](const json& idx, const std::map<std::string, std::vector<Spec>>& files) {
    Checkpoint ck;
    ck.config(c);
    ck.sharded(files, &idx);
    InputError e = open_fails(ck.dir());
    return std::make_pair(e, ck.dir().string());
  };
  {  // index names the wrong shard for a tensor
    auto [e, dir] = sharded_fails(index_for([&](json& i) { i["weight_map"]["lm_head.weight"] = s1; }), shards);
    EXPECT_EQ(e.field(), "weight_map.lm_head.weight");
    EXPECT_EQ(e.file(), dir + "/model.safetensors.index.json");
  }
  {  // a shard holds a tensor the index does not list
    auto [e, dir] = sharded_fails(index_for([&](json& i) { i["weight_map"].erase("model.norm.weight"); }), shards);
    EXPECT_EQ(e.field(), "model.norm.weight");
    EXPECT_EQ(e.file(), dir + "/" + s2);
    EXPECT_TRUE(contains(e.what(), "weight_map")) << e.what();
  }
  {  // the index lists a tensor its shard lacks
    auto [e, dir] = sharded_fails(index_for([&](json& i) { i["weight_map"]["model.extra.weight"] = s2; }), shards);
    EXPECT_EQ(e.field(), "model.extra.weight");
    EXPECT_EQ(e.file(), dir + "/" + s2);
  }
  {  // the index points at a shard that does not exist
    auto [e, dir] = sharded_fails(index_for([&](json& i) { i["weight_map"]["lm_head.weight"] = "model-00003-of-00003.safetensors"; }), shards);
    EXPECT_EQ(e.file(), dir + "/model.safetensors.index.json");
    EXPECT_TRUE(contains(e.what(), "model-00003-of-00003.safetensors") && contains(e.what(), "does not exist")) << e.what();
  }
  {  // a shard name the OS refuses (longer than NAME_MAX): an InputError, not a filesystem_error
    const std::string long_name = std::string(300, 'a') + ".safetensors";
    auto [e, dir] = sharded_fails(index_for([&](json& i) { i["weight_map"]["lm_head.weight"] = long_name; }), shards);
    EXPECT_EQ(e.file(), dir + "/model.safetensors.index.json");
    EXPECT_TRUE(contains(e.what(), "does not exist")) << e.what();
  }
  for (const char* bad : {"../model-00002-of-00002.safetensors", "/etc/passwd", "sub/x.safetensors", "..", ".", ""}) {
    auto [e, dir] = sharded_fails(index_for([&](json& i) { i["weight_map"]["lm_head.weight"] = bad; }), shards);
    EXPECT_EQ(e.field(), "weight_map.lm_head.weight") << bad;
    EXPECT_TRUE(contains(e.what(), "plain file name")) << e.what();
  }
  {  // the same tensor in two shards: whichever way the index points, one of the copies is refused
    auto files = shards;
    files[s2].push_back({"model.embed_tokens.weight", {32, 8}});
    auto [e1, dir1] = sharded_fails(index_for([](json&) {}), files);
    EXPECT_TRUE(contains(e1.field(), "model.embed_tokens.weight")) << e1.what();
    auto [e2, dir2] = sharded_fails(index_for([&](json& i) { i["weight_map"]["model.embed_tokens.weight"] = s2; }), files);
    EXPECT_TRUE(contains(e2.field(), "model.embed_tokens.weight")) << e2.what();
    EXPECT_TRUE(contains(std::string(e1.what()) + e2.what(), "also present in")) << e1.what() << " / " << e2.what();
  }
  {  // a missing tensor, consistently missing from both shard and index
    auto files = shards;
    files[s2] = without(files[s2], "model.layers.1.self_attn.v_proj.bias");
    auto [e, dir] = sharded_fails(index_for([](json& i) { i["weight_map"].erase("model.layers.1.self_attn.v_proj.bias"); }), files);
    EXPECT_EQ(e.field(), "model.layers.1.self_attn.v_proj.bias");
    EXPECT_TRUE(contains(e.what(), "missing tensor")) << e.what();
  }
  for (const json& bad_index : {json::array(), json{{"metadata", {}}}, json{{"weight_map", json::array()}}, json{{"weight_map", "x"}},
                                json{{"weight_map", {{"lm_head.weight", 3}}}}}) {
    auto [e, dir] = sharded_fails(bad_index, shards);
    EXPECT_EQ(e.file(), dir + "/model.safetensors.index.json") << bad_index.dump();
  }
  {  // an index that is not JSON
    Checkpoint ck;
    ck.config(c);
    ck.sharded(shards);
    write_text(ck.dir() / "model.safetensors.index.json", "{\"weight_map\": {");
    InputError e = open_fails(ck.dir());
    EXPECT_EQ(e.file(), (ck.dir() / "model.safetensors.index.json").string());
    EXPECT_EQ(e.field(), "<json>");
  }
}

TEST(CheckpointFiles, LayerRanges) {
  Checkpoint ck;
  json c = base_config();
  ck.config(c);
  const std::vector<Spec> all = full_inventory(c);
  // Stage 0 of a two-stage pipeline: embeddings + layer 0 only.
  std::vector<Spec> stage0, stage1;
  for (const auto& s : all) {
    if (s.name.rfind("model.embed_tokens", 0) == 0 || s.name.rfind("model.layers.0.", 0) == 0) stage0.push_back(s);
    if (s.name.rfind("model.layers.1.", 0) == 0 || s.name == "model.norm.weight" || s.name == "lm_head.weight") stage1.push_back(s);
  }
  ck.single(stage0);
  EXPECT_NO_THROW(checkpoint_open(ck.dir(), 0, 1, true, false));
  EXPECT_EQ(open_fails(ck.dir(), 0, 2, true, false).field(), "model.layers.1.input_layernorm.weight");
  EXPECT_EQ(open_fails(ck.dir(), 0, 1, true, true).field(), "model.norm.weight");
  ck.single(stage1);
  EXPECT_NO_THROW(checkpoint_open(ck.dir(), 1, 2, false, true));
  EXPECT_NO_THROW(checkpoint_open(ck.dir(), 1, -1, false, true));
  EXPECT_EQ(open_fails(ck.dir(), 1, 2, true, true).field(), "model.embed_tokens.weight");
  ck.single(all);
  EXPECT_NO_THROW(checkpoint_open(ck.dir(), 2, 2, false, false));  // an empty range is allowed
  for (auto [b, e] : std::vector<std::pair<int64_t, int64_t>>{{0, 3}, {-1, 1}, {2, 1}, {3, 3}, {5, -1}}) {
    InputError err = open_fails(ck.dir(), b, e);
    EXPECT_EQ(err.field(), "num_hidden_layers") << b << ", " << e;
    EXPECT_EQ(err.file(), (ck.dir() / "config.json").string());
    EXPECT_TRUE(contains(err.what(), "outside the model's layers")) << err.what();
  }
}

TEST(CheckpointFiles, DirectoryLevelErrors) {
  {
    Checkpoint ck;
    InputError e = open_fails(ck.dir());
    EXPECT_EQ(e.file(), (ck.dir() / "config.json").string());
  }
  {
    Checkpoint ck;
    ck.config(base_config());
    InputError e = open_fails(ck.dir());
    EXPECT_EQ(e.field(), "model.safetensors");
  }
  {
    Checkpoint ck;
    InputError e = open_fails(ck.dir() / "absent");
    EXPECT_EQ(e.field(), "model.path");
    EXPECT_EQ(open_fails(ck.dir() / std::string(300, 'd')).field(), "model.path");  // ENAMETOOLONG
    write_text(ck.dir() / "file", "x");
    EXPECT_EQ(open_fails(ck.dir() / "file").field(), "model.path");
  }
  {  // config.json with a number no double holds: a JSON error, not an escaped nlohmann exception
    Checkpoint ck;
    std::string text = base_config().dump();
    const std::string theta = "\"rope_theta\":10000.0";
    ASSERT_NE(text.find(theta), std::string::npos) << text;
    text.replace(text.find(theta), theta.size(), "\"rope_theta\":1e400");
    write_text(ck.dir() / "config.json", text);
    InputError e = open_fails(ck.dir());
    EXPECT_EQ(e.file(), (ck.dir() / "config.json").string());
    EXPECT_EQ(e.field(), "<json>");
  }
  {  // a safetensors "file" that is a directory
    Checkpoint ck;
    ck.config(base_config());
    fs::create_directory(ck.dir() / "model.safetensors");
    InputError e = open_fails(ck.dir());
    EXPECT_EQ(e.file(), (ck.dir() / "model.safetensors").string());
  }
  {  // a corrupt shard names the shard
    Checkpoint ck;
    json c = base_config();
    ck.config(c);
    ck.single(full_inventory(c));
    fs::resize_file(ck.dir() / "model.safetensors", fs::file_size(ck.dir() / "model.safetensors") - 1);
    InputError e = open_fails(ck.dir());
    EXPECT_EQ(e.file(), (ck.dir() / "model.safetensors").string());
    EXPECT_EQ(e.field(), "<data>");
  }
}

// ---- config.json -------------------------------------------------------------------------------

namespace {

InputError config_fails(const json& j) {
  try {
    model_config_from_json(j, "config.json");
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), "config.json");
    return e;
  }
  ADD_FAILURE() << "accepted " << j.dump();
  return InputError("", "", "");
}

}  // namespace

TEST(ModelConfig, ReadsBothArchitectures) {
  ModelConfig q = model_config_from_json(base_config(), "config.json");
  EXPECT_EQ(q.d_head, 4);
  EXPECT_TRUE(q.qkv_bias);
  EXPECT_FALSE(q.o_bias);
  json l = base_config("LlamaForCausalLM");
  l["attention_bias"] = true;
  l["mlp_bias"] = true;
  l["eos_token_id"] = {2, 3};
  l["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                       {"original_max_position_embeddings", 16}};
  ModelConfig m = model_config_from_json(l, "config.json");
  EXPECT_TRUE(m.qkv_bias && m.o_bias && m.mlp_bias);
  EXPECT_EQ(m.eos_token_ids, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(m.rope.type, "llama3");
  // Biases appear in the inventory.
  size_t biases = 0;
  for (const auto& e : model_expected_tensors(m, 0, m.n_layer, true, true)) biases += e.name.ends_with(".bias");
  EXPECT_EQ(biases, 2u * 7u);
}

TEST(ModelConfig, BadFieldsNameTheField) {
  auto with = [](const std::string& key, const json& v) {
    json j = base_config();
    j[key] = v;
    return j;
  };
  EXPECT_EQ(config_fails(json::array()).field(), "<root>");
  EXPECT_EQ(config_fails(with("architectures", {"MistralForCausalLM"})).field(), "architectures");
  EXPECT_TRUE(contains(config_fails(with("architectures", {"GPT2LMHeadModel"})).what(), "unsupported architecture"));
  EXPECT_EQ(config_fails(with("architectures", json::array())).field(), "architectures");
  EXPECT_EQ(config_fails(with("architectures", "Qwen2ForCausalLM")).field(), "architectures");
  {
    json j = base_config();
    j.erase("intermediate_size");
    InputError e = config_fails(j);
    EXPECT_EQ(e.field(), "intermediate_size");
    EXPECT_TRUE(contains(e.what(), "missing")) << e.what();
  }
  InputError typed = config_fails(with("hidden_size", "64"));
  EXPECT_EQ(typed.field(), "hidden_size");
  EXPECT_TRUE(contains(typed.what(), "integer")) << typed.what();
  EXPECT_EQ(config_fails(with("hidden_size", 8.5)).field(), "hidden_size");
  EXPECT_EQ(config_fails(with("num_hidden_layers", 0)).field(), "num_hidden_layers");
  EXPECT_EQ(config_fails(with("vocab_size", -5)).field(), "vocab_size");
  EXPECT_EQ(config_fails(with("num_attention_heads", 3)).field(), "num_attention_heads");
  EXPECT_EQ(config_fails(with("num_key_value_heads", 3)).field(), "num_key_value_heads");
  EXPECT_EQ(config_fails(with("head_dim", 3)).field(), "head_dim");
  EXPECT_EQ(config_fails(with("hidden_act", "gelu")).field(), "hidden_act");
  EXPECT_EQ(config_fails(with("tie_word_embeddings", "yes")).field(), "tie_word_embeddings");
  EXPECT_EQ(config_fails(with("eos_token_id", "2")).field(), "eos_token_id");
  EXPECT_EQ(config_fails(with("use_sliding_window", true)).field(), "use_sliding_window");
  EXPECT_EQ(config_fails(with("rope_theta", 0)).field(), "rope_theta");
  EXPECT_EQ(config_fails(with("rope_scaling", "linear")).field(), "rope_scaling");
  InputError rope = config_fails(with("rope_scaling", {{"type", "yarn"}, {"factor", 4.0}}));
  EXPECT_EQ(rope.field(), "rope_scaling.rope_type");
  EXPECT_TRUE(contains(rope.what(), "yarn")) << rope.what();
  EXPECT_EQ(config_fails(with("rope_scaling", {{"rope_type", "linear"}})).field(), "rope_scaling.factor");
  EXPECT_EQ(config_fails(with("rope_scaling", {{"rope_type", "linear"}, {"factor", -1.0}})).field(), "rope_scaling.factor");
  EXPECT_EQ(config_fails(with("rope_parameters", {{"rope_type", "dynamic"}, {"factor", 2.0}})).field(), "rope_parameters.rope_type");
  EXPECT_EQ(config_fails(with("rope_parameters", 5)).field(), "rope_parameters");
}

TEST(ModelConfig, AbsurdSizesAreRejectedNotOverflowed) {
  auto with = [](const std::string& key, const json& v) {
    json j = base_config();
    j[key] = v;
    return j;
  };
  // Sizes whose products overflow int64 (q = heads x head_dim, weight numels) or whose inventory would
  // not fit in memory must be refused with an InputError, not computed.
  EXPECT_EQ(config_fails(with("num_hidden_layers", int64_t{1} << 40)).field(), "num_hidden_layers");
  EXPECT_EQ(config_fails(with("vocab_size", int64_t{1} << 62)).field(), "vocab_size");
  EXPECT_EQ(config_fails(with("intermediate_size", std::numeric_limits<int64_t>::max())).field(), "intermediate_size");
  {
    json j = base_config();
    j["num_attention_heads"] = int64_t{1} << 32;
    j["num_key_value_heads"] = int64_t{1} << 32;
    j["head_dim"] = int64_t{1} << 32;
    EXPECT_NO_FATAL_FAILURE(config_fails(j));
  }
  EXPECT_EQ(config_fails(with("hidden_size", std::numeric_limits<uint64_t>::max())).field(), "hidden_size");
}
