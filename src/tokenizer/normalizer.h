// tokenizer.json "normalizer": null, NFC, NFD, NFKC, NFKD or a Sequence of these. Applied to each
// piece of input between added tokens, keeping HF-compatible alignments to the original text.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "tokenizer/normalized_text.h"
#include "tokenizer/unicode_normalize.h"

namespace ts {

class Normalizer {
 public:
  Normalizer() = default;  // no normalization
  // Parses the "normalizer" value (null allowed). `path` is its JSON path. Throws InputError.
  static Normalizer from_json(const json& value, const std::string& file, const std::string& path);

  bool empty() const { return steps_.empty(); }
  NormalizedText apply(NormalizedText text) const;
  // Normalizes a plain string (used for the contents of normalized added tokens).
  std::string apply_to_string(std::string_view text) const;

 private:
  std::vector<UnicodeForm> steps_;
};

}  // namespace ts
