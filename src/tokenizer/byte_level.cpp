#include "tokenizer/byte_level.h"

#include <array>

#include "core/utf8.h"

namespace ts::byte_level {

namespace {

struct Tables {
  std::array<char32_t, 256> to_char{};
  std::array<int16_t, 0x144> to_byte{};  // every alphabet character is below U+0144
  std::array<std::array<char, 2>, 256> utf8{};
  std::array<uint8_t, 256> utf8_len{};

  Tables() {
    to_byte.fill(-1);
    char32_t next_extra = 0x100;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      char32_t c = printable ? static_cast<char32_t>(b) : next_extra++;
      to_char[b] = c;
      to_byte[c] = static_cast<int16_t>(b);
      std::string s;
      utf8::append(s, c);
      utf8_len[b] = static_cast<uint8_t>(s.size());
      for (size_t k = 0; k < s.size(); ++k) utf8[b][k] = s[k];
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

char32_t byte_to_char(uint8_t b) { return tables().to_char[b]; }

int char_to_byte(char32_t c) {
  if (c >= tables().to_byte.size()) return -1;
  return tables().to_byte[c];
}

void encode_append(std::string& out, std::string_view bytes) {
  const Tables& t = tables();
  for (unsigned char b : bytes) out.append(t.utf8[b].data(), t.utf8_len[b]);
}

std::string encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  encode_append(out, bytes);
  return out;
}

bool decode(std::string_view text, std::string& out) {
  size_t i = 0;
  while (i < text.size()) {
    int b = char_to_byte(utf8::next(text, i));
    if (b < 0) return false;
    out.push_back(static_cast<char>(b));
  }
  return true;
}

}  // namespace ts::byte_level
