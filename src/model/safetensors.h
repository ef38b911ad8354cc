// safetensors reader: strict header validation (docs/conventions.md §5.1) and a read-only memory map.
// Layout: u64 little-endian N, N bytes of JSON header, then the byte buffer. Offsets in the header are
// relative to the byte buffer, [begin, end), and must tile it exactly (no holes, no overlaps).
// Torch-free: the engine turns TensorInfo + bytes into tensors (model/checkpoint.cpp).
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace ts {

enum class DType { BOOL, U8, I8, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64, F8_E5M2, F8_E4M3 };

const char* dtype_name(DType dtype);
int dtype_bits(DType dtype);
bool dtype_is_float(DType dtype);

// "[2, 3]": a shape as error messages and summaries print it.
std::string shape_to_string(const std::vector<int64_t>& shape);

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offset into the data buffer
  uint64_t end = 0;    // one past
  int64_t numel() const;
};

struct SafetensorsHeader {
  uint64_t data_start = 0;  // 8 + N: file offset of the byte buffer
  std::vector<TensorInfo> tensors;  // in header order
  std::map<std::string, std::string> metadata;
};

inline constexpr uint64_t SAFETENSORS_MAX_HEADER = 100'000'000;

// Parses and validates the header of a complete safetensors file held in `bytes`.
// `file` names the file in errors. Throws InputError; never reads outside `bytes`.
SafetensorsHeader safetensors_parse(std::span<const std::byte> bytes, const std::string& file);

// A validated, memory-mapped (read-only, MAP_PRIVATE) safetensors file. Move-only.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::filesystem::path& path);  // throws InputError
  ~SafetensorsFile();
  SafetensorsFile(SafetensorsFile&&) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::filesystem::path& path() const { return path_; }
  const SafetensorsHeader& header() const { return header_; }
  const TensorInfo* find(const std::string& name) const;  // nullptr if absent
  std::span<const std::byte> bytes(const TensorInfo& info) const;

 private:
  std::filesystem::path path_;
  SafetensorsHeader header_;
  std::map<std::string, size_t> index_;
  void* map_ = nullptr;
  size_t size_ = 0;
};

// Writes a safetensors file (F32/I64/... tensors given as raw little-endian bytes), header padded to 8.
struct TensorBytes {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::span<const std::byte> data;
};
void safetensors_write(const std::filesystem::path& path, const std::vector<TensorBytes>& tensors,
                       const std::map<std::string, std::string>& metadata = {});
// The streaming form, for files larger than memory: `layout` names each tensor's name, dtype and shape
// (its data unused); bytes(i) hands over tensor i's bytes when its turn comes (valid until the next
// call), so one tensor at a time need be in memory.
void safetensors_write_each(const std::filesystem::path& path, const std::vector<TensorBytes>& layout,
                            const std::map<std::string, std::string>& metadata,
                            const std::function<std::span<const std::byte>(size_t)>& bytes);

}  // namespace ts
