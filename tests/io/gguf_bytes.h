// Test helper: GGUF files built byte by byte, so that tests can write what gguf_serialize refuses to
// (bad magic, huge counts, misaligned or overlapping offsets, wrong types).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace ts_test {

class GgufBytes {
 public:
  GgufBytes& u8(uint8_t v) { return raw(&v, 1); }
  GgufBytes& u32(uint32_t v) { return raw(&v, 4); }
  GgufBytes& u64(uint64_t v) { return raw(&v, 8); }
  GgufBytes& f32(float v) { return raw(&v, 4); }
  GgufBytes& str(const std::string& s) {
    u64(s.size());
    return raw(s.data(), s.size());
  }
  GgufBytes& raw(const void* p, size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    bytes_.insert(bytes_.end(), b, b + n);
    return *this;
  }
  // "GGUF", version, tensor count, key/value count.
  GgufBytes& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    raw("GGUF", 4);
    u32(version);
    u64(n_tensors);
    return u64(n_kv);
  }
  GgufBytes& kv_string(const std::string& key, const std::string& value) {
    str(key);
    u32(8);  // STRING
    return str(value);
  }
  GgufBytes& kv_u32(const std::string& key, uint32_t value) {
    str(key);
    u32(4);  // UINT32
    return u32(value);
  }
  GgufBytes& kv_i32(const std::string& key, int32_t value) {
    str(key);
    u32(5);  // INT32
    return u32(static_cast<uint32_t>(value));
  }
  // A tensor info: name, dims (ggml order), ggml type, offset.
  GgufBytes& tensor(const std::string& name, const std::vector<uint64_t>& dims, uint32_t type, uint64_t offset) {
    str(name);
    u32(static_cast<uint32_t>(dims.size()));
    for (uint64_t d : dims) u64(d);
    u32(type);
    return u64(offset);
  }
  GgufBytes& pad(size_t alignment = 32) {
    while (bytes_.size() % alignment != 0) bytes_.push_back(std::byte{0});
    return *this;
  }
  GgufBytes& floats(const std::vector<float>& v) { return raw(v.data(), v.size() * sizeof(float)); }
  size_t size() const { return bytes_.size(); }
  const std::vector<std::byte>& bytes() const { return bytes_; }

 private:
  std::vector<std::byte> bytes_;
};

}  // namespace ts_test
