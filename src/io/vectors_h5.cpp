// Steering vectors in HDF5 (vectors.h: layout "thinksteer.vectors", format_version 1), for analysis
// with h5py and xarray. Serial HDF5 through io/h5store.
#include "io/vectors.h"

#include <stdexcept>

#include "core/error.h"
#include "io/h5store.h"
#include "io/vectors_detail.h"
#include "model/safetensors.h"

namespace ts {

namespace fs = std::filesystem;
using namespace vectors_detail;

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
  write_verified(path, [&](const fs::path& tmp) { h5_write(tmp, set); }, [&](const fs::path& tmp) { expect_same(vectors_read_h5(tmp), set, tmp); });
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

}  // namespace ts
