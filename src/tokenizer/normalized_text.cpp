#include "tokenizer/normalized_text.h"

#include "core/utf8.h"

namespace ts {

NormalizedText NormalizedText::borrowed(std::string_view slice, uint32_t base) {
  NormalizedText t;
  t.owned_ = false;
  t.borrowed_ = slice;
  t.base_ = base;
  return t;
}

NormalizedText NormalizedText::owned(std::string text, std::vector<uint32_t> begin, std::vector<uint32_t> end) {
  NormalizedText t;
  t.owned_ = true;
  t.storage_ = std::move(text);
  t.begin_ = std::move(begin);
  t.end_ = std::move(end);
  return t;
}

uint32_t NormalizedText::begin_of(size_t i) const {
  if (owned_) return begin_[i];
  while (i > 0 && utf8::is_continuation(static_cast<unsigned char>(borrowed_[i]))) --i;
  return base_ + static_cast<uint32_t>(i);
}

uint32_t NormalizedText::end_of(size_t i) const {
  if (owned_) return end_[i];
  ++i;
  while (i < borrowed_.size() && utf8::is_continuation(static_cast<unsigned char>(borrowed_[i]))) ++i;
  return base_ + static_cast<uint32_t>(i);
}

NormalizedText NormalizedText::transformed(const std::vector<std::pair<char32_t, int>>& chars) const {
  std::string_view old = text();
  std::string out;
  std::vector<uint32_t> begin, end;
  out.reserve(old.size() + 8);
  begin.reserve(old.size() + 8);
  end.reserve(old.size() + 8);
  size_t offset = 0;  // byte offset in the old text of the next character to replace
  for (const auto& [cp, change] : chars) {
    uint32_t b, e;
    if (change > 0) {
      if (offset == 0) {
        b = e = base_;  // HF aligns a leading insertion to the empty range at the slice start
      } else {
        b = begin_of(offset - 1);
        e = end_of(offset - 1);
      }
    } else {
      if (offset >= old.size()) break;  // malformed change list: nothing left to replace
      b = begin_of(offset);
      e = end_of(offset);
      offset += utf8::sequence_length(static_cast<unsigned char>(old[offset]));
      for (int k = 0; k < -change && offset < old.size(); ++k)
        offset += utf8::sequence_length(static_cast<unsigned char>(old[offset]));
    }
    size_t before = out.size();
    utf8::append(out, cp);
    for (size_t k = before; k < out.size(); ++k) {
      begin.push_back(b);
      end.push_back(e);
    }
  }
  NormalizedText result = owned(std::move(out), std::move(begin), std::move(end));
  result.base_ = base_;
  return result;
}

}  // namespace ts
