// Steering-vector files (see vectors.h for the three layouts): the VectorSet, the one validator every
// format uses and the verified commit (vectors_detail.h). The formats: vectors_h5.cpp,
// vectors_safetensors.cpp, vectors_gguf.cpp.
#include "io/vectors.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <set>
#include <stdexcept>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json.h"
#include "core/utf8.h"
#include "io/vectors_detail.h"

namespace ts {

// Values and counts are copied to and from files as raw little-endian bytes.
static_assert(std::endian::native == std::endian::little, "io/vectors assumes a little-endian host");

namespace fs = std::filesystem;

namespace vectors_detail {

namespace {

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '+' || c == '-';
}

// A name becomes a safetensors tensor name (and "<name>.counts" another), an HDF5 string and a
// GGUF string, so it is kept to a plain, unambiguous alphabet.
std::optional<std::string> name_problem(const std::string& name) {
  if (name.empty() || name.size() > 200) return "must be 1 to 200 characters";
  if (!std::all_of(name.begin(), name.end(), is_name_char)) return "may hold only letters, digits and \"_.+-\"";
  if (name.size() >= 7 && name.compare(name.size() - 7, 7, ".counts") == 0) return "must not end in \".counts\" (reserved for counts tensors)";
  if (name == "__metadata__") return "is reserved by safetensors";
  return std::nullopt;
}

// "blocks.{l}.hook_resid_post": exactly one "{l}", otherwise letters, digits, '_' and '.'.
std::optional<std::string> hook_problem(const std::string& hook) {
  const size_t at = hook.find("{l}");
  if (at == std::string::npos || hook.find("{l}", at + 1) != std::string::npos)
    return "\"" + hook + "\" must contain \"{l}\" exactly once (e.g. blocks.{l}.hook_resid_post)";
  const std::string rest = hook.substr(0, at) + hook.substr(at + 3);
  if (hook.size() > 200 || !std::all_of(rest.begin(), rest.end(), [](char c) { return is_name_char(c) && c != '+' && c != '-'; }))
    return "\"" + hook + "\" is not a TransformerLens hook pattern (letters, digits, '_', '.' and one \"{l}\")";
  return std::nullopt;
}

// Text every format can hold: UTF-8 (safetensors metadata is JSON) without NUL (HDF5 and C strings).
std::optional<std::string> text_problem(const std::string& text) {
  if (auto bad = utf8::find_invalid(text)) return "is not valid UTF-8 (byte " + std::to_string(*bad) + ")";
  if (text.find('\0') != std::string::npos) return "contains a NUL byte";
  return std::nullopt;
}

std::optional<Problem> string_fields_problem(const VectorSet& s) {
  if (auto p = hook_problem(s.hook_applied)) return Problem{Field::hook_applied, SIZE_MAX, SIZE_MAX, *p};
  if (!s.hook_measured.empty())
    if (auto p = hook_problem(s.hook_measured)) return Problem{Field::hook_measured, SIZE_MAX, SIZE_MAX, *p};
  if (s.architecture.size() > 64 || !std::all_of(s.architecture.begin(), s.architecture.end(), [](char c) { return is_name_char(c) && c != '+'; }))
    return Problem{Field::architecture, SIZE_MAX, SIZE_MAX, "\"" + s.architecture + "\" is not an architecture name (e.g. qwen2, llama)"};
  if (auto p = text_problem(s.model)) return Problem{Field::model, SIZE_MAX, SIZE_MAX, *p};
  if (auto p = text_problem(s.provenance_json)) return Problem{Field::provenance, SIZE_MAX, SIZE_MAX, *p};
  if (!s.provenance_json.empty() && !json::accept(s.provenance_json))
    return Problem{Field::provenance, SIZE_MAX, SIZE_MAX, "is not valid JSON"};
  return std::nullopt;
}

}  // namespace

std::optional<Problem> dims_problem(const VectorSet& s) {
  if (s.d_model < 1 || s.d_model > VECTORS_MAX_D_MODEL)
    return Problem{Field::d_model, SIZE_MAX, SIZE_MAX, "d_model " + std::to_string(s.d_model) + " is outside 1.." + std::to_string(VECTORS_MAX_D_MODEL)};
  if (s.layers.empty() || static_cast<int64_t>(s.layers.size()) > VECTORS_MAX_LAYERS)
    return Problem{Field::layers, SIZE_MAX, SIZE_MAX, std::to_string(s.layers.size()) + " layers (1.." + std::to_string(VECTORS_MAX_LAYERS) + " allowed)"};
  for (size_t k = 0; k < s.layers.size(); ++k) {
    if (s.layers[k] < 0 || s.layers[k] >= VECTORS_MAX_LAYERS)
      return Problem{Field::layers, SIZE_MAX, k, "layer " + std::to_string(s.layers[k]) + " is outside 0.." + std::to_string(VECTORS_MAX_LAYERS - 1)};
    if (k > 0 && s.layers[k] <= s.layers[k - 1])
      return Problem{Field::layers, SIZE_MAX, k, "layers must be strictly ascending: " + std::to_string(s.layers[k - 1]) + " then " + std::to_string(s.layers[k])};
  }
  if (s.names.empty() || static_cast<int64_t>(s.names.size()) > VECTORS_MAX_NAMES)
    return Problem{Field::names, SIZE_MAX, SIZE_MAX, std::to_string(s.names.size()) + " names (1.." + std::to_string(VECTORS_MAX_NAMES) + " allowed)"};
  std::set<std::string> seen;
  for (size_t i = 0; i < s.names.size(); ++i) {
    if (auto p = name_problem(s.names[i])) return Problem{Field::names, i, SIZE_MAX, "name \"" + s.names[i] + "\" " + *p};
    if (!seen.insert(s.names[i]).second) return Problem{Field::names, i, SIZE_MAX, "name \"" + s.names[i] + "\" appears twice"};
  }
  return std::nullopt;
}

namespace {

std::optional<Problem> shape_problem(const VectorSet& s) {
  if (auto p = dims_problem(s)) return p;
  const uint64_t rows = s.names.size() * s.layers.size();
  if (rows * static_cast<uint64_t>(s.d_model) > static_cast<uint64_t>(VECTORS_MAX_VALUES))
    return Problem{Field::values, SIZE_MAX, SIZE_MAX, "more than " + std::to_string(VECTORS_MAX_VALUES) + " values"};
  if (s.values.size() != rows * static_cast<uint64_t>(s.d_model))
    return Problem{Field::values, SIZE_MAX, SIZE_MAX, "holds " + std::to_string(s.values.size()) + " values; names x layers x d_model = " +
                                                          std::to_string(rows * static_cast<uint64_t>(s.d_model))};
  if (!s.counts.empty() && s.counts.size() != rows)
    return Problem{Field::counts, SIZE_MAX, SIZE_MAX, "holds " + std::to_string(s.counts.size()) + " counts; names x layers = " + std::to_string(rows)};
  return std::nullopt;
}

std::string where_of(const VectorSet& s, size_t i, size_t k) { return "name \"" + s.names[i] + "\", layer " + std::to_string(s.layers[k]); }

}  // namespace

std::optional<Problem> value_problem(const VectorSet& s) {
  for (size_t i = 0; i < s.n_names(); ++i)
    for (size_t k = 0; k < s.n_layers(); ++k) {
      const float* v = s.vector(i, k);
      const int64_t c = s.count(i, k);
      for (int64_t j = 0; j < s.d_model; ++j) {
        if (!std::isfinite(v[j])) return Problem{Field::values, i, k, where_of(s, i, k) + ": element " + std::to_string(j) + " is not finite"};
        if (c == 0 && v[j] != 0.0f)
          return Problem{Field::values, i, k, where_of(s, i, k) + ": count 0 marks a missing vector, but element " + std::to_string(j) + " is not zero"};
      }
      if (!s.counts.empty() && c < 0) return Problem{Field::counts, i, k, where_of(s, i, k) + ": count " + std::to_string(c) + " is negative"};
    }
  return std::nullopt;
}

std::optional<Problem> find_problem(const VectorSet& s) {
  if (auto p = string_fields_problem(s)) return p;
  if (auto p = shape_problem(s)) return p;
  return value_problem(s);
}

std::string generic_field(const Problem& p) {
  switch (p.field) {
    case Field::hook_measured: return "hook_measured";
    case Field::hook_applied: return "hook_applied";
    case Field::layers: return "layers";
    case Field::d_model: return "d_model";
    case Field::names: return "names";
    case Field::values: return "values";
    case Field::counts: return "counts";
    case Field::architecture: return "architecture";
    case Field::model: return "model";
    case Field::provenance: return "provenance_json";
  }
  return "?";
}

void throw_if_invalid(const VectorSet& s, const std::string& file, const FieldNamer& field) {
  if (auto p = find_problem(s)) throw InputError(file, field(*p), p->what);
}

void require_valid(const VectorSet& s, const fs::path& path) {
  if (auto p = find_problem(s)) throw std::invalid_argument(path.string() + ": " + generic_field(*p) + ": " + p->what);
}

void write_verified(const fs::path& path, const std::function<void(const fs::path&)>& write, const std::function<void(const fs::path&)>& verify) {
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  fs::create_directories(dir);
  const fs::path tmp = temp_path_for(path);
  try {
    try {
      write(tmp);
      verify(tmp);
    } catch (const InputError& e) {
      throw std::runtime_error(path.string() + ": writing or verifying the new file failed: " + e.what());
    }
    commit_file(tmp, path);
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
}

void expect_same(const VectorSet& read, const VectorSet& written, const fs::path& tmp) {
  if (!(read == written)) throw std::runtime_error(tmp.string() + ": reading back the file just written gave a different vector set");
}

}  // namespace vectors_detail

using namespace vectors_detail;

// ---------------------------------------------------------------------------------------------
// VectorSet

const float* VectorSet::vector(size_t name_index, size_t layer_index) const {
  return values.data() + (name_index * layers.size() + layer_index) * static_cast<size_t>(d_model);
}
float* VectorSet::vector(size_t name_index, size_t layer_index) {
  return values.data() + (name_index * layers.size() + layer_index) * static_cast<size_t>(d_model);
}
int64_t VectorSet::count(size_t name_index, size_t layer_index) const {
  return counts.empty() ? -1 : counts[name_index * layers.size() + layer_index];
}
std::optional<size_t> VectorSet::name_index(std::string_view name) const {
  auto it = std::find(names.begin(), names.end(), name);
  return it == names.end() ? std::nullopt : std::optional<size_t>(static_cast<size_t>(it - names.begin()));
}
std::optional<size_t> VectorSet::layer_index(int64_t layer) const {
  auto it = std::lower_bound(layers.begin(), layers.end(), layer);
  return it == layers.end() || *it != layer ? std::nullopt : std::optional<size_t>(static_cast<size_t>(it - layers.begin()));
}

std::string hook_at(std::string_view pattern, int64_t layer) {
  std::string out(pattern);
  const size_t at = out.find("{l}");
  if (at != std::string::npos) out.replace(at, 3, std::to_string(layer));
  return out;
}

void vectors_validate(const VectorSet& set, const std::string& source) {
  throw_if_invalid(set, source, generic_field);
}

}  // namespace ts
