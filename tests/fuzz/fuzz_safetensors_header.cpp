// libFuzzer target: bytes -> safetensors_parse. Only ts::InputError may escape the parser; a header
// it accepts must describe tensors that lie inside the buffer and tile it exactly.
//
// Each input is tried twice:
//   1. as a whole safetensors file (8-byte little-endian header length, header, data);
//   2. as "<header JSON>\0<data>" with the length prefix computed here, so that mutations of the JSON
//      text are not all rejected by the length check (no NUL: the whole input is the header).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "core/error.h"
#include "model/safetensors.h"

namespace {

void check_accepted(const ts::SafetensorsHeader& h, size_t size) {
  if (h.data_start < 8 || h.data_start > size) __builtin_trap();
  const uint64_t data_size = size - h.data_start;
  uint64_t total = 0;
  for (const auto& t : h.tensors) {
    if (t.begin > t.end || t.end > data_size) __builtin_trap();
    const int64_t n = t.numel();  // must not overflow (UBSan would report it)
    if (n < 0) __builtin_trap();
    if (static_cast<uint64_t>(n) * static_cast<uint64_t>(ts::dtype_bits(t.dtype) / 8) != t.end - t.begin) __builtin_trap();
    total += t.end - t.begin;
    (void)ts::dtype_name(t.dtype);
  }
  if (total != data_size) __builtin_trap();
}

void parse_one(const std::byte* data, size_t size) {
  try {
    check_accepted(ts::safetensors_parse({data, size}, "fuzz.safetensors"), size);
  } catch (const ts::InputError& e) {
    if (std::strncmp(e.what(), "fuzz.safetensors: ", 18) != 0) __builtin_trap();  // errors name the file
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  parse_one(reinterpret_cast<const std::byte*>(data), size);

  const void* nul = std::memchr(data, 0, size);
  const size_t header_len = nul ? static_cast<size_t>(static_cast<const uint8_t*>(nul) - data) : size;
  const size_t payload = nul ? size - header_len - 1 : 0;
  std::vector<std::byte> file(8 + header_len + payload);  // exactly sized: ASan sees any over-read
  for (int i = 0; i < 8; ++i) file[static_cast<size_t>(i)] = static_cast<std::byte>((static_cast<uint64_t>(header_len) >> (8 * i)) & 0xff);
  if (header_len) std::memcpy(file.data() + 8, data, header_len);
  if (payload) std::memcpy(file.data() + 8 + header_len, data + header_len + 1, payload);
  parse_one(file.data(), file.size());
  return 0;
}
