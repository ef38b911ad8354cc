#include "core/utf8.h"

namespace ts::utf8 {

void append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

size_t encoded_length(char32_t cp) {
  if (cp < 0x80) return 1;
  if (cp < 0x800) return 2;
  if (cp < 0x10000) return 3;
  return 4;
}

namespace {

// Length of the valid prefix of the sequence at p[0..n): returns {valid_length, complete}.
// A complete well-formed sequence gives {len, true}; otherwise the number of bytes that form a
// valid prefix (at least 1: the lead byte alone is replaced), per Unicode's "maximal subpart" rule.
struct Scan {
  size_t length;
  bool valid;
};

Scan scan_sequence(const unsigned char* p, size_t n) {
  unsigned char b0 = p[0];
  if (b0 < 0x80) return {1, true};
  size_t need;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return {1, false};
  }
  if (n < 2 || p[1] < lo || p[1] > hi) return {1, false};
  for (size_t k = 2; k < need; ++k) {
    if (n <= k || !is_continuation(p[k])) return {k, false};
  }
  return {need, true};
}

}  // namespace

std::optional<size_t> find_invalid(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    Scan s = scan_sequence(p + i, n - i);
    if (!s.valid) return i;
    i += s.length;
  }
  return std::nullopt;
}

std::string decode_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t n = bytes.size();
  size_t i = 0;
  while (i < n) {
    if (p[i] < 0x80) {
      out.push_back(static_cast<char>(p[i]));
      ++i;
      continue;
    }
    Scan s = scan_sequence(p + i, n - i);
    if (s.valid) {
      out.append(bytes.data() + i, s.length);
    } else {
      out.append("\xEF\xBF\xBD");
    }
    i += s.length;
  }
  return out;
}

size_t count_code_points(std::string_view text) {
  size_t count = 0;
  for (unsigned char c : text) count += !is_continuation(c);
  return count;
}

bool is_white_space(char32_t cp) {
  if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
  if (cp < 0x85) return false;
  switch (cp) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

CharIndex::CharIndex(std::string_view text) : size_(text.size()) {
  bool ascii = true;
  for (unsigned char c : text) {
    if (c >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) return;
  table_.resize(text.size());
  uint32_t index = 0;
  for (size_t b = 0; b < text.size(); ++b) {
    if (b > 0 && !is_continuation(static_cast<unsigned char>(text[b]))) ++index;
    table_[b] = index;
  }
}

}  // namespace ts::utf8
