// Internals of the HDF5 store (h5store_detail.h).
#include "io/h5store_detail.h"

#include <algorithm>
#include <numeric>

namespace ts::h5::detail {

namespace {

// Contiguous, allocated at creation and never filled (every row is written once), or chunked along
// rows (about 2 MiB chunks) with gzip.
Hid make_dcpl(const DatasetSpec& spec, int compression, const Ctx& ctx) {
  Hid dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  const int64_t row_elems = std::accumulate(spec.shape.begin() + 1, spec.shape.end(), int64_t{1}, std::multiplies<>());
  if (compression > 0 && spec.shape[0] > 0 && row_elems > 0) {
    const int64_t row_bytes = row_elems * static_cast<int64_t>(dtype_size(spec.dtype));
    std::vector<hsize_t> chunk(spec.shape.begin(), spec.shape.end());
    chunk[0] = static_cast<hsize_t>(std::clamp<int64_t>((int64_t{2} << 20) / row_bytes, 1, spec.shape[0]));
    ctx.ok(H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data()), spec.path, "cannot set chunking");
    ctx.ok(H5Pset_deflate(dcpl.get(), static_cast<unsigned>(compression)), spec.path, "cannot set gzip");
  } else {
    ctx.ok(H5Pset_layout(dcpl.get(), H5D_CONTIGUOUS), spec.path, "cannot set layout");
  }
  ctx.ok(H5Pset_alloc_time(dcpl.get(), H5D_ALLOC_TIME_EARLY), spec.path, "cannot set allocation time");
  ctx.ok(H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER), spec.path, "cannot set fill time");
  return dcpl;
}

}  // namespace

std::string h5_error_text() {
  std::vector<std::string> msgs;
  auto walk = [](unsigned, const H5E_error2_t* e, void* out) -> herr_t {
    if (e->desc && *e->desc) static_cast<std::vector<std::string>*>(out)->push_back(e->desc);
    return 0;
  };
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk, &msgs);
  H5Eclear2(H5E_DEFAULT);
  if (msgs.empty()) return "HDF5 call failed";
  return msgs.size() > 1 && msgs.front() != msgs.back() ? msgs.back() + " (" + msgs.front() + ")" : msgs.front();
}

void quiet_hdf5() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

Ctx ctx_of(hid_t file, const std::filesystem::path& path) {
  unsigned intent = 0;
  H5Fget_intent(file, &intent);
  return Ctx{path.string(), (intent & H5F_ACC_RDWR) == 0};
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

Hid make_type(DType t) {
  switch (t) {
    case DType::F32: return {H5Tcopy(H5T_IEEE_F32LE), H5Tclose};
    case DType::F16: {  // IEEE half, as h5py builds it (read back as numpy float16)
      Hid h(H5Tcopy(H5T_IEEE_F32LE), H5Tclose);
      if (H5Tset_fields(h.get(), 15, 10, 5, 0, 10) < 0 || H5Tset_size(h.get(), 2) < 0 || H5Tset_ebias(h.get(), 15) < 0)
        throw std::runtime_error("cannot build the HDF5 float16 type: " + h5_error_text());
      return h;
    }
    case DType::BF16: return {H5Tcopy(H5T_STD_U16LE), H5Tclose};
    case DType::I32: return {H5Tcopy(H5T_STD_I32LE), H5Tclose};
    case DType::I64: return {H5Tcopy(H5T_STD_I64LE), H5Tclose};
    case DType::U8: return {H5Tcopy(H5T_STD_U8LE), H5Tclose};
    case DType::F64: return {H5Tcopy(H5T_IEEE_F64LE), H5Tclose};
  }
  throw std::logic_error("h5store: unknown dtype");
}

Hid make_utf8_vlen() {
  Hid t(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(t.get(), H5T_VARIABLE);
  H5Tset_cset(t.get(), H5T_CSET_UTF8);
  return t;
}

std::string type_str(hid_t t) {
  for (DType d : {DType::F32, DType::F16, DType::BF16, DType::I32, DType::I64, DType::U8, DType::F64})
    if (H5Tequal(t, make_type(d).get()) > 0) return dtype_name(d);
  const H5T_class_t c = H5Tget_class(t);
  if (c == H5T_STRING) return H5Tis_variable_str(t) > 0 ? "variable-length string" : "fixed-length string";
  const char* kind = c == H5T_INTEGER ? "integer" : c == H5T_FLOAT ? "float" : "non-numeric type";
  return std::string(kind) + " of " + std::to_string(H5Tget_size(t)) + " bytes";
}

std::vector<int64_t> extent(hid_t dset) {
  Hid space(H5Dget_space(dset), H5Sclose);
  const int rank = space.valid() ? H5Sget_simple_extent_ndims(space.get()) : -1;
  if (rank < 0) return {};
  std::vector<hsize_t> d(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space.get(), d.data(), nullptr);
  return {d.begin(), d.end()};
}

bool link_exists(hid_t file, const std::string& path, const Ctx& ctx) {
  if (path.empty() || path == "/") return true;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    const std::string prefix = path.substr(0, pos);
    if (prefix.empty() || prefix == "/") continue;
    const htri_t e = H5Lexists(file, prefix.c_str(), H5P_DEFAULT);
    if (e < 0) ctx.fail(path, "cannot look up " + prefix + ": " + h5_error_text());
    if (e == 0) return false;
  }
  return true;
}

Hid open_dataset(hid_t file, const std::string& path, const Ctx& ctx) {
  if (!link_exists(file, path, ctx)) ctx.fail(path, "dataset not found");
  return {ctx.id(H5Dopen2(file, path.c_str(), H5P_DEFAULT), path, "cannot open dataset"), H5Dclose};
}

void validate_spec(const DatasetSpec& spec, int compression, const Ctx& ctx) {
  auto bad = [&](const std::string& what) { throw std::invalid_argument(ctx.file + ": " + spec.path + ": " + what); };
  if (spec.path.size() < 2 || spec.path[0] != '/' || spec.path.back() == '/') bad("path must be absolute, e.g. /group/name");
  if (spec.shape.empty()) bad("shape is empty");
  for (int64_t d : spec.shape)
    if (d < 0) bad("negative extent in shape " + shape_str(spec.shape));
  if (!spec.dims.empty() && spec.dims.size() != spec.shape.size()) bad("dims must name every axis of shape " + shape_str(spec.shape));
  if (compression < 0 || compression > 9) bad("compression must be 0..9");
  if (compression > 0 && !parallel_compression_supported())
    throw std::runtime_error(ctx.file + ": " + spec.path + ": this HDF5 build (" H5_VERSION
                             ") cannot write compressed datasets in parallel; set output.compression = 0");
}

Hid create_dataset(hid_t file, const DatasetSpec& spec, int compression, const Ctx& ctx) {
  const std::vector<hsize_t> dims(spec.shape.begin(), spec.shape.end());
  Hid space(ctx.id(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), spec.path, "cannot make dataspace"), H5Sclose);
  Hid lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  Hid type = make_type(spec.dtype);
  Hid dcpl = make_dcpl(spec, compression, ctx);
  return {ctx.id(H5Dcreate2(file, spec.path.c_str(), type.get(), space.get(), lcpl.get(), dcpl.get(), H5P_DEFAULT), spec.path,
                 "cannot create dataset"),
          H5Dclose};
}

