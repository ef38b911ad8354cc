// Steering vectors as llama.cpp GGUF control vectors (vectors.h: vectors_write_gguf,
// vectors_read_gguf, GgufLayerMap), through the GGUF container of io/gguf.h.
#include "io/vectors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <stdexcept>

#include "core/error.h"
#include "io/gguf.h"
#include "io/vectors_detail.h"

namespace ts {

namespace fs = std::filesystem;
using namespace vectors_detail;

namespace {

constexpr const char* RESID_POST = "blocks.{l}.hook_resid_post";
constexpr const char* GGUF_DEFAULT_NAME = "direction";

// A regular file read whole, at most `limit` bytes (a FIFO or a huge file is refused, not read).
std::string read_regular_file(const fs::path& path, uint64_t limit) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw InputError(path.string(), "<file>", std::string("cannot open: ") + std::strerror(errno));
  struct stat st{};
  const bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  std::string out;
  if (regular && static_cast<uint64_t>(st.st_size) <= limit) {
    out.resize(static_cast<size_t>(st.st_size));
    size_t got = 0;
    while (got < out.size()) {
      const ssize_t n = ::read(fd, out.data() + got, out.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    out.resize(got);
  }
  ::close(fd);
  if (!regular) throw InputError(path.string(), "<file>", "not a regular file");
  if (static_cast<uint64_t>(st.st_size) > limit)
    throw InputError(path.string(), "<file>", std::to_string(st.st_size) + " bytes is more than a vector file may hold (" + std::to_string(limit) + ")");
  return out;
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) throw std::runtime_error(path.string() + ": cannot write");
}

constexpr uint64_t GGUF_MAX_FILE = uint64_t{1} << 32;

constexpr const char* GGUF_LAYER_MAP_KEY = "thinksteer.layer_map";

std::string direction_name(int64_t n) { return "direction." + std::to_string(n); }

// N of the tensor direction.N that holds our layer l is l + shift: 1 for next_block, 0 for same_block.
int64_t direction_shift(GgufLayerMap map) { return map == GgufLayerMap::next_block ? 1 : 0; }

// Names fields of a set read from a GGUF file whose tensor direction.N holds our layer N - shift.
FieldNamer gguf_field(const VectorSet& s, int64_t shift) {
  return [&s, shift](const Problem& p) -> std::string {
    switch (p.field) {
      case Field::hook_measured: return "thinksteer.hook_measured";
      case Field::hook_applied: return "thinksteer.hook_applied";
      case Field::names: return "thinksteer.vector_name";
      case Field::architecture: return "controlvector.model_hint";
      case Field::model: return "thinksteer.model";
      case Field::provenance: return "thinksteer.provenance";
      case Field::values: case Field::layers: case Field::counts: case Field::d_model:
        return p.layer < s.layers.size() ? direction_name(s.layers[p.layer] + shift) : "<tensors>";
    }
    return "?";
  };
}

// The one-name set a GGUF export holds: `name` at the layers `map` can name (all for next_block,
// >= 1 for same_block), times `scale`, no counts.
VectorSet gguf_view(const VectorSet& s, size_t name, double scale, GgufLayerMap map) {
  VectorSet out{.hook_measured = s.hook_measured, .hook_applied = s.hook_applied, .layers = {}, .d_model = s.d_model,
                .names = {s.names[name]}, .values = {}, .counts = {}, .model = s.model, .architecture = s.architecture,
                .provenance_json = s.provenance_json};
  for (size_t k = 0; k < s.n_layers(); ++k) {
    if (s.layers[k] - 1 + direction_shift(map) < 0) continue;  // direction.0 does not exist
    out.layers.push_back(s.layers[k]);
    const float* v = s.vector(name, k);
    for (int64_t j = 0; j < s.d_model; ++j) out.values.push_back(static_cast<float>(static_cast<double>(v[j]) * scale));
  }
  return out;
}

std::string gguf_bytes(const VectorSet& v, double scale, GgufLayerMap map) {
  std::vector<GgufKeyValue> kv = {
      {"general.architecture", GgufValue::string("controlvector")},
      {"controlvector.model_hint", GgufValue::string(v.architecture)},
      {"controlvector.layer_count", GgufValue::int32(static_cast<int32_t>(v.n_layers()))},
      {"thinksteer.format", GgufValue::string(VECTORS_FORMAT)},
      {"thinksteer.format_version", GgufValue::int64(VECTORS_FORMAT_VERSION)},
      {"thinksteer.vector_name", GgufValue::string(v.names[0])},
      {"thinksteer.hook_measured", GgufValue::string(v.hook_measured)},
      {"thinksteer.hook_applied", GgufValue::string(v.hook_applied)},
      {"thinksteer.scale", GgufValue::float64(scale)},
      {GGUF_LAYER_MAP_KEY, GgufValue::string(gguf_layer_map_name(map))},
      {"thinksteer.model", GgufValue::string(v.model)},
      {"thinksteer.provenance", GgufValue::string(v.provenance_json)},
  };
  std::vector<GgufTensorOut> tensors;
  const size_t d = static_cast<size_t>(v.d_model);
  for (size_t k = 0; k < v.n_layers(); ++k)
    tensors.push_back({direction_name(v.layers[k] + direction_shift(map)), {static_cast<uint64_t>(d)}, GgmlType::F32, bytes_of(v.vector(0, k), d)});
  return gguf_serialize(kv, tensors);
}

// An optional STRING key ("" when absent).
std::string gguf_string(const GgufFile& g, const std::string& key, const std::string& file) {
  const GgufValue* v = g.find(key);
  if (!v) return "";
  if (v->type != GgufType::STRING) throw InputError(file, key, std::string("must be STRING, found ") + gguf_type_name(v->type));
  return v->s;
}

// N of "direction.N": plain decimal, no sign or leading zero, 1..max_n.
int64_t direction_index(const std::string& name, int64_t max_n, const std::string& file) {
  const std::string prefix = "direction.";
  const std::string digits = name.compare(0, prefix.size(), prefix) == 0 ? name.substr(prefix.size()) : "";
  const bool decimal = !digits.empty() && digits.size() <= 6 && digits[0] != '0' &&
                       std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!decimal) throw InputError(file, name, "not a control-vector tensor name (direction.N with N >= 1 in plain decimal)");
  const int64_t n = std::stoll(digits);
  if (n > max_n) throw InputError(file, name, "index " + std::to_string(n) + " exceeds the limit of " + std::to_string(max_n));
  return n;
}

void gguf_check_header_keys(const GgufFile& g, const std::string& file) {
  const GgufValue* arch = g.find("general.architecture");
  if (!arch) throw InputError(file, "general.architecture", "missing (a control vector has \"controlvector\")");
  if (arch->type != GgufType::STRING || arch->s != "controlvector")
    throw InputError(file, "general.architecture", "is " + (arch->type == GgufType::STRING ? "\"" + arch->s + "\"" : std::string(gguf_type_name(arch->type))) +
                                                       ", not \"controlvector\": not a control-vector file");
  // llama.cpp's generator writes INT32, other tools UINT32: any integer type will do.
  if (const GgufValue* count = g.find("controlvector.layer_count")) {
    const bool is_signed = count->type == GgufType::INT8 || count->type == GgufType::INT16 || count->type == GgufType::INT32 || count->type == GgufType::INT64;
    const bool equal = is_signed ? count->i == static_cast<int64_t>(g.tensors.size()) : count->u == g.tensors.size();
    if (!count->is_integer() || !equal)
      throw InputError(file, "controlvector.layer_count", "must be an integer equal to the number of direction tensors (" + std::to_string(g.tensors.size()) + ")");
  }
  const std::string applied = gguf_string(g, "thinksteer.hook_applied", file);
  if (!applied.empty() && applied != RESID_POST)
    throw InputError(file, "thinksteer.hook_applied", "is \"" + applied + "\"; llama.cpp control vectors are applied at " + RESID_POST);
}

// The map a file was written with: thinksteer.layer_map when present, else same_block (a foreign
// file: direction.N is the vector llama.cpp adds at resid_post[N]).
GgufLayerMap gguf_file_layer_map(const GgufFile& g, const std::string& file) {
  const GgufValue* v = g.find(GGUF_LAYER_MAP_KEY);
  if (!v) return GgufLayerMap::same_block;
  if (v->type != GgufType::STRING) throw InputError(file, GGUF_LAYER_MAP_KEY, std::string("must be STRING, found ") + gguf_type_name(v->type));
  try {
    return gguf_layer_map_from_name(v->s);
  } catch (const std::invalid_argument& e) {
    throw InputError(file, GGUF_LAYER_MAP_KEY, e.what());
  }
}

}  // namespace

