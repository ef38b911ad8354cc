// The parallel HDF5 store (see h5store.h for the three phases). HDF5 C API only.
//
//   ParallelFile  phase 1, all ranks: MPI-IO file access (collective metadata, ROMIO data sieving off),
//                 contiguous early-allocated datasets, collective hyperslab writes of row ranges.
//   SerialFile    phase 2 (rank 0): strings, attributes, dimension scales; also every reader.
//   commit_h5     phase 3 (rank 0): verify, fsync, rename, fsync the directory, done marker.
//
// Every hid_t lives in a Hid (RAII), HDF5's own error printing is off, and every failure becomes an
// exception "<file>: <dataset or attribute>: <what>" carrying the innermost HDF5 error description:
// ts::InputError for a file opened READ_ONLY (a file a user may have given us), std::runtime_error
// for files we write.
#include "io/h5store.h"

#include <fcntl.h>
#include <hdf5.h>
#include <hdf5_hl.h>
#include <unistd.h>

#include <algorithm>
#include <exception>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <utility>

#include "core/atomic_file.h"
#include "core/error.h"

namespace ts::h5 {
namespace {

class Hid {
 public:
  using Closer = herr_t (*)(hid_t);
  Hid() = default;
  Hid(hid_t id, Closer close) : id_(id), close_(close) {}
  Hid(Hid&& o) noexcept : id_(std::exchange(o.id_, H5I_INVALID_HID)), close_(o.close_) {}
  Hid& operator=(Hid&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, H5I_INVALID_HID);
      close_ = o.close_;
    }
    return *this;
  }
  ~Hid() { reset(); }
  void reset() {
    if (id_ >= 0 && close_) close_(id_);
    id_ = H5I_INVALID_HID;
  }
  hid_t release() { return std::exchange(id_, H5I_INVALID_HID); }
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer close_ = nullptr;
};

// "<what the API call failed to do> (<innermost cause>)" from the HDF5 error stack, which it clears.
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

// Where an error happened: the file and whether it came from a user (InputError) or from us.
struct Ctx {
  std::string file;
  bool input = false;
  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    if (input) throw InputError(file, field, what);
    throw std::runtime_error(file + ": " + field + ": " + what);
  }
  hid_t id(hid_t id, const std::string& field, const std::string& what) const {
    if (id < 0) fail(field, what + ": " + h5_error_text());
    return id;
  }
  void ok(herr_t rc, const std::string& field, const std::string& what) const {
    if (rc < 0) fail(field, what + ": " + h5_error_text());
  }
};

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

// Every prefix of `path` is a link (so no HDF5 error for a missing parent group).
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

// A bad spec is a programming error; it is found before any collective call, on every rank alike.
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

// An existing dataset must have the spec's shape and type.
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

// Strings of a string-typed attribute or dataset (variable or fixed length). `read` is H5Aread/H5Dread.
template <typename Read>
std::vector<std::string> read_string_values(hid_t ftype, hid_t space, size_t n, const Ctx& ctx, const std::string& field, Read read) {
  if (H5Tget_class(ftype) != H5T_STRING) ctx.fail(field, "not a string (found " + type_str(ftype) + ")");
  std::vector<std::string> out;
  out.reserve(n);
  if (n == 0) return out;
  Hid mtype(H5Tcopy(ftype), H5Tclose);
  if (H5Tis_variable_str(ftype) > 0) {
    std::vector<char*> ptrs(n, nullptr);
    ctx.ok(read(mtype.get(), ptrs.data()), field, "cannot read strings");
    for (char* p : ptrs) out.emplace_back(p ? p : "");
    reclaim(mtype.get(), space, ptrs.data());
  } else {
    const size_t len = H5Tget_size(ftype);
    std::vector<char> buf(n * len);
    ctx.ok(read(mtype.get(), buf.data()), field, "cannot read strings");
    for (size_t i = 0; i < n; ++i) {
      const char* s = buf.data() + i * len;
      out.emplace_back(s, strnlen(s, len));
    }
  }
  return out;
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

}  // namespace

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: case DType::I32: return 4;
    case DType::F16: case DType::BF16: return 2;
    case DType::I64: case DType::F64: return 8;
    case DType::U8: return 1;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "float32";
    case DType::F16: return "float16";
    case DType::BF16: return "bfloat16";
    case DType::I32: return "int32";
    case DType::I64: return "int64";
    case DType::U8: return "uint8";
    case DType::F64: return "float64";
  }
  return "?";
}

bool parallel_compression_supported() {
#ifdef H5_HAVE_PARALLEL_FILTERED_WRITES
  return true;
#else
  return false;
#endif
}

// ---------------------------------------------------------------------------------------------
// Phase 1: ParallelFile

