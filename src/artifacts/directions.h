// Artifacts of the reasoning-direction analyses (docs/directions.md has every layout), under
// <run.dir>/directions/:
//   contrast.{h5,safetensors}, contrast.csv   `directions contrast`: an io/vectors.h set and its per-layer table
//   probes.h5, probes.csv                     `directions probe` (format thinksteer.probes)
//   lens.h5, lens.csv, lens_top.jsonl         `directions lens` (format thinksteer.logit_lens)
//   cka.h5, cka.csv                           `directions cka` (format thinksteer.cka)
//   orthogonalized/, orthogonalize.json       `directions orthogonalize`: the HF checkpoint and its record
// Each writer makes a new file the stage then commits; each reader checks the identity and every shape
// and throws InputError naming the file and dataset.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "artifacts/artifact.h"
#include "core/json.h"
#include "io/h5store.h"

namespace ts::artifacts {

inline constexpr Format PROBES{"thinksteer.probes", 1, "directions probe"};
inline constexpr Format LOGIT_LENS{"thinksteer.logit_lens", 1, "directions lens"};
inline constexpr Format CKA{"thinksteer.cka", 1, "directions cka"};
inline constexpr Location CONTRAST_H5{"directions", "contrast.h5"};
inline constexpr Location CONTRAST_SAFETENSORS{"directions", "contrast.safetensors"};
inline constexpr Location CONTRAST_CSV{"directions", "contrast.csv"};
inline constexpr Location PROBES_H5{"directions", "probes.h5"};
inline constexpr Location PROBES_CSV{"directions", "probes.csv"};
inline constexpr Location LENS_H5{"directions", "lens.h5"};
inline constexpr Location LENS_CSV{"directions", "lens.csv"};
inline constexpr Location LENS_TOP{"directions", "lens_top.jsonl"};
inline constexpr Location CKA_H5{"directions", "cka.h5"};
inline constexpr Location CKA_CSV{"directions", "cka.csv"};
inline constexpr Location ORTHOGONALIZED{"directions", "orthogonalized"};
inline constexpr Location ORTHOGONALIZE_JSON{"directions", "orthogonalize.json"};
inline constexpr const char* ORTHOGONALIZE_MARKER = "orthogonalize.json";  // inside the checkpoint

// Per hook (H), the held-out scores of its probe and its weights.
struct ProbeResults {
  std::vector<std::string> hooks, classes;
  std::vector<int64_t> layer;  // -1: ln_final
  std::vector<double> accuracy, accuracy_lo, accuracy_hi, macro_f1, macro_f1_lo, macro_f1_hi, shuffled_accuracy, shuffled_macro_f1;
  std::vector<std::vector<float>> weights;  // per hook [C, D_h]
  std::vector<std::vector<float>> bias;     // per hook [C]
  std::vector<int64_t> width;               // per hook D_h
  int64_t n_train = 0, n_test = 0, n_train_traces = 0, n_test_traces = 0;
  double majority_accuracy = 0, l2 = 0;
  int64_t seed = 0;
  std::string input;
  size_t n_hooks() const { return hooks.size(); }
};
std::vector<h5::DatasetSpec> probes_datasets(const ProbeResults& r);
void write_probes(const std::filesystem::path& file, const ProbeResults& r, const json& provenance);
std::string probes_csv(const ProbeResults& r);
ProbeResults read_probes(const std::filesystem::path& file, const std::string& key);

// R rows x L layers x k top tokens.
struct LensResults {
  std::vector<int64_t> layers, sequence, token;  // [L], [R], [R]
  std::vector<int32_t> target;                   // [R]
  std::vector<float> kl, target_prob;            // [R, L]
  std::vector<int32_t> target_rank;              // [R, L]
  std::vector<int32_t> top_ids;                  // [R, L, k]
  std::vector<float> top_probs;                  // [R, L, k]
  int64_t k = 0;
  std::string input;
  int64_t n_rows() const { return static_cast<int64_t>(sequence.size()); }
  int64_t n_layers() const { return static_cast<int64_t>(layers.size()); }
};
std::vector<h5::DatasetSpec> lens_datasets(const LensResults& r);
void write_lens(const std::filesystem::path& file, const LensResults& r, const json& provenance);
std::string lens_csv(const LensResults& r);
LensResults read_lens(const std::filesystem::path& file, const std::string& key);

struct CkaResults {
  std::vector<std::string> hooks_a, hooks_b;
  std::vector<int64_t> layers_a, layers_b;
  std::vector<double> linear, rbf;  // [A, B]; rbf empty unless computed
  int64_t n_rows = 0, n_rows_total = 0, seed = 0;
  std::string model_a, model_b, input_a, input_b;
};
std::vector<h5::DatasetSpec> cka_datasets(const CkaResults& r);
void write_cka(const std::filesystem::path& file, const CkaResults& r, const json& provenance);
std::string cka_csv(const CkaResults& r);
CkaResults read_cka(const std::filesystem::path& file, const std::string& key);

}  // namespace ts::artifacts