void check_matches(hid_t dset, const DatasetSpec& spec, const Ctx& ctx) {
  const std::vector<int64_t> found = extent(dset);
  Hid type(H5Dget_type(dset), H5Tclose);
  if (found != spec.shape) ctx.fail(spec.path, "shape mismatch: expected " + shape_str(spec.shape) + ", found " + shape_str(found));
  if (H5Tequal(type.get(), make_type(spec.dtype).get()) <= 0)
    ctx.fail(spec.path, std::string("type mismatch: expected ") + dtype_name(spec.dtype) + ", found " + type_str(type.get()));
}

Hid open_object(hid_t file, const std::string& object, const Ctx& ctx) {
  if (!link_exists(file, object, ctx)) ctx.fail(object, "object not found");
  return {ctx.id(H5Oopen(file, object.c_str(), H5P_DEFAULT), object, "cannot open object"), H5Oclose};
}

void write_attr(hid_t file, const Ctx& ctx, const std::string& object, const std::string& name, hid_t type, const void* value) {
  const std::string field = object + "@" + name;
  Hid obj = open_object(file, object, ctx);
  const htri_t e = H5Aexists(obj.get(), name.c_str());
  if (e > 0) ctx.ok(H5Adelete(obj.get(), name.c_str()), field, "cannot replace attribute");
  Hid space(H5Screate(H5S_SCALAR), H5Sclose);
  Hid attr(ctx.id(H5Acreate2(obj.get(), name.c_str(), type, space.get(), H5P_DEFAULT, H5P_DEFAULT), field, "cannot create attribute"),
           H5Aclose);
  ctx.ok(H5Awrite(attr.get(), type, value), field, "cannot write attribute");
}

Hid open_attr(hid_t file, const Ctx& ctx, const std::string& object, const std::string& name) {
  const std::string field = object + "@" + name;
  Hid obj = open_object(file, object, ctx);
  const htri_t e = H5Aexists(obj.get(), name.c_str());
  if (e <= 0) ctx.fail(field, e < 0 ? "cannot look up attribute: " + h5_error_text() : "attribute missing");
  Hid attr(ctx.id(H5Aopen(obj.get(), name.c_str(), H5P_DEFAULT), field, "cannot open attribute"), H5Aclose);
  Hid space(H5Aget_space(attr.get()), H5Sclose);
  if (H5Sget_simple_extent_npoints(space.get()) != 1) ctx.fail(field, "attribute is not a scalar");
  return attr;
}

herr_t reclaim(hid_t type, hid_t space, void* buf) {
#if H5_VERSION_GE(1, 12, 0)
  return H5Treclaim(type, space, H5P_DEFAULT, buf);
#else
  return H5Dvlen_reclaim(type, space, H5P_DEFAULT, buf);
#endif
}

std::string read_attr_string(hid_t file, const Ctx& ctx, const std::string& object, const std::string& name) {
  Hid a = open_attr(file, ctx, object, name);
  Hid type(H5Aget_type(a.get()), H5Tclose);
  Hid space(H5Aget_space(a.get()), H5Sclose);
  return read_string_values(type.get(), space.get(), 1, ctx, object + "@" + name,
                            [&](hid_t mt, void* buf) { return H5Aread(a.get(), mt, buf); })[0];
}

Hid open_serial(const std::filesystem::path& path, SerialFile::Mode mode) {
  quiet_hdf5();
  const Ctx ctx{path.string(), mode == SerialFile::Mode::READ_ONLY};
  Hid fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG);  // H5Fclose really closes, so a rename after it is safe
  H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V18, H5F_LIBVER_LATEST);
  hid_t f = H5I_INVALID_HID;
  if (mode == SerialFile::Mode::CREATE) f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get());
  else if (!std::filesystem::exists(path)) ctx.fail("file", "no such file");
  else f = H5Fopen(path.c_str(), mode == SerialFile::Mode::READ_ONLY ? H5F_ACC_RDONLY : H5F_ACC_RDWR, fapl.get());
  return {ctx.id(f, "file", mode == SerialFile::Mode::CREATE ? "cannot create HDF5 file" : "cannot open as HDF5"), H5Fclose};
}

}  // namespace ts::h5::detail