struct ParallelFile::Impl {
  struct Dset {
    Hid id, type;
    std::vector<int64_t> dims;
  };
  std::filesystem::path path;
  MPI_Comm comm = MPI_COMM_NULL;  // our duplicate of the caller's communicator
  Hid file, dxpl;
  std::map<std::string, Dset> dsets;  // opened datasets, kept open until close()
  Ctx ctx() const { return {path.string(), false}; }
  Dset& cache(const std::string& p, Hid id) {
    Dset d;
    d.type = Hid(H5Dget_type(id.get()), H5Tclose);
    d.dims = extent(id.get());
    d.id = std::move(id);
    return dsets[p] = std::move(d);
  }
};

// COLLECTIVE over comm.
ParallelFile::ParallelFile(const std::filesystem::path& path, MPI_Comm comm, bool open_existing) {
  quiet_hdf5();
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  const Ctx ctx = impl->ctx();
  if (MPI_Comm_dup(comm, &impl->comm) != MPI_SUCCESS) ctx.fail("file", "MPI_Comm_dup failed");
  struct FreeComm {  // until construction succeeds
    MPI_Comm* c;
    ~FreeComm() {
      if (c) MPI_Comm_free(c);
    }
  } free_comm{&impl->comm};
  Hid fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  MPI_Info info;
  MPI_Info_create(&info);
  MPI_Info_set(info, "romio_ds_write", "disable");  // no read-modify-write data sieving on the rows we write
  MPI_Info_set(info, "romio_ds_read", "disable");
  const herr_t mpio = H5Pset_fapl_mpio(fapl.get(), comm, info);  // duplicates comm and info
  MPI_Info_free(&info);
  ctx.ok(mpio, "file", "cannot set the MPI-IO driver");
  ctx.ok(H5Pset_all_coll_metadata_ops(fapl.get(), 1), "file", "cannot set collective metadata reads");
  ctx.ok(H5Pset_coll_metadata_write(fapl.get(), 1), "file", "cannot set collective metadata writes");
  // Parallel file systems often lack flock(). H5Pset_file_locking exists from 1.10.7 and 1.12.1; with
  // older libraries set HDF5_USE_FILE_LOCKING=FALSE in the environment instead.
#if (H5_VERS_MAJOR == 1 && H5_VERS_MINOR == 10 && H5_VERS_RELEASE >= 7) || H5_VERSION_GE(1, 12, 1)
  ctx.ok(H5Pset_file_locking(fapl.get(), 0, 1), "file", "cannot disable file locking");
#endif
  ctx.ok(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V18, H5F_LIBVER_LATEST), "file", "cannot set format bounds");
  const hid_t f = open_existing ? H5Fopen(path.c_str(), H5F_ACC_RDWR, fapl.get())
                                : H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get());
  impl->file = Hid(ctx.id(f, "file", open_existing ? "cannot reopen for writing" : "cannot create"), H5Fclose);
  impl->dxpl = Hid(H5Pcreate(H5P_DATASET_XFER), H5Pclose);
  ctx.ok(H5Pset_dxpl_mpio(impl->dxpl.get(), H5FD_MPIO_COLLECTIVE), "file", "cannot set collective transfers");
  free_comm.c = nullptr;
  impl_ = impl.release();
}

// COLLECTIVE (closes the file).
ParallelFile::~ParallelFile() {
  // While an exception unwinds, the job is about to abort (mpi::abort_world) and the other ranks may
  // never reach the collective close: leave the handles open rather than hang.
  if (std::uncaught_exceptions() > 0) return;
  try {
    close();
  } catch (...) {
  }
  delete impl_;
}

// COLLECTIVE, identical arguments. An existing dataset (reopened file) is checked, not recreated.
void ParallelFile::create(const DatasetSpec& spec, int compression) {
  const Ctx ctx = impl_->ctx();
  validate_spec(spec, compression, ctx);
  if (!impl_->file.valid()) ctx.fail(spec.path, "file is closed");
  if (auto it = impl_->dsets.find(spec.path); it != impl_->dsets.end()) return check_matches(it->second.id.get(), spec, ctx);
  if (link_exists(impl_->file.get(), spec.path, ctx)) {
    Hid d = open_dataset(impl_->file.get(), spec.path, ctx);
    check_matches(d.get(), spec, ctx);
    impl_->cache(spec.path, std::move(d));
  } else {
    impl_->cache(spec.path, create_dataset(impl_->file.get(), spec, compression, ctx));
  }
}

