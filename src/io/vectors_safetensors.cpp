// Steering vectors in safetensors (vectors.h), the interchange format: one F32 tensor per name,
// "<name>.counts" beside it, everything else in __metadata__.
#include "io/vectors.h"

#include <cstring>
#include <map>
#include <stdexcept>

#include "core/error.h"
#include "core/json.h"
#include "io/vectors_detail.h"
#include "model/safetensors.h"

namespace ts {

namespace fs = std::filesystem;
using namespace vectors_detail;

namespace {

std::string st_counts_name(const std::string& name) { return name + ".counts"; }

FieldNamer st_field(const VectorSet& s) {
  return [&s](const Problem& p) -> std::string {
    const bool one_name = p.name != SIZE_MAX && p.name < s.names.size();
    switch (p.field) {
      case Field::values: return one_name ? s.names[p.name] : "<tensors>";
      case Field::counts: return one_name ? st_counts_name(s.names[p.name]) : "<tensors>";
      case Field::d_model: return "__metadata__.d_model";
      case Field::provenance: return "__metadata__.provenance";
      default: return "__metadata__." + generic_field(p);
    }
  };
}

std::map<std::string, std::string> st_metadata(const VectorSet& s) {
  return {{"format", VECTORS_FORMAT},
          {"format_version", std::to_string(VECTORS_FORMAT_VERSION)},
          {"names", json(s.names).dump()},
          {"layers", json(s.layers).dump()},
          {"d_model", std::to_string(s.d_model)},
          {"hook_measured", s.hook_measured},
          {"hook_applied", s.hook_applied},
          {"architecture", s.architecture},
          {"model", s.model},
          {"provenance", s.provenance_json}};
}

// Counts (8-byte elements) before values (4-byte), as the reference writer orders by alignment, so
// that every tensor starts aligned to its element size.
void st_write(const fs::path& tmp, const VectorSet& s) {
  const size_t l = s.n_layers(), row = l * static_cast<size_t>(s.d_model);
  std::vector<TensorBytes> tensors;
  if (!s.counts.empty())
    for (size_t i = 0; i < s.n_names(); ++i)
      tensors.push_back({st_counts_name(s.names[i]), DType::I64, {static_cast<int64_t>(l)}, bytes_of(s.counts.data() + i * l, l)});
  for (size_t i = 0; i < s.n_names(); ++i)
    tensors.push_back({s.names[i], DType::F32, {static_cast<int64_t>(l), s.d_model}, bytes_of(s.values.data() + i * row, row)});
  safetensors_write(tmp, tensors, st_metadata(s));
}

const std::string& st_meta(const SafetensorsFile& st, const std::string& key) {
  const auto& md = st.header().metadata;
  auto it = md.find(key);
  if (it == md.end()) throw InputError(st.path().string(), "__metadata__." + key, "missing");
  return it->second;
}

json st_meta_json(const SafetensorsFile& st, const std::string& key) {
  try {
    return json_parse_strict(st_meta(st, key), st.path().string());
  } catch (const InputError& e) {
    throw InputError(st.path().string(), "__metadata__." + key, std::string("is not valid JSON: ") + e.what());
  }
}

int64_t st_meta_int(const SafetensorsFile& st, const std::string& key) {
  const json v = st_meta_json(st, key);
  if (!v.is_number_integer()) throw InputError(st.path().string(), "__metadata__." + key, "must be an integer");
  return v.get<int64_t>();
}

std::vector<std::string> st_names(const SafetensorsFile& st) {
  const json v = st_meta_json(st, "names");
  const std::string field = "__metadata__.names";
  if (!v.is_array() || static_cast<int64_t>(v.size()) > VECTORS_MAX_NAMES) throw InputError(st.path().string(), field, "must be a JSON list of at most 65536 names");
  std::vector<std::string> out;
  for (const json& n : v) {
    if (!n.is_string()) throw InputError(st.path().string(), field, "must be a JSON list of strings");
    out.push_back(n.get<std::string>());
  }
  return out;
}

std::vector<int64_t> st_layers(const SafetensorsFile& st) {
  const json v = st_meta_json(st, "layers");
  const std::string field = "__metadata__.layers";
  if (!v.is_array() || static_cast<int64_t>(v.size()) > VECTORS_MAX_LAYERS) throw InputError(st.path().string(), field, "must be a JSON list of at most 16384 layers");
  std::vector<int64_t> out;
  for (const json& n : v) {
    if (!n.is_number_integer()) throw InputError(st.path().string(), field, "must be a JSON list of integers");
    out.push_back(n.get<int64_t>());
  }
  return out;
}

// Tensor `name` exists with this dtype and shape.
void st_check(const SafetensorsFile& st, const std::string& name, DType dtype, const std::vector<int64_t>& shape) {
  const TensorInfo* t = st.find(name);
  const std::string file = st.path().string();
  if (!t) throw InputError(file, name, "tensor missing");
  if (t->dtype != dtype) throw InputError(file, name, std::string("dtype ") + dtype_name(t->dtype) + ", expected " + dtype_name(dtype));
  if (t->shape != shape) throw InputError(file, name, "shape " + shape_to_string(t->shape) + ", expected " + shape_to_string(shape));
}

// Copies a checked tensor into `dst`. The header is validated, so the bytes lie inside the file;
// memcpy because safetensors data need not be aligned.
void st_copy(const SafetensorsFile& st, const std::string& name, void* dst) {
  const auto bytes = st.bytes(*st.find(name));
  if (!bytes.empty()) std::memcpy(dst, bytes.data(), bytes.size());
}

}  // namespace

void vectors_write_safetensors(const fs::path& path, const VectorSet& set) {
  require_valid(set, path);
  write_verified(path, [&](const fs::path& tmp) { st_write(tmp, set); }, [&](const fs::path& tmp) { expect_same(vectors_read_safetensors(tmp), set, tmp); });
}

VectorSet vectors_read_safetensors(const fs::path& path) {
  const SafetensorsFile st(path);
  const std::string file = path.string();
  if (st_meta(st, "format") != VECTORS_FORMAT)
    throw InputError(file, "__metadata__.format", "is \"" + st_meta(st, "format") + "\", expected \"" + VECTORS_FORMAT + "\"");
  if (st_meta_int(st, "format_version") != VECTORS_FORMAT_VERSION)
    throw InputError(file, "__metadata__.format_version", st_meta(st, "format_version") + " is not supported (this build reads version " + std::to_string(VECTORS_FORMAT_VERSION) + ")");
  VectorSet s;
  s.names = st_names(st);
  s.layers = st_layers(st);
  s.d_model = st_meta_int(st, "d_model");
  s.hook_measured = st_meta(st, "hook_measured");
  s.hook_applied = st_meta(st, "hook_applied");
  s.architecture = st_meta(st, "architecture");
  s.model = st_meta(st, "model");
  s.provenance_json = st_meta(st, "provenance");
  if (auto p = dims_problem(s)) throw InputError(file, st_field(s)(*p), p->what);
  // The tensors are exactly ours: "<name>" for every name, and "<name>.counts" for all or none
  // (whether counts are recorded is read off the first name).
  const bool has_counts = st.find(st_counts_name(s.names[0])) != nullptr;
  for (const TensorInfo& t : st.header().tensors) {
    const bool counts = t.name.size() > 7 && t.name.compare(t.name.size() - 7, 7, ".counts") == 0;
    const std::string base = counts ? t.name.substr(0, t.name.size() - 7) : t.name;
    if (!s.name_index(base) || (counts && !has_counts))
      throw InputError(file, t.name, "unexpected tensor (not \"<name>\" or \"<name>.counts\" for a name in __metadata__.names)");
  }
  // Every tensor's dtype and shape before allocating: then the allocation is bounded by the file.
  const size_t l = s.n_layers(), row = l * static_cast<size_t>(s.d_model);
  for (size_t i = 0; i < s.n_names(); ++i) {
    st_check(st, s.names[i], DType::F32, {static_cast<int64_t>(l), s.d_model});
    if (has_counts) st_check(st, st_counts_name(s.names[i]), DType::I64, {static_cast<int64_t>(l)});
  }
  s.values.resize(s.n_names() * row);
  if (has_counts) s.counts.resize(s.n_names() * l);
  for (size_t i = 0; i < s.n_names(); ++i) {
    st_copy(st, s.names[i], s.values.data() + i * row);
    if (has_counts) st_copy(st, st_counts_name(s.names[i]), s.counts.data() + i * l);
  }
  throw_if_invalid(s, file, st_field(s));
  return s;
}

}  // namespace ts
