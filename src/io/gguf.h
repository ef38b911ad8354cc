// A minimal GGUF container reader and writer (ggml-org/ggml docs/gguf.md; docs/conventions.md §4.7, §5.3),
// enough for llama.cpp control vectors: small files of unquantized tensors plus metadata.
//
// Layout (little-endian): magic "GGUF", u32 version (2 or 3), u64 tensor_count, u64 metadata_kv_count,
// the key/value pairs (key: u64 length + bytes; u32 value type; value), the tensor infos (name;
// u32 n_dims; u64 dims[n_dims], innermost first; u32 ggml type; u64 offset into the data section),
// zero padding up to `general.alignment` (32 when absent), then the data section. Every tensor's
// offset is a multiple of the alignment.
//
// The reader treats the file as hostile: every count and length is checked against the bytes left
// before anything is allocated, element and byte counts use checked products, tensors must lie
// inside the file and not overlap. Problems are InputError(file, field, what) with the field being
// a key, a tensor name or "<header>"-style placeholder; nothing is read outside the given bytes.
// Only unquantized tensor types are understood (a quantized type is an error: its byte size needs
// ggml's block tables, and no control vector uses one). Torch-free (part of thinksteer_formats, so
// it runs under ASan and libFuzzer).
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace ts {

// GGUF metadata value types (gguf.md, "gguf_metadata_value_type").
enum class GgufType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
const char* gguf_type_name(GgufType type);

// ggml tensor types this reader knows the size of (the numbers are ggml's `enum ggml_type`).
enum class GgmlType : uint32_t { F32 = 0, F16 = 1, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, BF16 = 30 };
const char* ggml_type_name(GgmlType type);

// One metadata value. Scalars: signed integers and BOOL in `i`, unsigned integers in `u`, floats
// in `f`, STRING in `s`. ARRAY: the element type and count only (the elements are checked and
// skipped: control vectors have no array keys we use).
struct GgufValue {
  GgufType type = GgufType::UINT8;
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0;
  std::string s;
  GgufType array_type = GgufType::UINT8;
  uint64_t array_size = 0;

  static GgufValue string(std::string value);
  static GgufValue int32(int32_t value);
  static GgufValue uint32(uint32_t value);
  static GgufValue int64(int64_t value);
  static GgufValue float64(double value);
  bool is_integer() const;  // any of the eight integer types
};

struct GgufKeyValue {
  std::string key;
  GgufValue value;
};

struct GgufTensorInfo {
  std::string name;
  std::vector<uint64_t> dims;  // ggml order: dims[0] is the innermost (contiguous) axis
  GgmlType type = GgmlType::F32;
  uint64_t offset = 0;         // into the data section, a multiple of the alignment
  uint64_t bytes = 0;          // element count x element size
};

struct GgufFile {
  uint32_t version = 3;
  uint64_t alignment = 32;
  uint64_t data_start = 0;     // file offset of the data section
  std::vector<GgufKeyValue> metadata;  // in file order; keys are unique
  std::vector<GgufTensorInfo> tensors; // in file order; names are unique

  const GgufValue* find(const std::string& key) const;  // nullptr if absent
  const GgufTensorInfo* tensor(const std::string& name) const;
};

inline constexpr uint64_t GGUF_DEFAULT_ALIGNMENT = 32;
inline constexpr size_t GGUF_MAX_KEY = 65535;        // gguf.md: keys are at most 65535 bytes
inline constexpr size_t GGUF_MAX_TENSOR_NAME = 64;   // gguf.md: tensor names are at most 64 bytes
inline constexpr uint32_t GGUF_MAX_DIMS = 4;

// Parses and validates a complete GGUF file held in `bytes`; `file` names it in errors.
GgufFile gguf_parse(std::span<const std::byte> bytes, const std::string& file);

// The bytes of tensor `info` of a file parsed from `bytes`.
std::span<const std::byte> gguf_tensor_bytes(std::span<const std::byte> bytes, const GgufFile& file, const GgufTensorInfo& info);

// A tensor to write: ggml-ordered dims and its raw little-endian data (dims' product x type size bytes).
struct GgufTensorOut {
  std::string name;
  std::vector<uint64_t> dims;
  GgmlType type = GgmlType::F32;
  std::span<const std::byte> data;
};

// A GGUF v3 file as bytes: the metadata in the order given (scalars only), then the tensors in the
// order given, each at an offset aligned to `alignment` (a multiple of 8) and zero-padded to it.
// general.alignment is written only when `alignment` is not the default 32. Throws
// std::invalid_argument on a bad key, name, shape or data size (a caller's bug, not bad input).
std::string gguf_serialize(const std::vector<GgufKeyValue>& metadata, const std::vector<GgufTensorOut>& tensors,
                           uint64_t alignment = GGUF_DEFAULT_ALIGNMENT);

}  // namespace ts