std::string gguf_layer_map_name(GgufLayerMap map) {
  if (static_cast<size_t>(map) >= OPTION_NAMES<GgufLayerMap>.size())
    throw std::invalid_argument("gguf_layer_map_name: not a GgufLayerMap (" + std::to_string(static_cast<int>(map)) + ")");
  return std::string(option_name(map));
}

GgufLayerMap gguf_layer_map_from_name(std::string_view name) {
  if (const auto map = option_parse<GgufLayerMap>(name)) return *map;
  throw std::invalid_argument("\"" + std::string(name) + "\" is not a GGUF layer map (" + option_names_joined<GgufLayerMap>(", ", " or ") + ")");
}

std::vector<int64_t> vectors_write_gguf(const fs::path& path, const VectorSet& set, const std::string& name, double scale, GgufLayerMap map) {
  require_valid(set, path);
  auto bad = [&](const std::string& what) { throw std::invalid_argument(path.string() + ": " + what); };
  if (set.hook_applied != RESID_POST)
    bad("hook_applied is " + set.hook_applied + ", but llama.cpp adds control vectors to each layer's output, i.e. at " + RESID_POST +
        "; only vectors meant for that hook can be exported");
  if (set.architecture.empty()) bad("architecture is empty; controlvector.model_hint needs it (e.g. qwen2, llama)");
  const auto index = set.name_index(name);
  if (!index) bad("no vector named \"" + name + "\"");
  if (!std::isfinite(scale)) bad("scale must be finite");
  if (map != GgufLayerMap::next_block && map != GgufLayerMap::same_block) bad("map is not a GgufLayerMap");
  const VectorSet view = gguf_view(set, *index, scale, map);
  if (view.layers.empty())
    bad("nothing to export: with the same-block layer map layer 0 has no direction tensor (llama.cpp cannot steer block 0), "
        "and the set holds no other layer");
  if (auto p = value_problem(view)) bad("scaled by " + std::to_string(scale) + ", " + p->what);
  const std::string bytes = gguf_bytes(view, scale, map);
  write_verified(path, [&](const fs::path& tmp) { write_bytes(tmp, bytes); }, [&](const fs::path& tmp) { expect_same(vectors_read_gguf(tmp), view, tmp); });
  return view.layers;
}

