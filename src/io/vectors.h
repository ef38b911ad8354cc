// Steering-vector files: one in-memory VectorSet, three file formats.
//
//   HDF5         vectors_write_h5 / vectors_read_h5                   for analysis (h5py, xarray)
//   safetensors  vectors_write_safetensors / vectors_read_safetensors  the interchange format
//   GGUF         vectors_write_gguf / vectors_read_gguf                llama.cpp control vectors (one name)
//
// Every writer validates the set first (std::invalid_argument naming the field: a bad set is the
// caller's bug), writes "<path>.tmp.<pid>", reads it back with the matching reader and compares,
// fsyncs, renames it over <path> and fsyncs the directory (docs/decisions.md "Outputs and runs"), so a
// reader never sees a half-written file. Every reader validates everything (shapes agree, names
// unique, layers ascending and non-negative, values finite, counts consistent) and throws
// InputError(file, field, what) naming the dataset, attribute, tensor or key at fault.
//
// HDF5 layout ("thinksteer.vectors", format_version 1):
//   /vectors  float32 [name, layer, d_model]   dimension scales name, layer, d_model
//   /counts   int64   [name, layer]            (absent when the set records no counts)
//   /names    string  [name]                   the names, in order
//   /layers   int64   [layer]                  the 0-based decoder layers held
//   root attributes: format, format_version, hook_measured, hook_applied, architecture, model,
//                    provenance (JSON text)
// safetensors: tensor "<name>" F32 [n_layers, d_model] per name and "<name>.counts" I64 [n_layers]
//   (when counts are recorded); __metadata__ (strings): format, format_version, names (JSON list,
//   the order), layers (JSON list), d_model, hook_measured, hook_applied, architecture, model,
//   provenance.
// GGUF: see vectors_write_gguf.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/options.h"  // enum class GgufLayerMap and its names

namespace ts {

inline constexpr const char* VECTORS_FORMAT = "thinksteer.vectors";
inline constexpr int64_t VECTORS_FORMAT_VERSION = 1;
// Bounds a reader enforces before allocating (far above any model: d_model 16384, 128 layers).
inline constexpr int64_t VECTORS_MAX_D_MODEL = int64_t{1} << 20;
inline constexpr int64_t VECTORS_MAX_LAYERS = int64_t{1} << 14;
inline constexpr int64_t VECTORS_MAX_NAMES = int64_t{1} << 16;
inline constexpr int64_t VECTORS_MAX_VALUES = int64_t{1} << 30;  // 4 GiB of float32

// A set of steering vectors: for each name (a behaviour label, "overall", or a contrastive
// direction), one d_model vector per held layer (docs/algorithms.md §A.4: per label a [L, d] mean and
// its counts, plus the overall mean), measured at `hook_measured` and meant to be added at
// `hook_applied`. Hooks are TransformerLens patterns with "{l}" standing for the layer, e.g.
// "blocks.{l}.hook_resid_post"; layers are 0-based decoder layers (docs/decisions.md "Names and indexing").
struct VectorSet {
  std::string hook_measured;         // "" only when unknown (a GGUF file from another tool)
  std::string hook_applied;
  std::vector<int64_t> layers;       // the layers held, strictly ascending, >= 0
  int64_t d_model = 0;
  std::vector<std::string> names;    // unique; letters, digits and "_.+-", not ending in ".counts"
  std::vector<float> values;         // [names][layers][d_model], row-major, finite
  // [names][layers]: examples (or spans) averaged into each vector. 0 marks a missing vector (no
  // examples), whose values must then be all zero. Empty when the source does not record counts
  // (GGUF).
  std::vector<int64_t> counts;
  std::string model;                 // model path or name, a hint for the reader
  std::string architecture;          // "qwen2", "llama", ... (GGUF controlvector.model_hint); may be ""
  std::string provenance_json;       // resolved config, git commit, seeds... (JSON text or "")

  size_t n_names() const { return names.size(); }
  size_t n_layers() const { return layers.size(); }
  // The d_model values of name `name_index` at the `layer_index`-th held layer.
  const float* vector(size_t name_index, size_t layer_index) const;
  float* vector(size_t name_index, size_t layer_index);
  // Its count, or -1 when the set records no counts.
  int64_t count(size_t name_index, size_t layer_index) const;
  std::optional<size_t> name_index(std::string_view name) const;
  std::optional<size_t> layer_index(int64_t layer) const;

