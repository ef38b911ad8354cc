// The HDF5 store's phase 2 (h5store.h): SerialFile, rank 0's writer of strings, attributes and
// dimension scales, and the reader of every HDF5 file. HDF5 C API only.
#include "io/h5store.h"

#include <hdf5.h>
#include <hdf5_hl.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <numeric>

#include "io/h5store_detail.h"

namespace ts::h5 {

using namespace detail;

SerialFile::SerialFile(const std::filesystem::path& path, Mode mode) : path_(path), file_(open_serial(path, mode).release()) {}

SerialFile::~SerialFile() {
  if (file_ >= 0) H5Fclose(static_cast<hid_t>(file_));
}

void SerialFile::write_dataset(const DatasetSpec& spec, const void* data) {
  const Ctx ctx = ctx_of(file_, path_);
  validate_spec(spec, 0, ctx);
  Hid d = create_dataset(file_, spec, 0, ctx);
  Hid type(H5Dget_type(d.get()), H5Tclose);
  const bool empty = std::find(spec.shape.begin(), spec.shape.end(), int64_t{0}) != spec.shape.end();
  if (!empty) ctx.ok(H5Dwrite(d.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, data), spec.path, "cannot write dataset");
  d.reset();
  describe(spec);
}

void SerialFile::write_strings(const std::string& path, const std::vector<std::string>& values, const std::string& dim) {
  const Ctx ctx = ctx_of(file_, path_);
  const hsize_t n = values.size();
  Hid space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  Hid type = make_utf8_vlen();
  Hid lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  Hid d(ctx.id(H5Dcreate2(file_, path.c_str(), type.get(), space.get(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT), path, "cannot create dataset"),
        H5Dclose);
  // HDF5 strings are NUL-terminated: a NUL inside a value would cut it short, so it becomes U+FFFD.
  std::vector<std::string> safe;
  safe.reserve(values.size());  // no reallocation: the pointers below stay valid
  std::vector<const char*> ptrs;
  ptrs.reserve(values.size());
  for (const std::string& s : values) {
    if (s.find('\0') == std::string::npos) {
      ptrs.push_back(s.c_str());
      continue;
    }
    std::string& t = safe.emplace_back();
    for (char c : s) c == '\0' ? (void)t.append("\xEF\xBF\xBD") : t.push_back(c);
    ptrs.push_back(t.c_str());
  }
  if (n > 0) ctx.ok(H5Dwrite(d.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), path, "cannot write strings");
  d.reset();
  attach_dim(path, 0, dim);
}

void SerialFile::set_attr(const std::string& object, const std::string& name, const std::string& value) {
  Hid type = make_utf8_vlen();
  const char* p = value.c_str();
  write_attr(file_, ctx_of(file_, path_), object, name, type.get(), &p);
}
void SerialFile::set_attr(const std::string& object, const std::string& name, int64_t value) {
  write_attr(file_, ctx_of(file_, path_), object, name, H5T_STD_I64LE, &value);
}
void SerialFile::set_attr(const std::string& object, const std::string& name, double value) {
  write_attr(file_, ctx_of(file_, path_), object, name, H5T_IEEE_F64LE, &value);
}
void SerialFile::set_attr_ints(const std::string& object, const std::string& name, const std::vector<int64_t>& values) {
  const Ctx ctx = ctx_of(file_, path_);
  const std::string field = object + "@" + name;
  Hid obj = open_object(file_, object, ctx);
  if (H5Aexists(obj.get(), name.c_str()) > 0) ctx.ok(H5Adelete(obj.get(), name.c_str()), field, "cannot replace attribute");
  const hsize_t n = values.size();
  Hid space(ctx.id(H5Screate_simple(1, &n, nullptr), field, "cannot make the attribute's dataspace"), H5Sclose);
  Hid attr(ctx.id(H5Acreate2(obj.get(), name.c_str(), H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), field, "cannot create attribute"),
           H5Aclose);
  if (n > 0) ctx.ok(H5Awrite(attr.get(), H5T_NATIVE_INT64, values.data()), field, "cannot write attribute");
}

void SerialFile::attach_dim(const std::string& path, int axis, const std::string& dim) {
  const Ctx ctx = ctx_of(file_, path_);
  if (dim.empty() || dim.find('/') != std::string::npos || dim == "." || dim == "..") ctx.fail(path, "bad dimension name '" + dim + "'");
  Hid d = open_dataset(file_, path, ctx);
  const std::vector<int64_t> dims = extent(d.get());
  if (axis < 0 || axis >= static_cast<int>(dims.size())) ctx.fail(path, "no axis " + std::to_string(axis) + " to name " + dim);
  const int64_t n = dims[static_cast<size_t>(axis)];
  const size_t slash = path.rfind('/');
  const std::string scale_path = (slash == 0 ? std::string() : path.substr(0, slash)) + "/" + dim;
  Hid scale;
  if (link_exists(file_, scale_path, ctx)) {
    scale = open_dataset(file_, scale_path, ctx);
    const std::vector<int64_t> sd = extent(scale.get());
    if (H5DSis_scale(scale.get()) <= 0) ctx.fail(scale_path, "exists and is not a dimension scale");
    if (sd.size() != 1 || sd[0] != n)
      ctx.fail(scale_path, "dimension " + dim + " has shape " + shape_str(sd) + " but axis " + std::to_string(axis) + " of " + path + " has " +
                               std::to_string(n) + " entries");
  } else {
    const DatasetSpec s{scale_path, DType::I64, {n}, {}, {}};
    scale = create_dataset(file_, s, 0, ctx);
    std::vector<int64_t> idx(static_cast<size_t>(n));
    std::iota(idx.begin(), idx.end(), int64_t{0});
    if (n > 0) ctx.ok(H5Dwrite(scale.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, idx.data()), scale_path, "cannot write scale");
    // netCDF-4's mark for "a dimension without a coordinate variable" (netCDF-C: "%s%10d" after the
    // sentence, as NAME): h5netcdf/xarray then name the axis `dim` and do not load the scale itself.
    char name[128];
    std::snprintf(name, sizeof name, "This is a netCDF dimension but not a netCDF variable.%10lld", static_cast<long long>(n));
    ctx.ok(H5DSset_scale(scale.get(), name), scale_path, "cannot make a dimension scale");
  }
  const htri_t attached = H5DSis_attached(d.get(), scale.get(), static_cast<unsigned>(axis));
  if (attached < 0) ctx.fail(path, "cannot check dimension scale " + dim + ": " + h5_error_text());
  if (attached == 0) ctx.ok(H5DSattach_scale(d.get(), scale.get(), static_cast<unsigned>(axis)), path, "cannot attach dimension scale " + dim);
}

void SerialFile::describe(const DatasetSpec& spec) {
  for (const auto& [k, v] : spec.attrs) set_attr(spec.path, k, v);
  set_attr(spec.path, "dtype", std::string(dtype_name(spec.dtype)));
  if (spec.dtype == DType::BF16) set_attr(spec.path, "encoding", std::string("bfloat16"));
  if (!spec.dims.empty() && spec.dims.size() != spec.shape.size())
    ctx_of(file_, path_).fail(spec.path, "dims must name every axis of shape " + shape_str(spec.shape));
  for (size_t i = 0; i < spec.dims.size(); ++i)
    if (!spec.dims[i].empty()) attach_dim(spec.path, static_cast<int>(i), spec.dims[i]);
}

bool SerialFile::exists(const std::string& path) const { return link_exists(file_, path, ctx_of(file_, path_)); }

std::vector<std::string> SerialFile::members(const std::string& group) const {
  const Ctx ctx = ctx_of(file_, path_);
  if (!link_exists(file_, group, ctx)) ctx.fail(group, "group not found");
  std::vector<std::string> names;
  const auto collect = [](hid_t, const char* name, const H5L_info_t*, void* out) -> herr_t {
    static_cast<std::vector<std::string>*>(out)->emplace_back(name);
    return 0;
  };
  if (H5Literate_by_name(file_, group.c_str(), H5_INDEX_NAME, H5_ITER_INC, nullptr, collect, &names, H5P_DEFAULT) < 0)
    ctx.fail(group, "cannot list the group: " + h5_error_text());
  return names;
}

std::vector<int64_t> SerialFile::shape(const std::string& path) const { return extent(open_dataset(file_, path, ctx_of(file_, path_)).get()); }

std::string SerialFile::attr_string(const std::string& object, const std::string& name) const {
  return read_attr_string(file_, ctx_of(file_, path_), object, name);
}

int64_t SerialFile::attr_int(const std::string& object, const std::string& name) const {
  const Ctx ctx = ctx_of(file_, path_);
  Hid a = open_attr(file_, ctx, object, name);
  Hid type(H5Aget_type(a.get()), H5Tclose);
  if (H5Tget_class(type.get()) != H5T_INTEGER) ctx.fail(object + "@" + name, "not an integer (found " + type_str(type.get()) + ")");
  int64_t v = 0;
  ctx.ok(H5Aread(a.get(), H5T_NATIVE_INT64, &v), object + "@" + name, "cannot read attribute");
  return v;
}

std::vector<int64_t> SerialFile::attr_ints(const std::string& object, const std::string& name) const {
  const Ctx ctx = ctx_of(file_, path_);
  const std::string field = object + "@" + name;
  Hid obj = open_object(file_, object, ctx);
  const htri_t e = H5Aexists(obj.get(), name.c_str());
  if (e <= 0) ctx.fail(field, e < 0 ? "cannot look up attribute: " + h5_error_text() : "attribute missing");
  Hid a(ctx.id(H5Aopen(obj.get(), name.c_str(), H5P_DEFAULT), field, "cannot open attribute"), H5Aclose);
  Hid type(H5Aget_type(a.get()), H5Tclose);
  if (H5Tget_class(type.get()) != H5T_INTEGER) ctx.fail(field, "not integers (found " + type_str(type.get()) + ")");
  Hid space(H5Aget_space(a.get()), H5Sclose);
  if (H5Sget_simple_extent_ndims(space.get()) > 1) ctx.fail(field, "not a list of integers (more than one dimension)");
  std::vector<int64_t> v(static_cast<size_t>(std::max<hssize_t>(H5Sget_simple_extent_npoints(space.get()), 0)));
  if (!v.empty()) ctx.ok(H5Aread(a.get(), H5T_NATIVE_INT64, v.data()), field, "cannot read attribute");
  return v;
}

namespace {

// Whether dataset `d` holds floats (read as float by HDF5) or bfloat16 bits (uint16 with encoding=bfloat16); anything
// else fails naming the dataset.
bool bf16_bits(const SerialFile& f, hid_t d, hid_t type, const std::string& path, const Ctx& ctx) {
  if (H5Tget_class(type) == H5T_FLOAT) return false;
  const bool u16 = H5Tget_class(type) == H5T_INTEGER && H5Tget_size(type) == 2 && H5Tget_sign(type) == H5T_SGN_NONE;
  if (!u16 || H5Aexists(d, "encoding") <= 0 || f.attr_string(path, "encoding") != "bfloat16")
    ctx.fail(path, "cannot read " + type_str(type) + " as float (expected float32, float16, or uint16 with encoding=bfloat16)");
  return true;
}

// Reads the selection (H5S_ALL or a hyperslab) as float: directly, or bfloat16 bits widened exactly.
void read_as_float(hid_t d, bool bf16, hid_t mspace, hid_t fspace, std::vector<float>& out, const std::string& path, const Ctx& ctx) {
  if (out.empty()) return;
  if (!bf16) {
    ctx.ok(H5Dread(d, H5T_NATIVE_FLOAT, mspace, fspace, H5P_DEFAULT, out.data()), path, "cannot read");
    return;
  }
  std::vector<uint16_t> bits(out.size());
  ctx.ok(H5Dread(d, H5T_NATIVE_UINT16, mspace, fspace, H5P_DEFAULT, bits.data()), path, "cannot read");
  for (size_t i = 0; i < bits.size(); ++i) {
    const uint32_t w = static_cast<uint32_t>(bits[i]) << 16;
    std::memcpy(&out[i], &w, sizeof w);
  }
}

}  // namespace

std::vector<float> SerialFile::read_f32(const std::string& path) const {
  const Ctx ctx = ctx_of(file_, path_);
  Hid d = open_dataset(file_, path, ctx);
  Hid type(H5Dget_type(d.get()), H5Tclose);
  const std::vector<int64_t> dims = extent(d.get());
  const size_t n = static_cast<size_t>(std::accumulate(dims.begin(), dims.end(), int64_t{1}, std::multiplies<>()));
  std::vector<float> out(n);
  read_as_float(d.get(), bf16_bits(*this, d.get(), type.get(), path, ctx), H5S_ALL, H5S_ALL, out, path, ctx);
  return out;
}

std::vector<float> SerialFile::read_f32_rows(const std::string& path, int64_t begin, int64_t count) const {
  const Ctx ctx = ctx_of(file_, path_);
  Hid d = open_dataset(file_, path, ctx);
  Hid type(H5Dget_type(d.get()), H5Tclose);
  const bool bf16 = bf16_bits(*this, d.get(), type.get(), path, ctx);
  const std::vector<int64_t> dims = extent(d.get());
  if (dims.empty() || begin < 0 || count < 0 || begin + count > dims[0])
    ctx.fail(path, "rows [" + std::to_string(begin) + ", " + std::to_string(begin + count) + ") are outside the dataset's " + shape_str(dims));
  std::vector<hsize_t> start(dims.size(), 0), extent_of(dims.begin(), dims.end());
  start[0] = static_cast<hsize_t>(begin);
  extent_of[0] = static_cast<hsize_t>(count);
  const size_t n = static_cast<size_t>(std::accumulate(extent_of.begin(), extent_of.end(), hsize_t{1}, std::multiplies<>()));
  std::vector<float> out(n);
  if (n == 0) return out;
  Hid fspace(H5Dget_space(d.get()), H5Sclose);
  ctx.ok(H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start.data(), nullptr, extent_of.data(), nullptr), path, "cannot select rows");
  Hid mspace(H5Screate_simple(static_cast<int>(extent_of.size()), extent_of.data(), nullptr), H5Sclose);
  read_as_float(d.get(), bf16, mspace.get(), fspace.get(), out, path, ctx);
  return out;
}

namespace {

// A whole numeric dataset of type class `cls`, converted by HDF5 to `native` (element type T).
template <class T>
std::vector<T> read_numeric(long long file, const std::filesystem::path& path_of_file, const std::string& path, H5T_class_t cls, hid_t native,
                            const char* what) {
  const Ctx ctx = ctx_of(file, path_of_file);
  Hid d = open_dataset(file, path, ctx);
  Hid type(H5Dget_type(d.get()), H5Tclose);
  if (H5Tget_class(type.get()) != cls) ctx.fail(path, std::string("not ") + what + " dataset (found " + type_str(type.get()) + ")");
  const std::vector<int64_t> dims = extent(d.get());
  std::vector<T> out(static_cast<size_t>(std::accumulate(dims.begin(), dims.end(), int64_t{1}, std::multiplies<>())));
  if (!out.empty()) ctx.ok(H5Dread(d.get(), native, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()), path, "cannot read");
  return out;
}

}  // namespace

std::vector<int64_t> SerialFile::read_i64(const std::string& path) const {
  return read_numeric<int64_t>(file_, path_, path, H5T_INTEGER, H5T_NATIVE_INT64, "an integer");
}

std::vector<double> SerialFile::read_f64(const std::string& path) const {
  return read_numeric<double>(file_, path_, path, H5T_FLOAT, H5T_NATIVE_DOUBLE, "a floating-point");
}

std::vector<std::string> SerialFile::read_strings(const std::string& path) const {
  const Ctx ctx = ctx_of(file_, path_);
  Hid d = open_dataset(file_, path, ctx);
  Hid type(H5Dget_type(d.get()), H5Tclose);
  Hid space(H5Dget_space(d.get()), H5Sclose);
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  if (n < 0) ctx.fail(path, "cannot get dataspace: " + h5_error_text());
  return read_string_values(type.get(), space.get(), static_cast<size_t>(n), ctx, path,
                            [&](hid_t mt, void* buf) { return H5Dread(d.get(), mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf); });
}

}  // namespace ts::h5
