// Text being tokenized, together with the alignment of each of its bytes to the original input
// (HF tokenizers' NormalizedString). Offsets reported for tokens are computed from these
// alignments exactly as HF does: a normalized byte range [b, e) maps to the original range
// [begin_of(b), end_of(e - 1)).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ts {

class NormalizedText {
 public:
  NormalizedText() = default;
  // An unmodified slice of the input that starts at input byte `base`: every byte maps to the
  // byte range of the character containing it.
  static NormalizedText borrowed(std::string_view slice, uint32_t base);
  // Text with explicit per-byte alignments (absolute input byte offsets).
  static NormalizedText owned(std::string text, std::vector<uint32_t> begin, std::vector<uint32_t> end);

  std::string_view text() const { return owned_ ? std::string_view(storage_) : borrowed_; }
  size_t size() const { return text().size(); }
  bool is_identity() const { return !owned_; }

  // Original (input) byte range of normalized byte i.
  uint32_t begin_of(size_t i) const;
  uint32_t end_of(size_t i) const;
  // Original range of the normalized range [b, e), e > b.
  std::pair<uint32_t, uint32_t> original_range(size_t b, size_t e) const { return {begin_of(b), end_of(e - 1)}; }

  // Applies an HF-style transformation: `chars` lists the new text as (code point, change) with
  // change 0 = replaces the next character, -N = replaces the next character and removes the N
  // following ones, +1 = inserted (takes the alignment of the previous original byte).
  NormalizedText transformed(const std::vector<std::pair<char32_t, int>>& chars) const;

 private:
  bool owned_ = false;
  std::string_view borrowed_;
  uint32_t base_ = 0;  // input offset where the slice starts
  std::string storage_;
  std::vector<uint32_t> begin_;
  std::vector<uint32_t> end_;
};

}  // namespace ts