VectorSet vectors_read_gguf(const fs::path& path) {
  const std::string file = path.string();
  const std::string data = read_regular_file(path, GGUF_MAX_FILE);
  const auto bytes = std::as_bytes(std::span<const char>(data.data(), data.size()));
  const GgufFile g = gguf_parse(bytes, file);
  gguf_check_header_keys(g, file);
  // direction.N holds our layer N - shift, which must lie in 0..VECTORS_MAX_LAYERS-1.
  const int64_t shift = direction_shift(gguf_file_layer_map(g, file));
  if (g.tensors.empty()) throw InputError(file, "<tensors>", "no direction tensors");
  std::map<int64_t, const GgufTensorInfo*> by_layer;
  for (const GgufTensorInfo& t : g.tensors) {
    const int64_t layer = direction_index(t.name, VECTORS_MAX_LAYERS - 1 + shift, file) - shift;
    if (t.type != GgmlType::F32) throw InputError(file, t.name, std::string("type ") + ggml_type_name(t.type) + ", control vectors are F32");
    if (t.dims.size() != 1) throw InputError(file, t.name, std::to_string(t.dims.size()) + " dimensions, control vectors are 1-D");
    if (t.dims[0] == 0 || t.dims[0] > static_cast<uint64_t>(VECTORS_MAX_D_MODEL))
      throw InputError(file, t.name, "length " + std::to_string(t.dims[0]) + " is outside 1.." + std::to_string(VECTORS_MAX_D_MODEL));
    if (t.dims[0] != g.tensors[0].dims[0])
      throw InputError(file, t.name, "length " + std::to_string(t.dims[0]) + " differs from " + g.tensors[0].name + "'s " + std::to_string(g.tensors[0].dims[0]));
    // Cannot happen while names are unique and N is spelled canonically; kept as the invariant.
    if (!by_layer.emplace(layer, &t).second) throw InputError(file, t.name, "layer " + std::to_string(layer) + " appears twice (llama.cpp would add them up)");
  }
  VectorSet s;
  s.hook_applied = RESID_POST;
  s.hook_measured = gguf_string(g, "thinksteer.hook_measured", file);
  s.architecture = gguf_string(g, "controlvector.model_hint", file);
  s.model = gguf_string(g, "thinksteer.model", file);
  s.provenance_json = gguf_string(g, "thinksteer.provenance", file);
  const std::string name = gguf_string(g, "thinksteer.vector_name", file);
  s.names = {name.empty() ? std::string(GGUF_DEFAULT_NAME) : name};
  s.d_model = static_cast<int64_t>(g.tensors[0].dims[0]);
  for (const auto& [layer, t] : by_layer) {
    s.layers.push_back(layer);
    const auto src = gguf_tensor_bytes(bytes, g, *t);
    const size_t before = s.values.size();
    s.values.resize(before + static_cast<size_t>(s.d_model));
    std::memcpy(s.values.data() + before, src.data(), src.size());
  }
  throw_if_invalid(s, file, gguf_field(s, shift));
  return s;
}

}  // namespace ts
