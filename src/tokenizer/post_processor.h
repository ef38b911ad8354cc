// tokenizer.json "post_processor": null, ByteLevel, TemplateProcessing or a Sequence of these.
//   ByteLevel(trim_offsets=true): offsets exclude the token's leading/trailing spaces (HF
//     process_offsets: counts leading/trailing 'Ġ' or whitespace characters of the token string and
//     shifts the start/end by that many, clamped; with add_prefix_space the single leading space
//     of the first token is kept). It runs whether or not special tokens are added.
//   TemplateProcessing: with add_special_tokens, the "single" template (e.g. BOS $A); template
//     tokens get offsets (0, 0).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/json.h"

namespace ts {

// One token of an encoding being built. Offsets are [begin, end) in code points and bytes.
struct EncodedToken {
  int32_t id;
  int64_t char_begin, char_end;
  int64_t byte_begin, byte_end;
  uint32_t leading_spaces = 0;   // leading 'Ġ'/whitespace characters of the token string
  uint32_t trailing_spaces = 0;  // trailing ones
};

// Leading / trailing characters of `token` that are 'Ġ' (U+0120) or Unicode whitespace.
void count_space_chars(std::string_view token, uint32_t& leading, uint32_t& trailing);

class PostProcessor {
 public:
  PostProcessor() = default;
  static PostProcessor from_json(const json& value, const std::string& file, const std::string& path);

  // Whether apply() reads EncodedToken::leading_spaces / trailing_spaces.
  bool trims_offsets() const;
  void apply(std::vector<EncodedToken>& tokens, bool add_special_tokens) const;

 private:
  struct TemplatePiece {
    bool is_sequence;
    std::vector<EncodedToken> special;  // the template tokens when !is_sequence
  };
  struct Step {
    enum class Kind { byte_level, template_processing } kind = Kind::byte_level;
    bool add_prefix_space = false;
    bool trim_offsets = false;
    std::vector<TemplatePiece> single;
  };
  static void parse_into(const json& value, const std::string& file, const std::string& path, std::vector<Step>& steps);

  std::vector<Step> steps_;
};

}  // namespace ts
