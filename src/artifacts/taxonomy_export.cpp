#include "artifacts/taxonomy_export.h"

#include <cmath>
#include <cstring>

#include "core/atomic_file.h"
#include "core/error.h"
#include "model/safetensors.h"

namespace ts::artifacts {
namespace fs = std::filesystem;

fs::path titles_root(const fs::path& run_dir) { return run_dir / "titles"; }
fs::path export_dir(const fs::path& run_dir, const std::string& key) { return titles_root(run_dir) / key; }

namespace {

json strings(const std::vector<std::string>& v) { return json(v); }

std::vector<std::string> read_strings(const json& obj, const char* key, const std::string& file, const std::string& path) {
  const json& a = json_require(obj, key, file, path);
  if (!a.is_array()) throw InputError(file, json_field_path(path, key), "must be an array of strings");
  std::vector<std::string> out;
  for (const json& s : a) {
    if (!s.is_string()) throw InputError(file, json_field_path(path, key), "must be an array of strings");
    out.push_back(s.get<std::string>());
  }
  return out;
}

// SAELens' cfg.json keys, and what thinksteer adds so nobody feeds this SAE raw activations or expects a ReLU.
json saelens_cfg(const SaeExport& s) {
  json extra = s.provenance;
  extra["format"] = "thinksteer.sae_export";
  extra["version"] = 1;
  extra["key"] = s.key;
  extra["layer"] = s.layer;
  extra["no_relu"] = true;
  extra["encode"] = "a = (x~ - b_dec) @ W_enc + b_enc, no ReLU; keep the k largest of a (decode: sum over them of a_j W_dec[j] + b_dec)";
  extra["input"] = "x~ = (x - mean) / max(|x - mean|, 1e-12): x the hook's activation, mean from centering.safetensors";
  extra["cluster"] = "argmax_j a_j over all d_sae latents (before top-k)";
  extra["trained_on"] = "sentence means of hook_name over each sentence's tokens and the one before (docs/algorithms.md §B.3)";
  return {{"architecture", "topk"},
          {"d_in", s.d_in},
          {"d_sae", s.d_sae},
          {"k", s.top_k},
          {"activation_fn_str", "topk"},
          {"activation_fn_kwargs", {{"k", s.top_k}}},
          {"apply_b_dec_to_input", true},
          {"normalize_activations", "none"},
          {"hook_name", s.hook_name},
          {"hook_layer", s.layer},
          {"hook_head_index", nullptr},
          {"model_name", s.model_name},
          {"dtype", "float32"},
          {"device", "cpu"},
          {"finetuning_scaling_factor", false},
          {"thinksteer", extra}};
}

// W [rows, cols] row-major, transposed.
std::vector<float> transpose(const std::vector<float>& w, int64_t rows, int64_t cols) {
  std::vector<float> t(w.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) t[static_cast<size_t>(c * rows + r)] = w[static_cast<size_t>(r * cols + c)];
  return t;
}

TensorBytes f32(const std::string& name, const std::vector<int64_t>& shape, const std::vector<float>& v) {
  return {name, DType::F32, shape, {reinterpret_cast<const std::byte*>(v.data()), v.size() * sizeof(float)}};
}

std::vector<float> read_f32(const SafetensorsFile& f, const std::string& name, const std::vector<int64_t>& shape) {
  const std::string file = f.path().string();
  const TensorInfo* t = f.find(name);
  if (t == nullptr) throw InputError(file, name, "missing tensor");
  if (t->dtype != DType::F32) throw InputError(file, name, std::string("has dtype ") + dtype_name(t->dtype) + ", expected F32");
  if (t->shape != shape) throw InputError(file, name, "has shape " + shape_to_string(t->shape) + ", expected " + shape_to_string(shape));
  std::vector<float> v(static_cast<size_t>(t->numel()));
  const auto bytes = f.bytes(*t);
  std::memcpy(v.data(), bytes.data(), bytes.size());
  for (float x : v)
    if (!std::isfinite(x)) throw InputError(file, name, "holds a NaN or infinite value");
  return v;
}

}  // namespace

json titles_to_json(const TitleSet& t) {
  json clusters = json::array();
  for (const ClusterTitle& c : t.clusters)
    clusters.push_back({{"index", c.index}, {"title", c.title}, {"description", c.description}, {"size", c.size},
                        {"words", strings(c.words)}, {"examples", strings(c.examples)}, {"random", strings(c.random)}});
  return {{"format", TITLES_FORMAT}, {"version", 1}, {"key", t.key}, {"layer", t.layer}, {"k", t.k}, {"method", t.method},
          {"seed", t.seed}, {"source", t.source}, {"hook", t.hook}, {"clusters", clusters}};
}

void write_export_dir(const fs::path& dir, const TitleSet& titles, const SaeExport* sae) {
  const fs::path partial = dir.string() + ".partial";
  remove_tree(partial);
  fs::create_directories(partial);
  write_file_atomic(partial / "titles.json", titles_to_json(titles).dump(2) + "\n");
  if (sae != nullptr) {
    write_file_atomic(partial / "cfg.json", saelens_cfg(*sae).dump(2) + "\n");
    const std::vector<float> w_enc_t = transpose(sae->w_enc, sae->d_sae, sae->d_in);  // [d_in, d_sae]
    safetensors_write(partial / "sae_weights.safetensors",
                      {f32("W_enc", {sae->d_in, sae->d_sae}, w_enc_t), f32("W_dec", {sae->d_sae, sae->d_in}, sae->w_dec),
                       f32("b_enc", {sae->d_sae}, sae->b_enc), f32("b_dec", {sae->d_in}, sae->b_dec)},
                      {{"format", "pt"}});
    safetensors_write(partial / "centering.safetensors", {f32("mean", {sae->d_in}, sae->mean)}, {{"format", "pt"}});
  }
  remove_tree(dir);
  fs::rename(partial, dir);
}

TitleSet read_titles(const fs::path& path) {
  const std::string file = path.string();
  const json j = json_read_file(path);
  if (!j.is_object() || json_string(j, "format", file) != TITLES_FORMAT) throw InputError(file, "format", std::string("is not ") + TITLES_FORMAT);
  if (json_int(j, "version", file) != 1) throw InputError(file, "version", "unsupported version (this build reads 1)");
  TitleSet t;
  t.key = json_string(j, "key", file);
  t.layer = json_int(j, "layer", file);
  t.k = json_int(j, "k", file);
  t.method = json_string(j, "method", file);
  t.seed = json_int(j, "seed", file);
  t.source = json_string(j, "source", file);
  t.hook = json_string(j, "hook", file);
  const json& clusters = json_require(j, "clusters", file);
  if (!clusters.is_array() || static_cast<int64_t>(clusters.size()) != t.k) throw InputError(file, "clusters", "must hold k clusters");
  for (size_t i = 0; i < clusters.size(); ++i) {
    const std::string path_i = "clusters[" + std::to_string(i) + "]";
    const json& c = clusters[i];
    ClusterTitle ct;
    ct.index = json_int(c, "index", file, path_i);
    if (ct.index != static_cast<int64_t>(i)) throw InputError(file, path_i + ".index", "clusters must be listed in index order");
    ct.size = json_int(c, "size", file, path_i);
    ct.title = json_string(c, "title", file, path_i);
    ct.description = json_string(c, "description", file, path_i);
    ct.words = read_strings(c, "words", file, path_i);
    ct.examples = read_strings(c, "examples", file, path_i);
    ct.random = read_strings(c, "random", file, path_i);
    t.clusters.push_back(std::move(ct));
  }
  return t;
}

SaeExport read_sae_export(const fs::path& dir, const std::string& key) {
  const fs::path cfg_path = dir / "cfg.json";
  const std::string file = cfg_path.string();
  if (!fs::is_directory(dir)) throw InputError(dir.string(), key, "not an SAE export directory (made by `thinksteer titles`)");
  const json cfg = json_read_file(cfg_path);
  SaeExport s;
  s.d_in = json_int(cfg, "d_in", file);
  s.d_sae = json_int(cfg, "d_sae", file);
  s.top_k = json_int(cfg, "k", file);
  s.hook_name = json_string(cfg, "hook_name", file);
  s.layer = json_int(cfg, "hook_layer", file);
  s.model_name = json_string(cfg, "model_name", file);
  if (s.d_in <= 0 || s.d_sae < 2 || s.top_k < 1 || s.top_k > s.d_sae) throw InputError(file, "d_sae", "d_in > 0, d_sae >= 2 and 1 <= k <= d_sae required");
  const json& extra = json_require(cfg, "thinksteer", file);
  if (json_string(extra, "format", file, "thinksteer") != "thinksteer.sae_export" || !json_bool(extra, "no_relu", file, "thinksteer"))
    throw InputError(file, "thinksteer.format", "not a thinksteer SAE export (the taxonomy's SAE has no ReLU and its own input recipe)");
  s.key = json_string(extra, "key", file, "thinksteer");
  s.provenance = extra;
  const SafetensorsFile w(dir / "sae_weights.safetensors");
  s.w_enc = transpose(read_f32(w, "W_enc", {s.d_in, s.d_sae}), s.d_in, s.d_sae);
  s.w_dec = read_f32(w, "W_dec", {s.d_sae, s.d_in});
  s.b_enc = read_f32(w, "b_enc", {s.d_sae});
  s.b_dec = read_f32(w, "b_dec", {s.d_in});
  s.mean = read_f32(SafetensorsFile(dir / "centering.safetensors"), "mean", {s.d_in});
  return s;
}

}  // namespace ts::artifacts
