// Internals shared by the steering-vector files: vectors.cpp (the set, the one validator and the
// verified commit) and one file per format (vectors_h5.cpp, vectors_safetensors.cpp, vectors_gguf.cpp).
// Not for use outside src/io/vectors*.cpp.
//
// One validator (find_problem) serves every format: it reports the first problem as a logical field
// plus a message, and each format names that field the way its files do (an HDF5 dataset or
// attribute, a safetensors tensor or metadata key, a GGUF tensor or key), so an error points at the
// exact place in the file.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>

#include "io/vectors.h"

namespace ts::vectors_detail {

enum class Field { hook_measured, hook_applied, layers, d_model, names, values, counts, architecture, model, provenance };

struct Problem {
  Field field;
  size_t name = SIZE_MAX;   // index into names, when the problem is one name's
  size_t layer = SIZE_MAX;  // index into layers, when it is one layer's
  std::string what;
};

// The first problem of `s`: its strings, then its shape, then its values.
std::optional<Problem> find_problem(const VectorSet& s);
// d_model, layers and names: what a reader checks before allocating anything.
std::optional<Problem> dims_problem(const VectorSet& s);
// Values finite; a count of 0 (a missing vector) only with all-zero values.
std::optional<Problem> value_problem(const VectorSet& s);

// How each format names a field.
using FieldNamer = std::function<std::string(const Problem&)>;
// The names vectors_validate uses: "names", "layers", "values", "provenance_json", ...
std::string generic_field(const Problem& p);
// InputError(file, field(problem), what) for the first problem of a set read from `file`.
void throw_if_invalid(const VectorSet& s, const std::string& file, const FieldNamer& field);
// A set handed to a writer: its problems are the caller's bug (std::invalid_argument).
void require_valid(const VectorSet& s, const std::filesystem::path& path);

// Writes `path` under a temporary name (`write`), verifies it by reading it back (`verify`), then
// commits it (core/atomic_file.h commit_file: fsync, rename, fsync the directory; docs/decisions.md
// "Outputs and runs"). The temporary file is removed on any failure. Errors from our own write or
// read-back are std::runtime_error: the file is ours, not the user's.
void write_verified(const std::filesystem::path& path, const std::function<void(const std::filesystem::path&)>& write,
                    const std::function<void(const std::filesystem::path&)>& verify);
// std::runtime_error unless the set read back from `tmp` is the one written.
void expect_same(const VectorSet& read, const VectorSet& written, const std::filesystem::path& tmp);

// Values and counts are copied to and from files as raw little-endian bytes.
template <typename T>
std::span<const std::byte> bytes_of(const T* data, size_t n) {
  return std::as_bytes(std::span<const T>(data, n));
}

}  // namespace ts::vectors_detail
