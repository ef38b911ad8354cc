// UTF-8 helpers (the tokenizer, io and annotators use them): validation, decoding of already-validated text,
// Rust-compatible lossy decoding (String::from_utf8_lossy) and byte -> code point offsets.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ts::utf8 {

// Number of bytes of the UTF-8 sequence starting with `lead` (1 for continuation/invalid bytes).
inline size_t sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xF0) return 4;
  if (lead >= 0xE0) return 3;
  if (lead >= 0xC0) return 2;
  return 1;
}

inline bool is_continuation(unsigned char b) { return (b & 0xC0) == 0x80; }

// Decodes the code point at text[i] and advances i. `text` must be valid UTF-8.
inline char32_t next(std::string_view text, size_t& i) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data()) + i;
  unsigned char b0 = p[0];
  if (b0 < 0x80) {
    i += 1;
    return b0;
  }
  if (b0 < 0xE0) {
    i += 2;
    return (char32_t(b0 & 0x1F) << 6) | (p[1] & 0x3F);
  }
  if (b0 < 0xF0) {
    i += 3;
    return (char32_t(b0 & 0x0F) << 12) | (char32_t(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
  }
  i += 4;
  return (char32_t(b0 & 0x07) << 18) | (char32_t(p[1] & 0x3F) << 12) | (char32_t(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
}

// Appends the UTF-8 encoding of `cp` (must be a Unicode scalar value).
void append(std::string& out, char32_t cp);
size_t encoded_length(char32_t cp);

// Byte offset of the first invalid byte, or nullopt when `text` is valid UTF-8.
std::optional<size_t> find_invalid(std::string_view text);

// Decodes arbitrary bytes, replacing each maximal invalid subsequence with U+FFFD exactly like
// Rust's String::from_utf8_lossy (which HF tokenizers' ByteLevel decoder uses).
std::string decode_lossy(std::string_view bytes);

// Number of code points of valid UTF-8 text.
size_t count_code_points(std::string_view text);

// Unicode White_Space property (what Rust's char::is_whitespace and Oniguruma's \s test).
bool is_white_space(char32_t cp);

// Maps byte offsets of a valid UTF-8 string to code point offsets (every byte of a character maps
// to the index of that character). ASCII text needs no table.
class CharIndex {
 public:
  explicit CharIndex(std::string_view text);
  // Code point index of the character containing byte `b` (b < size()).
  uint32_t at(size_t b) const { return table_.empty() ? static_cast<uint32_t>(b) : table_[b]; }
  size_t size() const { return size_; }

 private:
  size_t size_;
  std::vector<uint32_t> table_;
};

}  // namespace ts::utf8