// COLLECTIVE. The ranges are checked on every rank and the verdict shared (one MPI_Allreduce), so bad
// ranges (a programming error) throw on all ranks instead of leaving the others waiting in H5Dwrite.
void ParallelFile::write_rows(const std::string& path, const std::vector<RowRange>& ranges, const void* data) {
  const Ctx ctx = impl_->ctx();
  if (!impl_->file.valid()) ctx.fail(path, "file is closed");
  auto it = impl_->dsets.find(path);
  Impl::Dset& d = it != impl_->dsets.end() ? it->second : impl_->cache(path, open_dataset(impl_->file.get(), path, ctx));
  const int64_t rows = d.dims.at(0);
  const size_t row_elems = static_cast<size_t>(std::accumulate(d.dims.begin() + 1, d.dims.end(), int64_t{1}, std::multiplies<>()));
  const size_t row_bytes = row_elems * H5Tget_size(d.type.get());

  // Sort by first row (a hyperslab union is written in file order), reject overlaps, merge neighbours.
  std::vector<size_t> order(ranges.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ranges[a].begin < ranges[b].begin; });
  std::string error;
  std::vector<RowRange> merged;
  for (size_t i : order) {
    const RowRange& r = ranges[i];
    if (r.begin < 0 || r.count < 0 || r.begin > rows || r.count > rows - r.begin)
      error = "row range [" + std::to_string(r.begin) + ", +" + std::to_string(r.count) + ") outside " + std::to_string(rows) + " rows";
    else if (r.count == 0) continue;
    else if (!merged.empty() && r.begin < merged.back().begin + merged.back().count)
      error = "row ranges overlap at row " + std::to_string(r.begin);
    else if (!merged.empty() && r.begin == merged.back().begin + merged.back().count) merged.back().count += r.count;
    else merged.push_back(r);
    if (!error.empty()) break;
  }
  int bad = error.empty() ? 0 : 1, any_bad = 0;
  MPI_Allreduce(&bad, &any_bad, 1, MPI_INT, MPI_MAX, impl_->comm);
  if (any_bad) ctx.fail(path, bad ? error : "another rank passed invalid row ranges");

  // Ranges given out of order: stage the rows in file order.
  std::vector<unsigned char> staged;
  if (!std::is_sorted(order.begin(), order.end())) {
    std::vector<size_t> offset(ranges.size());
    for (size_t i = 0, at = 0; i < ranges.size(); at += static_cast<size_t>(ranges[i].count) * row_bytes, ++i) offset[i] = at;
    for (size_t i : order) {
      const size_t n = static_cast<size_t>(ranges[i].count) * row_bytes;
      staged.insert(staged.end(), static_cast<const unsigned char*>(data) + offset[i], static_cast<const unsigned char*>(data) + offset[i] + n);
    }
    data = staged.data();
  }

  // A zero-sized contiguous dataset has no file address (HDF5 1.10 fails with "addr overflow" even on
  // empty selections); the extent is the same everywhere, so every rank skips the write alike.
  if (rows == 0 || row_elems == 0) return;
  // The file selection: the union of the ranges, full extent in the other dims. Chaining
  // H5S_SELECT_OR is super-linear in HDF5 1.10 (10k ranges: 2 s, 40k: 100 s), so each range gets its
  // own selection and the union is taken pairwise with H5Scombine_select (log2(n) rounds).
  Hid fspace(ctx.id(H5Dget_space(d.id.get()), path, "cannot get dataspace"), H5Sclose);
  std::vector<hsize_t> start(d.dims.size(), 0), count(d.dims.begin(), d.dims.end());
  hsize_t total = 0;
  std::vector<Hid> parts;
  for (const RowRange& r : merged) {
    start[0] = static_cast<hsize_t>(r.begin);
    count[0] = static_cast<hsize_t>(r.count);
    total += count[0] * row_elems;
    parts.emplace_back(ctx.id(H5Scopy(fspace.get()), path, "cannot copy dataspace"), H5Sclose);
    ctx.ok(H5Sselect_hyperslab(parts.back().get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr), path, "cannot select rows");
  }
  while (parts.size() > 1) {
    std::vector<Hid> next;
    for (size_t i = 0; i + 1 < parts.size(); i += 2)
      next.emplace_back(ctx.id(H5Scombine_select(parts[i].get(), H5S_SELECT_OR, parts[i + 1].get()), path, "cannot combine row selections"),
                        H5Sclose);
    if (parts.size() % 2 == 1) next.push_back(std::move(parts.back()));
    parts.swap(next);
  }
  if (!parts.empty()) fspace = std::move(parts[0]);
  const hsize_t mdim = std::max<hsize_t>(total, 1);
  Hid mspace(H5Screate_simple(1, &mdim, nullptr), H5Sclose);
  static const unsigned char dummy = 0;
  if (total == 0) {  // nothing here, but H5Dwrite is collective: take part with empty selections
    H5Sselect_none(fspace.get());
    H5Sselect_none(mspace.get());
    data = &dummy;
  }
  ctx.ok(H5Dwrite(d.id.get(), d.type.get(), mspace.get(), fspace.get(), impl_->dxpl.get(), data), path, "collective write failed");
}

