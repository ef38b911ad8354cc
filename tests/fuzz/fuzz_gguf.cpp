// libFuzzer target: bytes -> gguf_parse (io/gguf). Only ts::InputError may escape the parser; a file
// it accepts must describe tensors that lie inside the buffer, aligned and not overlapping, and
// every tensor's bytes must be readable (ASan checks the reads).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "io/gguf.h"

namespace {

void check_accepted(const ts::GgufFile& f, std::span<const std::byte> bytes) {
  if (f.alignment == 0 || f.alignment % 8 != 0 || f.data_start % f.alignment != 0) __builtin_trap();
  std::vector<std::pair<uint64_t, uint64_t>> extents;
  for (const ts::GgufTensorInfo& t : f.tensors) {
    if (t.offset % f.alignment != 0 || t.dims.empty() || t.dims.size() > ts::GGUF_MAX_DIMS) __builtin_trap();
    if (f.data_start > bytes.size() || t.offset > bytes.size() - f.data_start || t.bytes > bytes.size() - f.data_start - t.offset) __builtin_trap();
    const auto data = ts::gguf_tensor_bytes(bytes, f, t);
    volatile std::byte sink{};
    for (std::byte b : data) sink = b;  // every byte readable
    if (t.bytes > 0) extents.emplace_back(t.offset, t.offset + t.bytes);
  }
  std::sort(extents.begin(), extents.end());
  for (size_t k = 1; k < extents.size(); ++k)
    if (extents[k].first < extents[k - 1].second) __builtin_trap();
  for (const ts::GgufKeyValue& kv : f.metadata) (void)ts::gguf_type_name(kv.value.type);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::byte> file(size);  // exactly sized: ASan sees any over-read
  if (size) std::memcpy(file.data(), data, size);
  try {
    check_accepted(ts::gguf_parse(file, "fuzz.gguf"), file);
  } catch (const ts::InputError& e) {
    if (std::strncmp(e.what(), "fuzz.gguf: ", 11) != 0) __builtin_trap();  // errors name the file
  }
  return 0;
}
