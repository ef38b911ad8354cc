// Steering-vector files (see vectors.h for the three layouts).
//
// One validator (find_problem) serves every format: it reports the first problem as a logical field
// plus a message, and each format names that field the way its files do (an HDF5 dataset or
// attribute, a safetensors tensor or metadata key, a GGUF tensor or key), so an error points at
// the exact place in the file. Writers go through commit_file: temporary name, read back and
// compare, fsync, rename, fsync the directory.
#include "io/vectors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <stdexcept>

#include "core/error.h"
#include "core/json.h"
#include "io/gguf.h"
#include "io/h5store.h"
#include "model/safetensors.h"
#include "tokenizer/utf8.h"

namespace ts {

// Values and counts are copied to and from files as raw little-endian bytes.
static_assert(std::endian::native == std::endian::little, "io/vectors assumes a little-endian host");

namespace fs = std::filesystem;

namespace {

constexpr const char* RESID_POST = "blocks.{l}.hook_resid_post";
constexpr const char* GGUF_DEFAULT_NAME = "direction";

// ---------------------------------------------------------------------------------------------
// Validation

enum class Field { hook_measured, hook_applied, layers, d_model, names, values, counts, architecture, model, provenance };

struct Problem {
  Field field;
  size_t name = SIZE_MAX;   // index into names, when the problem is one name's
  size_t layer = SIZE_MAX;  // index into layers, when it is one layer's
  std::string what;
};

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

// d_model, layers and names: what a reader checks before allocating anything.
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

// Values finite; a count of 0 (a missing vector) only with all-zero values.
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

// How each format names a field.
using FieldNamer = std::function<std::string(const Problem&)>;

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

// A set handed to a writer: its problems are the caller's bug.
void require_valid(const VectorSet& s, const fs::path& path) {
  if (auto p = find_problem(s)) throw std::invalid_argument(path.string() + ": " + generic_field(*p) + ": " + p->what);
}

// ---------------------------------------------------------------------------------------------
// Atomic commit

void fsync_path(const fs::path& p, bool directory) {
  const int fd = ::open(p.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(p.string() + ": cannot open for fsync: " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) throw std::runtime_error(p.string() + ": fsync failed: " + std::strerror(err));
}

// Writes `path` under a temporary name, verifies it by reading it back, then fsyncs and renames it
// (DECISIONS.md "Outputs and runs"). The temporary file is removed on any failure. Errors from our
// own write or read-back are std::runtime_error: the file is ours, not the user's.
void commit_file(const fs::path& path, const std::function<void(const fs::path&)>& write, const std::function<void(const fs::path&)>& verify) {
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  fs::create_directories(dir);
  const fs::path tmp = path.string() + ".tmp." + std::to_string(::getpid());
  try {
    try {
      write(tmp);
      verify(tmp);
    } catch (const InputError& e) {
      throw std::runtime_error(path.string() + ": writing or verifying the new file failed: " + e.what());
    }
    fsync_path(tmp, false);
    fs::rename(tmp, path);
    fsync_path(dir, true);
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
}

void expect_same(const VectorSet& read, const VectorSet& written, const fs::path& tmp) {
  if (!(read == written)) throw std::runtime_error(tmp.string() + ": reading back the file just written gave a different vector set");
}

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

template <typename T>
std::span<const std::byte> bytes_of(const T* data, size_t n) {
  return std::as_bytes(std::span<const T>(data, n));
}

}  // namespace

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

// ---------------------------------------------------------------------------------------------
// HDF5

namespace {

std::string h5_field(const Problem& p) {
  switch (p.field) {
    case Field::hook_measured: return "/@hook_measured";
    case Field::hook_applied: return "/@hook_applied";
    case Field::layers: return "/layers";
    case Field::d_model: case Field::values: return "/vectors";
    case Field::names: return "/names";
    case Field::counts: return "/counts";
    case Field::architecture: return "/@architecture";
    case Field::model: return "/@model";
    case Field::provenance: return "/@provenance";
  }
  return "?";
}

void h5_write(const fs::path& tmp, const VectorSet& s) {
  h5::SerialFile f(tmp, h5::SerialFile::Mode::CREATE);
  const int64_t n = static_cast<int64_t>(s.n_names()), l = static_cast<int64_t>(s.n_layers());
  f.write_dataset({"/vectors", h5::DType::F32, {n, l, s.d_model}, {"name", "layer", "d_model"},
                   {{"description", "steering vector per name and layer, measured at hook_measured, to be added at hook_applied"}, {"units", "1"}}},
                  s.values.data());
  f.write_strings("/names", s.names, "name");
  f.write_dataset({"/layers", h5::DType::I64, {l}, {"layer"}, {{"description", "0-based decoder layer of each layer index"}}}, s.layers.data());
  if (!s.counts.empty())
    f.write_dataset({"/counts", h5::DType::I64, {n, l}, {"name", "layer"},
                     {{"description", "examples (or spans) averaged into each vector; 0 marks a missing (all-zero) vector"}}},
                    s.counts.data());
  f.set_attr("/", "format", std::string(VECTORS_FORMAT));
  f.set_attr("/", "format_version", VECTORS_FORMAT_VERSION);
  f.set_attr("/", "hook_measured", s.hook_measured);
  f.set_attr("/", "hook_applied", s.hook_applied);
  f.set_attr("/", "architecture", s.architecture);
  f.set_attr("/", "model", s.model);
  f.set_attr("/", "provenance", s.provenance_json);
}

// The extents of `path`, which must have `rank` axes within `limits`.
std::vector<int64_t> h5_extent(const h5::SerialFile& f, const std::string& file, const std::string& path, const std::vector<int64_t>& limits) {
  const std::vector<int64_t> shape = f.shape(path);
  if (shape.size() != limits.size())
    throw InputError(file, path, "has " + std::to_string(shape.size()) + " axes, expected " + std::to_string(limits.size()));
  for (size_t k = 0; k < shape.size(); ++k)
    if (shape[k] > limits[k]) throw InputError(file, path, "shape " + shape_to_string(shape) + " exceeds the limit of " + std::to_string(limits[k]) + " on axis " + std::to_string(k));
  return shape;
}

void h5_expect_shape(const h5::SerialFile& f, const std::string& file, const std::string& path, const std::vector<int64_t>& expected) {
  const std::vector<int64_t> shape = f.shape(path);
  if (shape != expected) throw InputError(file, path, "shape " + shape_to_string(shape) + " does not match /vectors (expected " + shape_to_string(expected) + ")");
}

}  // namespace

void vectors_write_h5(const fs::path& path, const VectorSet& set) {
  require_valid(set, path);
  commit_file(path, [&](const fs::path& tmp) { h5_write(tmp, set); }, [&](const fs::path& tmp) { expect_same(vectors_read_h5(tmp), set, tmp); });
}

VectorSet vectors_read_h5(const fs::path& path) {
  const std::string file = path.string();
  h5::SerialFile f(path, h5::SerialFile::Mode::READ_ONLY);
  const std::string format = f.attr_string("/", "format");
  if (format != VECTORS_FORMAT) throw InputError(file, "/@format", "is \"" + format + "\", expected \"" + VECTORS_FORMAT + "\"");
  const int64_t version = f.attr_int("/", "format_version");
  if (version != VECTORS_FORMAT_VERSION)
    throw InputError(file, "/@format_version", std::to_string(version) + " is not supported (this build reads version " + std::to_string(VECTORS_FORMAT_VERSION) + ")");
  VectorSet s;
  s.hook_measured = f.attr_string("/", "hook_measured");
  s.hook_applied = f.attr_string("/", "hook_applied");
  s.architecture = f.attr_string("/", "architecture");
  s.model = f.attr_string("/", "model");
  s.provenance_json = f.attr_string("/", "provenance");
  // Shapes first, so that nothing is allocated for a file that declares absurd extents.
  const std::vector<int64_t> shape = h5_extent(f, file, "/vectors", {VECTORS_MAX_NAMES, VECTORS_MAX_LAYERS, VECTORS_MAX_D_MODEL});
  if (shape[0] * shape[1] * shape[2] > VECTORS_MAX_VALUES) throw InputError(file, "/vectors", "more than " + std::to_string(VECTORS_MAX_VALUES) + " values");
  h5_expect_shape(f, file, "/names", {shape[0]});
  h5_expect_shape(f, file, "/layers", {shape[1]});
  const bool has_counts = f.exists("/counts");
  if (has_counts) h5_expect_shape(f, file, "/counts", {shape[0], shape[1]});
  s.d_model = shape[2];
  s.names = f.read_strings("/names");
  s.layers = f.read_i64("/layers");
  s.values = f.read_f32("/vectors");
  if (has_counts) s.counts = f.read_i64("/counts");
  throw_if_invalid(s, file, h5_field);
  return s;
}

// ---------------------------------------------------------------------------------------------
// safetensors

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
  commit_file(path, [&](const fs::path& tmp) { st_write(tmp, set); }, [&](const fs::path& tmp) { expect_same(vectors_read_safetensors(tmp), set, tmp); });
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

// ---------------------------------------------------------------------------------------------
// GGUF (llama.cpp control vectors)

namespace {

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
  switch (map) {
    case GgufLayerMap::next_block: return "next-block";
    case GgufLayerMap::same_block: return "same-block";
  }
  throw std::invalid_argument("gguf_layer_map_name: not a GgufLayerMap (" + std::to_string(static_cast<int>(map)) + ")");
}

GgufLayerMap gguf_layer_map_from_name(std::string_view name) {
  for (GgufLayerMap m : {GgufLayerMap::next_block, GgufLayerMap::same_block})
    if (name == gguf_layer_map_name(m)) return m;
  throw std::invalid_argument("\"" + std::string(name) + "\" is not a GGUF layer map (next-block or same-block)");
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
  commit_file(path, [&](const fs::path& tmp) { write_bytes(tmp, bytes); }, [&](const fs::path& tmp) { expect_same(vectors_read_gguf(tmp), view, tmp); });
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
