// Sentence splitting (docs/algorithms.md §B.3) and the thinking part of a response (sentences.h).
#include "core/sentences.h"

namespace ts {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_ascii_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
// A word character for the \b of the abbreviation rule; any non-ASCII byte counts as one (letters).
bool is_word_byte(char c) { return is_ascii_letter(c) || is_digit(c) || c == '_' || static_cast<unsigned char>(c) >= 0x80; }
bool is_break(char c) { return c == '.' || c == '!' || c == '?' || c == ';' || c == '\n'; }

int64_t count_words(std::string_view s) {
  int64_t n = 0;
  for (size_t i = 0; i < s.size(); ++i) n += !is_space(s[i]) && (i == 0 || is_space(s[i - 1]));
  return n;
}

// Whether the break character at byte i is protected (§B.3: decimals, "X. y" abbreviations, k!).
bool protected_break(std::string_view t, size_t i) {
  const char c = t[i];
  const bool digit_before = i > 0 && is_digit(t[i - 1]);
  if (c == '!') return digit_before;
  if (c != '.') return false;
  if (digit_before && i + 1 < t.size() && is_digit(t[i + 1])) return true;
  return i > 0 && is_ascii_letter(t[i - 1]) && (i == 1 || !is_word_byte(t[i - 2])) && i + 2 < t.size() && t[i + 1] == ' ' &&
         t[i + 2] >= 'a' && t[i + 2] <= 'z';
}

// Byte offset -> code-point offset, for offsets visited in increasing order (one pass over the text).
struct CodePointCursor {
  std::string_view text;
  size_t byte = 0;
  int64_t cp = 0;
  int64_t at(size_t b) {
    for (; byte < b; ++byte) cp += (static_cast<unsigned char>(text[byte]) & 0xC0) != 0x80;
    return cp;
  }
};

// [b, e) without the white space at either end.
void strip(std::string_view t, size_t& b, size_t& e) {
  while (b < e && is_space(t[b])) ++b;
  while (e > b && is_space(t[e - 1])) --e;
}

struct Piece {
  size_t b = 0, e = 0;  // bytes, stripped, non-empty
};

// The stripped, non-empty pieces between breaks, closing quotes given back to their sentence.
std::vector<Piece> pieces_of(std::string_view text) {
  std::vector<Piece> out;
  auto emit = [&](size_t b, size_t e) {
    if (b < e && text[b] == '"' && !out.empty() && out.back().e == b) {  // a closing quote right after the break
      out.back().e = ++b;
    }
    strip(text, b, e);
    if (b < e) out.push_back({b, e});
  };
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (!is_break(text[i]) || protected_break(text, i)) continue;
    if (text[i] != '\n')
      while (i + 1 < text.size() && text[i + 1] == text[i]) ++i;  // "..." is one break
    emit(start, i + 1);
    start = i + 1;
  }
  emit(start, text.size());
  return out;
}

}  // namespace

std::vector<Sentence> split_sentences(std::string_view text, std::vector<Sentence>* dropped, int64_t min_words) {
  std::vector<Sentence> out;
  CodePointCursor cursor{text};
  for (const Piece& p : pieces_of(text)) {
    const std::string_view s = text.substr(p.b, p.e - p.b);
    const int64_t begin = cursor.at(p.b);
    Sentence sentence{std::string(s), begin, cursor.at(p.e), p.b, p.e};
    if (count_words(s) >= min_words) out.push_back(std::move(sentence));
    else if (dropped) dropped->push_back(std::move(sentence));
  }
  return out;
}

TextRange thinking_range(std::string_view text) {
  static constexpr std::string_view kOpen = "<think>", kClose = "</think>";
  TextRange r;
  const size_t open = text.find(kOpen);
  r.byte_begin = open == std::string_view::npos ? 0 : open + kOpen.size();
  const size_t close = text.find(kClose, r.byte_begin);
  r.byte_end = close == std::string_view::npos ? text.size() : close;
  CodePointCursor cursor{text};
  r.begin = cursor.at(r.byte_begin);
  r.end = cursor.at(r.byte_end);
  return r;
}

}  // namespace ts
