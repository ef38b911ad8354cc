// Internals shared by the HDF5 store's files (h5store.cpp: phase 1 and the commit; h5store_serial.cpp:
// phase 2 and every reader): RAII handles, the error context, HDF5 types, and dataset and attribute
// helpers. HDF5 C API only; not for use outside src/io/h5store*.cpp.
#pragma once
#include <hdf5.h>

#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/disk_space.h"
#include "core/error.h"
#include "io/h5store.h"

namespace ts::h5::detail {

// An hid_t with the function that closes it.
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
std::string h5_error_text();
// Turns off HDF5's own error printing (errors become exceptions).
void quiet_hdf5();

// Where an error happened: the file and whether it came from a user (InputError) or from us.
struct Ctx {
  std::string file;
  bool input = false;
  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    if (input) throw InputError(file, field, what);
    throw std::runtime_error(file + ": " + field + ": " + what + disk_full_note(file));
  }
  hid_t id(hid_t id, const std::string& field, const std::string& what) const {
    if (id < 0) fail(field, what + ": " + h5_error_text());
    return id;
  }
  void ok(herr_t rc, const std::string& field, const std::string& what) const {
    if (rc < 0) fail(field, what + ": " + h5_error_text());
  }
};

// The context of an open file: input (InputError) unless it was opened for writing.
Ctx ctx_of(hid_t file, const std::filesystem::path& path);

// "[2, 3]".
std::string shape_str(const std::vector<int64_t>& s);
// The file type of a DType (float16 as h5py builds it; bfloat16 as uint16 bits).
Hid make_type(DType t);
// Variable-length UTF-8 strings.
Hid make_utf8_vlen();
// A type for messages: a dtype_name, or "<kind> of <n> bytes".
std::string type_str(hid_t t);
// The extents of a dataset (empty when it has no simple dataspace).
std::vector<int64_t> extent(hid_t dset);

// Every prefix of `path` is a link (so no HDF5 error for a missing parent group).
bool link_exists(hid_t file, const std::string& path, const Ctx& ctx);
Hid open_dataset(hid_t file, const std::string& path, const Ctx& ctx);
// A bad spec is a programming error; it is found before any collective call, on every rank alike.
void validate_spec(const DatasetSpec& spec, int compression, const Ctx& ctx);
// Contiguous, allocated at creation and never filled (every row is written once), or chunked along
// rows (about 2 MiB chunks) with gzip when `compression` > 0. Intermediate groups are created.
Hid create_dataset(hid_t file, const DatasetSpec& spec, int compression, const Ctx& ctx);
// An existing dataset must have the spec's shape and type.
void check_matches(hid_t dset, const DatasetSpec& spec, const Ctx& ctx);

Hid open_object(hid_t file, const std::string& object, const Ctx& ctx);
// A scalar attribute `name` of `object`, replaced when present.
void write_attr(hid_t file, const Ctx& ctx, const std::string& object, const std::string& name, hid_t type, const void* value);
// An existing scalar attribute.
Hid open_attr(hid_t file, const Ctx& ctx, const std::string& object, const std::string& name);
// Frees the variable-length data HDF5 allocated into `buf`.
herr_t reclaim(hid_t type, hid_t space, void* buf);

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

std::string read_attr_string(hid_t file, const Ctx& ctx, const std::string& object, const std::string& name);

// A file for serial access (SerialFile, commit_h5): strong close degree, so a rename after H5Fclose is safe.
Hid open_serial(const std::filesystem::path& path, SerialFile::Mode mode);

}  // namespace ts::h5::detail
