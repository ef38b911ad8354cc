// Steering-vector files: one in-memory VectorSet, three file formats.
//
//   HDF5         vectors_write_h5 / vectors_read_h5                   for analysis (h5py, xarray)
//   safetensors  vectors_write_safetensors / vectors_read_safetensors  the interchange format
//   GGUF         vectors_write_gguf / vectors_read_gguf                llama.cpp control vectors (one name)
//
// Every writer validates the set first (std::invalid_argument naming the field: a bad set is the
// caller's bug), writes "<path>.tmp.<pid>", reads it back with the matching reader and compares,
// fsyncs, renames it over <path> and fsyncs the directory (DECISIONS.md "Outputs and runs"), so a
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

namespace ts {

inline constexpr const char* VECTORS_FORMAT = "thinksteer.vectors";
inline constexpr int64_t VECTORS_FORMAT_VERSION = 1;
// Bounds a reader enforces before allocating (far above any model: d_model 16384, 128 layers).
inline constexpr int64_t VECTORS_MAX_D_MODEL = int64_t{1} << 20;
inline constexpr int64_t VECTORS_MAX_LAYERS = int64_t{1} << 14;
inline constexpr int64_t VECTORS_MAX_NAMES = int64_t{1} << 16;
inline constexpr int64_t VECTORS_MAX_VALUES = int64_t{1} << 30;  // 4 GiB of float32

// A set of steering vectors: for each name (a behaviour label, "overall", or a contrastive
// direction), one d_model vector per held layer (ALGORITHMS.md §A.4: per label a [L, d] mean and
// its counts, plus the overall mean), measured at `hook_measured` and meant to be added at
// `hook_applied`. Hooks are TransformerLens patterns with "{l}" standing for the layer, e.g.
// "blocks.{l}.hook_resid_post"; layers are 0-based decoder layers (DECISIONS.md "Names and indexing").
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

// llama.cpp's GGUF control-vector format (CONVENTIONS.md §4.7): GGUF v3, general.architecture =
// "controlvector", controlvector.model_hint = set.architecture (required), controlvector.layer_count
// (INT32, the number of direction tensors), and per exported layer l one 1-D F32 tensor
// "direction.{l}" of d_model values: the vector of `name` at layer l, times `scale` (rounded to
// float32). Alignment 32 (the default, so general.alignment is not written). Keys
// "thinksteer.*" carry the name, hooks, scale, model and provenance; llama.cpp ignores them.
//
// Layer mapping: llama.cpp adds direction.N to the output of decoder block N (0-based), i.e. to
// blocks.{N}.hook_resid_post, and has no slot for block 0 (src/llama-adapter.cpp,
// llama_adapter_cvec::init/apply: tensors[0] is null and tensors[il] takes buffer row il-1;
// common/common.cpp, common_control_vector_load_one: direction.N goes to buffer row N-1; the
// models call build_cvec(cur, il) on each block's output with il counted from 0). So a vector
// meant for resid_post[l] is written as direction.{l}, and layer 0 cannot be exported: it is left
// out. (DECISIONS.md states resid_post[l] -> direction.{l+1}, which llama.cpp would apply one block
// late; tests/io/test_vectors.cpp GgufLayerMappingMatchesLlamaCpp replays llama.cpp's indexing.) Only hook_applied = "blocks.{l}.hook_resid_post" can be exported (std::invalid_argument
// otherwise: llama.cpp adds control vectors to the layer output). Returns the layers written
// (ascending); std::invalid_argument when none can be.
[[nodiscard]] std::vector<int64_t> vectors_write_gguf(const std::filesystem::path& path, const VectorSet& set,
                                                      const std::string& name, double scale = 1.0);

// A GGUF control vector as a one-name VectorSet: layers N for the tensors direction.N,
// hook_applied "blocks.{l}.hook_resid_post", values as stored (already scaled), no counts; the
// name, hook_measured, model and provenance from the thinksteer.* keys when present (else
// "direction" and ""). Checks what llama.cpp checks (direction.N with N >= 1, F32, 1-D, one
// length) and more: N written in plain decimal, no layer twice (llama.cpp would sum them),
// general.architecture = "controlvector", controlvector.layer_count (when present) equal to the
// number of tensors, finite values.
VectorSet vectors_read_gguf(const std::filesystem::path& path);

}  // namespace ts
