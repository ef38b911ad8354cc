// Artifact `taxonomy export` (docs/run-layout.md): what `thinksteer titles` writes for one taxonomy
// task, the directory <run.dir>/titles/<key>/ (written as <key>.partial/ and renamed), and the index
// <run.dir>/titles/index.json that lists them, certified by its .done marker.
//   titles.json               format thinksteer.titles: key, layer, k, method, seed, source (offline|llm),
//                             hook, clusters [{index, title, description, size, words, examples, random}]
//                             (docs/algorithms.md §B.5; examples: the sentences closest to the cluster's
//                             direction, closest first; random: further sentences of the cluster)
// and, for an SAE, SAELens-style files (docs/algorithms.md "The SAE export"):
//   cfg.json                  d_in, d_sae, k (= top-k), architecture "topk", hook_name, hook_layer,
//                             model_name, dtype, apply_b_dec_to_input, normalize_activations, and a
//                             "thinksteer" object: no ReLU, the input recipe, the cluster rule, provenance
//   sae_weights.safetensors   W_enc [d_in, d_sae], W_dec [d_sae, d_in], b_enc [d_sae], b_dec [d_in] (F32)
//   centering.safetensors     mean [d_in]: μ of §B.3, subtracted from an activation before it is
//                             unit-normalised
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/json.h"

namespace ts::artifacts {

inline constexpr const char* TITLES_FORMAT = "thinksteer.titles";
inline constexpr const char* TITLES_INDEX_FORMAT = "thinksteer.titles_index";

struct ClusterTitle {
  int64_t index = 0, size = 0;
  std::string title, description;
  std::vector<std::string> words, examples, random;
};

struct TitleSet {
  std::string key, method, source, hook;
  int64_t layer = 0, k = 0, seed = 0;
  std::vector<ClusterTitle> clusters;  // k of them, index 0..k-1
};

// The SAE of an export in thinksteer's orientation: w_enc, w_dec [K, d] row-major.
struct SaeExport {
  int64_t d_in = 0, d_sae = 0, top_k = 0, layer = 0;
  std::string hook_name, model_name, key;
  std::vector<float> w_enc, b_enc, w_dec, b_dec, mean;
  json provenance = json::object();  // what cfg.json's "thinksteer" object records beside the recipe
};

std::filesystem::path titles_root(const std::filesystem::path& run_dir);                       // <run.dir>/titles
std::filesystem::path export_dir(const std::filesystem::path& run_dir, const std::string& key);  // <run.dir>/titles/<key>

json titles_to_json(const TitleSet& t);
// Writes titles.json (and the SAELens files when `sae` is given) into `dir`, which must not exist:
// everything goes to <dir>.partial first, which is then renamed.
void write_export_dir(const std::filesystem::path& dir, const TitleSet& titles, const SaeExport* sae);

// Validating readers: InputError naming the file and the field. `key` is the config key that points at it.
TitleSet read_titles(const std::filesystem::path& file);
SaeExport read_sae_export(const std::filesystem::path& dir, const std::string& key);

}  // namespace ts::artifacts
