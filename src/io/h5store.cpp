// The parallel HDF5 store (see h5store.h for the three phases). HDF5 C API only.
//
//   ParallelFile  phase 1, all ranks (this file): MPI-IO file access (collective metadata, ROMIO data
//                 sieving off), contiguous early-allocated datasets, collective hyperslab writes of row ranges.
//   SerialFile    phase 2 (rank 0, h5store_serial.cpp): strings, attributes, dimension scales; also every reader.
//   commit_h5     phase 3 (rank 0, this file): verify, then commit_file (core/atomic_file.h: fsync,
//                 rename, fsync the directory), done marker.
//
// Every hid_t lives in a Hid (RAII, h5store_detail.h), HDF5's own error printing is off, and every
// failure becomes an exception "<file>: <dataset or attribute>: <what>" carrying the innermost HDF5
// error description: ts::InputError for a file opened READ_ONLY (a file a user may have given us),
// std::runtime_error for files we write.
#include "io/h5store.h"

#include <hdf5.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <utility>

#include "core/atomic_file.h"
#include "core/done_marker.h"
#include "core/error.h"
#include "io/h5store_detail.h"

namespace ts::h5 {

using namespace detail;

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

namespace {

// The rows of a collective transfer (write_rows, read_rows): the ranges checked on every rank and the
// verdict shared (one MPI_Allreduce), so bad ranges (a programming error) throw on all ranks instead
// of leaving the others waiting in H5Dwrite or H5Dread; then sorted by first row (a hyperslab union
// is transferred in file order) and neighbours merged. `order` lists the given ranges in file order.
struct RowSelection {
  std::vector<size_t> order;
  std::vector<RowRange> merged;
  std::vector<size_t> offset;  // byte offset of each given range in a buffer holding them in the order given
  size_t row_elems = 0, row_bytes = 0;
  bool in_file_order() const { return std::is_sorted(order.begin(), order.end()); }
};

RowSelection select_rows(const std::vector<int64_t>& dims, hid_t type, const std::vector<RowRange>& ranges, MPI_Comm comm, const Ctx& ctx,
                         const std::string& path) {
  RowSelection sel;
  const int64_t rows = dims.at(0);
  sel.row_elems = static_cast<size_t>(std::accumulate(dims.begin() + 1, dims.end(), int64_t{1}, std::multiplies<>()));
  sel.row_bytes = sel.row_elems * H5Tget_size(type);
  sel.order.resize(ranges.size());
  std::iota(sel.order.begin(), sel.order.end(), size_t{0});
  std::stable_sort(sel.order.begin(), sel.order.end(), [&](size_t a, size_t b) { return ranges[a].begin < ranges[b].begin; });
  std::string error;
  for (size_t i : sel.order) {
    const RowRange& r = ranges[i];
    if (r.begin < 0 || r.count < 0 || r.begin > rows || r.count > rows - r.begin)
      error = "row range [" + std::to_string(r.begin) + ", +" + std::to_string(r.count) + ") outside " + std::to_string(rows) + " rows";
    else if (r.count == 0) continue;
    else if (!sel.merged.empty() && r.begin < sel.merged.back().begin + sel.merged.back().count)
      error = "row ranges overlap at row " + std::to_string(r.begin);
    else if (!sel.merged.empty() && r.begin == sel.merged.back().begin + sel.merged.back().count) sel.merged.back().count += r.count;
    else sel.merged.push_back(r);
    if (!error.empty()) break;
  }
  int bad = error.empty() ? 0 : 1, any_bad = 0;
  MPI_Allreduce(&bad, &any_bad, 1, MPI_INT, MPI_MAX, comm);
  if (any_bad) ctx.fail(path, bad ? error : "another rank passed invalid row ranges");
  sel.offset.resize(ranges.size());
  for (size_t i = 0, at = 0; i < ranges.size(); at += static_cast<size_t>(ranges[i].count) * sel.row_bytes, ++i) sel.offset[i] = at;
  return sel;
}

// The file and memory dataspaces of the selected rows (the memory holds them back to back in file
// order); `none` when this rank has no rows (the transfer is collective: it takes part with empty
// selections).
struct RowSpaces {
  Hid file, memory;
  bool none = false;
};

RowSpaces row_spaces(hid_t dset, const std::vector<int64_t>& dims, const RowSelection& sel, const Ctx& ctx, const std::string& path) {
  // The file selection: the union of the ranges, full extent in the other dims. Chaining
  // H5S_SELECT_OR is super-linear in HDF5 1.10 (10k ranges: 2 s, 40k: 100 s), so each range gets its
  // own selection and the union is taken pairwise with H5Scombine_select (log2(n) rounds).
  RowSpaces out;
  out.file = Hid(ctx.id(H5Dget_space(dset), path, "cannot get dataspace"), H5Sclose);
  std::vector<hsize_t> start(dims.size(), 0), count(dims.begin(), dims.end());
  hsize_t total = 0;
  std::vector<Hid> parts;
  for (const RowRange& r : sel.merged) {
    start[0] = static_cast<hsize_t>(r.begin);
    count[0] = static_cast<hsize_t>(r.count);
    total += count[0] * sel.row_elems;
    parts.emplace_back(ctx.id(H5Scopy(out.file.get()), path, "cannot copy dataspace"), H5Sclose);
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
  if (!parts.empty()) out.file = std::move(parts[0]);
  const hsize_t mdim = std::max<hsize_t>(total, 1);
  out.memory = Hid(H5Screate_simple(1, &mdim, nullptr), H5Sclose);
  if (total == 0) {
    H5Sselect_none(out.file.get());
    H5Sselect_none(out.memory.get());
    out.none = true;
  }
  return out;
}

// A zero-sized contiguous dataset has no file address (HDF5 1.10 fails with "addr overflow" even on
// empty selections); the extent is the same everywhere, so every rank skips the transfer alike.
bool no_rows(const std::vector<int64_t>& dims, const RowSelection& sel) { return dims.at(0) == 0 || sel.row_elems == 0; }

}  // namespace

// COLLECTIVE (select_rows checks the ranges on every rank).
void ParallelFile::write_rows(const std::string& path, const std::vector<RowRange>& ranges, const void* data) {
  const Ctx ctx = impl_->ctx();
  if (!impl_->file.valid()) ctx.fail(path, "file is closed");
  auto it = impl_->dsets.find(path);
  Impl::Dset& d = it != impl_->dsets.end() ? it->second : impl_->cache(path, open_dataset(impl_->file.get(), path, ctx));
  const RowSelection sel = select_rows(d.dims, d.type.get(), ranges, impl_->comm, ctx, path);
  // Ranges given out of order: stage the rows in file order.
  std::vector<unsigned char> staged;
  if (!sel.in_file_order()) {
    for (size_t i : sel.order) {
      const auto* from = static_cast<const unsigned char*>(data) + sel.offset[i];
      staged.insert(staged.end(), from, from + static_cast<size_t>(ranges[i].count) * sel.row_bytes);
    }
    data = staged.data();
  }
  if (no_rows(d.dims, sel)) return;
  const RowSpaces sp = row_spaces(d.id.get(), d.dims, sel, ctx, path);
  static const unsigned char dummy = 0;
  ctx.ok(H5Dwrite(d.id.get(), d.type.get(), sp.memory.get(), sp.file.get(), impl_->dxpl.get(), sp.none ? &dummy : data), path,
         "collective write failed");
}

// COLLECTIVE, the mirror of write_rows.
void ParallelFile::read_rows(const std::string& path, const std::vector<RowRange>& ranges, void* data) {
  const Ctx ctx = impl_->ctx();
  if (!impl_->file.valid()) ctx.fail(path, "file is closed");
  auto it = impl_->dsets.find(path);
  Impl::Dset& d = it != impl_->dsets.end() ? it->second : impl_->cache(path, open_dataset(impl_->file.get(), path, ctx));
  const RowSelection sel = select_rows(d.dims, d.type.get(), ranges, impl_->comm, ctx, path);
  if (no_rows(d.dims, sel)) return;
  // Ranges given out of order: read in file order, then put each range where the caller wants it.
  std::vector<unsigned char> staged(sel.in_file_order() ? 0 : sel.offset.empty() ? 0 : sel.offset.back() + static_cast<size_t>(ranges.back().count) * sel.row_bytes);
  const RowSpaces sp = row_spaces(d.id.get(), d.dims, sel, ctx, path);
  unsigned char dummy = 0;
  void* into = sp.none ? &dummy : staged.empty() ? data : staged.data();
  ctx.ok(H5Dread(d.id.get(), d.type.get(), sp.memory.get(), sp.file.get(), impl_->dxpl.get(), into), path, "collective read failed");
  if (staged.empty()) return;
  size_t at = 0;
  for (size_t i : sel.order) {
    const size_t n = static_cast<size_t>(ranges[i].count) * sel.row_bytes;
    std::memcpy(static_cast<unsigned char*>(data) + sel.offset[i], staged.data() + at, n);
    at += n;
  }
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
// Phase 3: commit (rank 0)

void commit_h5(const std::filesystem::path& tmp, const std::filesystem::path& final_path, const std::string& expected_format,
               const std::vector<DatasetSpec>& expected, const std::string& config_hash, const std::vector<std::filesystem::path>& sidecars) {
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
  std::error_code ec;
  std::filesystem::remove(done_marker_path(final_path), ec);  // a stale marker must never vouch for the new file
  commit_file(tmp, final_path);
  done_marker_write(final_path, config_hash, sidecars);
}

}  // namespace ts::h5