  bool operator==(const VectorSet&) const = default;
};

// "blocks.{l}.hook_resid_post" with layer 3 -> "blocks.3.hook_resid_post" (a pattern without "{l}"
// is returned as is).
std::string hook_at(std::string_view pattern, int64_t layer);

// Throws InputError(source, field, what) for the first problem of `set` (fields named generically:
// "names", "layers", "values[<name>]", "counts[<name>]", "hook_applied", ...).
void vectors_validate(const VectorSet& set, const std::string& source);

void vectors_write_h5(const std::filesystem::path& path, const VectorSet& set);
VectorSet vectors_read_h5(const std::filesystem::path& path);

void vectors_write_safetensors(const std::filesystem::path& path, const VectorSet& set);
VectorSet vectors_read_safetensors(const std::filesystem::path& path);

// How vectors_write_gguf names the tensor that carries our resid_post[l] (0-based decoder layer l),
// and how vectors_read_gguf turns a tensor name back into our layer.
//
// What llama.cpp does with a file (docs/conventions.md §4.7): common/common.cpp,
// common_control_vector_load_one, puts direction.N (N >= 1; N = 0 is rejected) in buffer row N-1;
// src/llama-adapter.cpp, llama_adapter_cvec::init/apply, leaves tensors[0] null and gives
// tensors[il] buffer row il-1 for il = 1..n_layer-1; the models call build_cvec(cur, il) on the
// output of block il (0-based). So llama.cpp adds direction.N to the output of block N, i.e. at
// blocks.{N}.hook_resid_post; block 0's output cannot be steered; direction.N with N >= n_layer is
// loaded but never added.
//
// GgufLayerMap (core/options.h, the option vectors.gguf_layer_map):
//   next_block  the default of vectors_write_gguf below (the stage's vectors.gguf_layer_map defaults to
//               same_block, docs/decisions.md "Names and indexing"): resid_post[l] -> direction.{l+1},
//               so layer 0's output is direction.1 and every layer 0..n_layer-1 can be exported. This is
//               also the layout of the files llama.cpp's own llama-cvector-generator writes (the vector
//               it measures at block il's output is named direction.{il+1}). llama.cpp applies such a
//               file one block after the measurement: our resid_post[l] vector is added at
//               resid_post[l+1], and the vector of our last layer (direction.{n_layer}) is loaded but
//               applied nowhere (there is no block n_layer).
//   same_block  resid_post[l] -> direction.{l}: llama.cpp adds each vector exactly at the hook it was
//               measured at. Layer 0 has no slot (direction.0 is invalid) and is left out.

// "next-block" / "same-block": the names a config option and the GGUF key thinksteer.layer_map use.
std::string gguf_layer_map_name(GgufLayerMap map);
// The inverse; std::invalid_argument listing the valid names for anything else.
GgufLayerMap gguf_layer_map_from_name(std::string_view name);

// llama.cpp's GGUF control-vector format (docs/conventions.md §4.7): GGUF v3, general.architecture =
// "controlvector", controlvector.model_hint = set.architecture (required), controlvector.layer_count
// (INT32, the number of direction tensors), and per exported layer l one 1-D F32 tensor
// "direction.{N}" of d_model values: the vector of `name` at layer l, times `scale` (rounded to
// float32), with N = l + 1 (GgufLayerMap::next_block, the default) or N = l (same_block, which
// leaves layer 0 out); see GgufLayerMap for where llama.cpp then applies each vector. Alignment 32
// (the default, so general.alignment is not written). Keys "thinksteer.*" carry the name, hooks,
// scale, layer map (thinksteer.layer_map = gguf_layer_map_name(map), always written), model and
// provenance; llama.cpp ignores them. Only hook_applied = "blocks.{l}.hook_resid_post" can be
// exported (std::invalid_argument otherwise: llama.cpp adds control vectors to the layer output).
// Returns our layers written (ascending, 0-based, not the N of the tensor names);
// std::invalid_argument when none can be. tests/io/test_vectors.cpp GgufLayerMappingMatchesLlamaCpp
// replays llama.cpp's indexing for both maps.
[[nodiscard]] std::vector<int64_t> vectors_write_gguf(const std::filesystem::path& path, const VectorSet& set,
                                                      const std::string& name, double scale = 1.0,
                                                      GgufLayerMap map = GgufLayerMap::next_block);

// A GGUF control vector as a one-name VectorSet whose layers are our 0-based layers: for tensor
// direction.N, layer N-1 when thinksteer.layer_map is "next-block", N when it is "same-block", and
// N for a file without the key (another tool's file, or one written before the key existed): the
// layer at whose output llama.cpp adds direction.N, resid_post[N]. An unknown thinksteer.layer_map
// is an InputError naming the key. hook_applied "blocks.{l}.hook_resid_post", values as stored
// (already scaled), no counts; the name, hook_measured, model and provenance from the thinksteer.*
// keys when present (else "direction" and ""). Checks what llama.cpp checks (direction.N with
// N >= 1, F32, 1-D, one length) and more: N written in plain decimal, no layer twice (llama.cpp
// would sum them), general.architecture = "controlvector", controlvector.layer_count (when present)
// equal to the number of tensors, finite values.
VectorSet vectors_read_gguf(const std::filesystem::path& path);

}  // namespace ts
