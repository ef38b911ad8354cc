// The parallel HDF5 store: one output file per task, written collectively by all of the task's ranks
// (docs/conventions.md §2, option B), then committed atomically (docs/decisions.md "Outputs and runs").
//
// A file is written in three phases:
//   1. ParallelFile (all ranks, MPI-IO): numeric datasets are created collectively with identical
//      arguments (contiguous layout, or chunked + gzip where the HDF5 build supports parallel
//      filtered writes); each rank writes its rows as a hyperslab selection (several row ranges at
//      once); ranks with nothing to write still take part. The file lives under a temporary name.
//   2. SerialFile (rank 0 only, after the parallel close): variable-length UTF-8 strings gathered to
//      rank 0 (parallel HDF5 cannot write variable-length data), attributes (provenance), and
//      dimension scales so h5py/xarray/h5netcdf see named dimensions.
//   3. commit_h5 (rank 0): reopen read-only and verify the signature attribute and every expected
//      dataset's shape and type, fsync, rename to the final name, fsync the directory, write the
//      `.done` marker with the config hash (core/atomic_file.h).
// Every error names the file and the dataset or attribute (InputError for files a user gave us,
// std::runtime_error for our own writes).
#pragma once
#include <mpi.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace ts::h5 {

// Element types. F16 is IEEE half (h5py reads it as float16). BF16 is stored as uint16 with the
// attribute encoding="bfloat16" (docs/decisions.md).
enum class DType { F32, F16, BF16, I32, I64, U8, F64 };
size_t dtype_size(DType t);
const char* dtype_name(DType t);  // "float32", "float16", "bfloat16", "int32", "int64", "uint8", "float64"

struct DatasetSpec {
  std::string path;                 // e.g. "/activations/blocks.3.hook_resid_post"; parent groups are created
  DType dtype = DType::F32;
  std::vector<int64_t> shape;       // global shape; rows are dim 0
  std::vector<std::string> dims;    // one dimension name per axis (attached as scales in phase 2)
  std::map<std::string, std::string> attrs;  // string attributes (written in phase 2 by rank 0)
};

struct RowRange {
  int64_t begin = 0;  // first row (dim 0)
  int64_t count = 0;
};

// True when this HDF5 build can write filtered (compressed) datasets in parallel.
bool parallel_compression_supported();

class ParallelFile {
 public:
  // COLLECTIVE over `comm`: creates (truncates) `path` with the MPI-IO driver, or with
  // open_existing=true reopens it read-write (resuming an interrupted task).
  ParallelFile(const std::filesystem::path& path, MPI_Comm comm, bool open_existing = false);
  ~ParallelFile();  // closes if still open (collective: every rank must destroy it)
  ParallelFile(const ParallelFile&) = delete;
  ParallelFile& operator=(const ParallelFile&) = delete;

  // COLLECTIVE, identical arguments on every rank. compression: 0 = none, 1..9 = gzip level (chunked
  // along rows; throws if !parallel_compression_supported()). On a reopened file, checks that the
  // dataset exists with this shape and type instead of creating it (a dataset that is not there yet
  // is created; one that is there with another shape or type is an error naming both shapes).
  void create(const DatasetSpec& spec, int compression = 0);

  // COLLECTIVE: every rank calls it for the same dataset, possibly with no ranges. `data` holds the
  // rows of `ranges` back to back, in the order given, each row being prod(shape[1:]) elements, in the
  // dataset's own type (raw bytes; bf16 as its uint16 bits). Ranges may come in any order and may be
  // empty, but must lie within the rows and not overlap: a violation is a programming error, detected
  // on every rank (one MPI_Allreduce) so that all ranks throw instead of some waiting in H5Dwrite.
  void write_rows(const std::string& path, const std::vector<RowRange>& ranges, const void* data);
  // COLLECTIVE, the mirror of write_rows: the rows of `ranges` into `data`, back to back in the order
  // given, in the dataset's own type (a second pass over rows written earlier, before close()).
  void read_rows(const std::string& path, const std::vector<RowRange>& ranges, void* data);

