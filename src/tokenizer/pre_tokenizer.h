// tokenizer.json "pre_tokenizer": null, Split, ByteLevel, Digits or a Sequence of these.
// Splits one normalized piece of input into the words the model encodes, with HF semantics:
//   Split     : {"Regex": ...} or {"String": ...} pattern, behavior, invert (see split_behavior.h)
//   Digits    : every numeric character (general category N*) isolated, or runs kept together
//   ByteLevel : optional prefix space (per piece, like HF), optional GPT-2 regex split, then every
//               byte is mapped to the byte-level alphabet.
// The byte-level mapping is deferred (Pieces::byte_level) so the model can work on raw bytes; it
// is only materialized when a later step needs to look at the mapped text.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/json.h"
#include "tokenizer/normalized_text.h"
#include "tokenizer/regex.h"
#include "tokenizer/split_behavior.h"

namespace ts {

// The words of one normalized piece of input. Not copyable: `text` may point into `owned`.
struct Pieces {
  Pieces() = default;
  Pieces(const Pieces&) = delete;
  Pieces& operator=(const Pieces&) = delete;

  const NormalizedText* text = nullptr;  // the text the ranges index into
  std::optional<NormalizedText> owned;   // set when a step had to rewrite the text
  std::vector<ByteRange> ranges;         // non-empty, in order
  bool byte_level = false;               // ranges still need the byte-level mapping
};

class PreTokenizer {
 public:
  PreTokenizer() = default;  // no pre-tokenization: the whole piece is one word
  // Parses the "pre_tokenizer" value (null allowed). Throws InputError naming the field.
  static PreTokenizer from_json(const json& value, const std::string& file, const std::string& path);

  // Splits `pieces` in place.
  void apply(Pieces& pieces) const;

 private:
  struct Step {
    enum class Kind { split, digits, byte_level } kind;
    std::shared_ptr<const Regex> regex;  // split pattern, or the GPT-2 regex of ByteLevel(use_regex)
    SplitBehavior behavior = SplitBehavior::isolated;
    bool invert = false;
    bool individual_digits = false;
    bool add_prefix_space = false;
  };
  static void parse_into(const json& value, const std::string& file, const std::string& path, std::vector<Step>& steps);

  std::vector<Step> steps_;
};

}  // namespace ts
