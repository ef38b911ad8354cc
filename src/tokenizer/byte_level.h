// GPT-2 byte-level alphabet: every byte 0..255 is represented by one printable code point
// (printable Latin-1 bytes map to themselves, the others to U+0100 + n in byte order, so the
// space 0x20 becomes 'Ġ' U+0120 and '\n' becomes 'Ċ' U+010A). Byte-level BPE vocabularies are
// written in this alphabet.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace ts::byte_level {

// The code point representing byte `b`.
char32_t byte_to_char(uint8_t b);
// The byte represented by code point `c`, or -1 when `c` is not in the alphabet.
int char_to_byte(char32_t c);

// Maps every byte of `bytes` to its alphabet character (UTF-8 encoded).
std::string encode(std::string_view bytes);
void encode_append(std::string& out, std::string_view bytes);
// Inverse of encode for a string made only of alphabet characters; false when `text` contains a
// character outside the alphabet (out is then unspecified).
bool decode(std::string_view text, std::string& out);

// The GPT-2 pre-tokenization regex used by ByteLevel(use_regex=true).
inline constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

}  // namespace ts::byte_level