// COLLECTIVE. Idempotent. Ends with a barrier: once close() returns on any rank, every rank's rows
// are in the file (phase 2 may start on rank 0 right away).
void ParallelFile::close() {
  if (!impl_->file.valid()) return;
  impl_->dsets.clear();
  impl_->dxpl.reset();
  const herr_t rc = H5Fclose(impl_->file.release());
  const std::string err = rc < 0 ? h5_error_text() : "";
  MPI_Barrier(impl_->comm);
  MPI_Comm_free(&impl_->comm);
  if (rc < 0) impl_->ctx().fail("file", "close failed: " + err);
}

// ---------------------------------------------------------------------------------------------
// Phase 2: SerialFile (rank 0)

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

std::vector<float> SerialFile::read_f32(const std::string& path) const {
  const Ctx ctx = ctx_of(file_, path_);
  Hid d = open_dataset(file_, path, ctx);
  Hid type(H5Dget_type(d.get()), H5Tclose);
  const std::vector<int64_t> dims = extent(d.get());
  const size_t n = static_cast<size_t>(std::accumulate(dims.begin(), dims.end(), int64_t{1}, std::multiplies<>()));
  std::vector<float> out(n);
  if (H5Tget_class(type.get()) == H5T_FLOAT) {
    if (n > 0) ctx.ok(H5Dread(d.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()), path, "cannot read");
    return out;
  }
  const bool u16 = H5Tget_class(type.get()) == H5T_INTEGER && H5Tget_size(type.get()) == 2 && H5Tget_sign(type.get()) == H5T_SGN_NONE;
  if (!u16 || H5Aexists(d.get(), "encoding") <= 0 || attr_string(path, "encoding") != "bfloat16")
    ctx.fail(path, "cannot read " + type_str(type.get()) + " as float (expected float32, float16, or uint16 with encoding=bfloat16)");
  std::vector<uint16_t> bits(n);
  if (n > 0) ctx.ok(H5Dread(d.get(), H5T_NATIVE_UINT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, bits.data()), path, "cannot read");
  for (size_t i = 0; i < n; ++i) {
    const uint32_t w = static_cast<uint32_t>(bits[i]) << 16;
    std::memcpy(&out[i], &w, sizeof w);
  }
  return out;
}

std::vector<int64_t> SerialFile::read_i64(const std::string& path) const {
  const Ctx ctx = ctx_of(file_, path_);
  Hid d = open_dataset(file_, path, ctx);
  Hid type(H5Dget_type(d.get()), H5Tclose);
  if (H5Tget_class(type.get()) != H5T_INTEGER) ctx.fail(path, "not an integer dataset (found " + type_str(type.get()) + ")");
  const std::vector<int64_t> dims = extent(d.get());
  std::vector<int64_t> out(static_cast<size_t>(std::accumulate(dims.begin(), dims.end(), int64_t{1}, std::multiplies<>())));
  if (!out.empty()) ctx.ok(H5Dread(d.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()), path, "cannot read");
  return out;
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

// ---------------------------------------------------------------------------------------------
// Phase 3: commit (rank 0)

namespace {
void fsync_path(const std::filesystem::path& p, bool directory) {
  const int fd = ::open(p.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(p.string() + ": cannot open for fsync: " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) throw std::runtime_error(p.string() + ": fsync failed: " + std::strerror(err));
}
}  // namespace

void commit_h5(const std::filesystem::path& tmp, const std::filesystem::path& final_path, const std::string& expected_format,
               const std::vector<DatasetSpec>& expected, const std::string& config_hash) {
  const Ctx ctx{tmp.string(), false};  // our own output: failures are not user-input errors
  {
    Hid file;
    try {
      file = open_serial(tmp, SerialFile::Mode::READ_ONLY);
    } catch (const InputError& e) {
      throw std::runtime_error(std::string("commit: ") + e.what());
    }
    const std::string format = read_attr_string(file.get(), ctx, "/", "format");
    if (format != expected_format) ctx.fail("/@format", "is \"" + format + "\", expected \"" + expected_format + "\"");
    for (const DatasetSpec& spec : expected) check_matches(open_dataset(file.get(), spec.path, ctx).get(), spec, ctx);
  }  // closed (H5F_CLOSE_STRONG) before the rename
  fsync_path(tmp, false);
  std::error_code ec;
  std::filesystem::remove(done_marker_path(final_path), ec);  // a stale marker must never vouch for the new file
  std::filesystem::rename(tmp, final_path);
  const std::filesystem::path dir = final_path.has_parent_path() ? final_path.parent_path() : std::filesystem::path(".");
  fsync_path(dir, true);
  done_marker_write(final_path, config_hash);
}

}  // namespace ts::h5
