// PCRE2-backed regex for tokenizer.json patterns, which HF tokenizers compiles with Oniguruma
// (Ruby syntax). Patterns are translated so that they match like Oniguruma:
//   \s \S -> \p{White_Space} / \P{White_Space}     (PCRE2's UCP \s also matches U+180E)
//   \w \W -> letters, marks, decimal digits, connector punctuation
//   \h \H -> hex digit (Ruby), \uHHHH -> \x{HHHH}, (?m) -> (?s) (Ruby's m is dot-all)
//   \p{X} (general categories) -> also the characters Oniguruma's newer Unicode data assigns to X
//   (see unicode_compat.h)
// and compiled in UTF + UCP + MULTILINE mode (Ruby's ^ $ are line anchors), JIT when available.
// Iteration over matches follows the Rust onig crate: an empty match right at the end of the
// previous match is skipped by advancing one character.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ts {

class Regex {
 public:
  // Compiles `pattern` (Oniguruma syntax). Throws InputError(file, field, ...) when it does not compile.
  Regex(std::string_view pattern, const std::string& file, const std::string& field);
  // A regex matching `literal` exactly.
  static Regex literal(std::string_view literal, const std::string& file, const std::string& field);

  // Appends the [begin, end) byte ranges of all matches in `text` (valid UTF-8) to `out`.
  // Throws InputError(file, field) when PCRE2 gives up (match or depth limit).
  void find_all(std::string_view text, std::vector<std::pair<uint32_t, uint32_t>>& out) const;
  // True when the whole of `text` is matched by the pattern starting at offset 0 (anchored).
  bool matches_prefix(std::string_view text, size_t& match_end) const;

  // The pattern after translation to PCRE2 syntax (for tests and error messages).
  const std::string& pcre2_pattern() const;

 private:
  struct Compiled;
  std::shared_ptr<const Compiled> compiled_;
};

// Translates an Oniguruma (Ruby syntax) pattern to PCRE2 syntax; see the file comment.
std::string translate_oniguruma_pattern(std::string_view pattern);

}  // namespace ts