  // COLLECTIVE: flushes and closes the file (H5Fclose). Idempotent.
  void close();

 private:
  struct Impl;
  Impl* impl_;
};

// Rank-0-only serial access to a file after its parallel phase (or a file written entirely serially).
class SerialFile {
 public:
  enum class Mode { CREATE, READ_WRITE, READ_ONLY };
  SerialFile(const std::filesystem::path& path, Mode mode);
  ~SerialFile();
  SerialFile(const SerialFile&) = delete;
  SerialFile& operator=(const SerialFile&) = delete;

  // Numeric dataset in a serial file, all rows at once (created, written and described as describe() does).
  void write_dataset(const DatasetSpec& spec, const void* data);
  // 1-D variable-length UTF-8 string dataset with dimension `dim` (scale attached as attach_dim does).
  void write_strings(const std::string& path, const std::vector<std::string>& values, const std::string& dim);

  // Attributes on a group or dataset ("/" for the root).
  void set_attr(const std::string& object, const std::string& name, const std::string& value);
  void set_attr(const std::string& object, const std::string& name, int64_t value);
  void set_attr(const std::string& object, const std::string& name, double value);
  void set_attr_ints(const std::string& object, const std::string& name, const std::vector<int64_t>& values);  // 1-D int64
  // Dimension scale for axis `axis` of dataset `path`: a dataset named `dim` in the dataset's parent
  // group (int64 0..n-1, marked as a netCDF dimension without a coordinate variable, so xarray via
  // h5netcdf names the axis `dim`), created on first use and attached with H5DSattach_scale. A scale
  // that exists with another length is an error.
  void attach_dim(const std::string& path, int axis, const std::string& dim);
  // Phase 2 for a dataset made in phase 1: its attrs, its dtype record (attribute "dtype", and
  // encoding="bfloat16" for BF16) and a dimension scale per axis from spec.dims.
  void describe(const DatasetSpec& spec);

  // Reading (tests, resume checks, reduce).
  bool exists(const std::string& path) const;
  // The names of a group's members (links), in name order; std::runtime_error when it is not a group.
  std::vector<std::string> members(const std::string& group) const;
  std::vector<int64_t> shape(const std::string& path) const;
  std::string attr_string(const std::string& object, const std::string& name) const;  // throws if missing
  int64_t attr_int(const std::string& object, const std::string& name) const;
  std::vector<int64_t> attr_ints(const std::string& object, const std::string& name) const;  // a 1-D (or scalar) integer attribute
  std::vector<float> read_f32(const std::string& path) const;  // whole dataset converted to float (F32/F16; BF16 decoded)
  std::vector<float> read_f32_rows(const std::string& path, int64_t begin, int64_t count) const;  // rows [begin, begin+count), converted like read_f32
  std::vector<int64_t> read_i64(const std::string& path) const;  // whole dataset converted to int64 (integer types)
  std::vector<double> read_f64(const std::string& path) const;   // whole dataset converted to double (float types)
  std::vector<std::string> read_strings(const std::string& path) const;

 private:
  std::filesystem::path path_;
  long long file_;  // hid_t
};

// Rank 0 only. Verifies `tmp` (root attribute `format` == expected_format and every `expected`
// dataset present with its shape), fsyncs it, renames it to `final_path`, fsyncs the directory and
// writes the done marker (core/done_marker.h) with `config_hash` and the content hashes of the file and of
// `sidecars` (files beside it the marker also certifies). Throws std::runtime_error naming the file and dataset
// on a failed check (and leaves `final_path` untouched).
void commit_h5(const std::filesystem::path& tmp, const std::filesystem::path& final_path, const std::string& expected_format,
               const std::vector<DatasetSpec>& expected, const std::string& config_hash, const std::vector<std::filesystem::path>& sidecars = {});

}  // namespace ts::h5
