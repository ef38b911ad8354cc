// The `lexicon` annotator: every §B.3 sentence of the annotated part gets the label of the first
// rule, in priority order, whose pattern occurs in it. Offline, deterministic, and the default of
// `thinksteer annotate` (docs/decisions.md). The rules live in a file a user edits; the shipped one is
// configs/annotate/lexicon.txt (compiled into the executable, see src/CMakeLists.txt).
//
// File format (UTF-8, one item per line; white space around an item is ignored):
//   # text            a comment: a line whose first non-blank character is '#'
//   default = LABEL   before the first section, at most once: the label of sentences no pattern
//                     matches, or `unlabelled` (the default) to leave them without a span; those are
//                     then reported as problems (unlabelled_sentence)
//   [LABEL]           starts the section of LABEL, one of the labels (the six of docs/algorithms.md §A.3);
//                     each label at most once, and every section holds at least one pattern
//   PATTERN           a regular expression searched anywhere in the sentence, case-insensitive,
//                     in the syntax of tokenizer/regex.h (PCRE2 with UTF and Unicode properties:
//                     \b, \w and \s are Unicode-aware; as in tokenizer.json, \h means a hex digit
//                     and (?m) dot-all). A line starting with '[' is a header, so a pattern cannot
//                     start with '[' (write (?:[...]...) instead). A pattern that matches the empty
//                     string would label every sentence and is an error.
// Priority: sections in file order, and patterns in file order within a section; the first pattern
// that matches decides (put the most specific behaviours first). Errors are InputError naming the
// file, "line N" and the problem.
#pragma once
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "annotate/annotator.h"
#include "tokenizer/regex.h"

namespace ts {

struct LexiconRule {
  int32_t label = 0;    // index into Lexicon::labels()
  int64_t line = 0;     // 1-based line of the pattern in the file
  std::string pattern;  // as written
  Regex regex;          // compiled case-insensitive
};

class Lexicon {
 public:
  // Parses lexicon text; `source` names it in errors and rules. Throws InputError(source, "line N", ...).
  static Lexicon parse(std::string_view text, const std::string& source, const std::vector<std::string>& labels = behaviour_labels());
  // Reads and parses a file. Throws InputError (unreadable file, or as parse()).
  static Lexicon read(const std::filesystem::path& file, const std::vector<std::string>& labels = behaviour_labels());

  const std::vector<std::string>& labels() const { return labels_; }
  const std::vector<LexiconRule>& rules() const { return rules_; }  // in priority order
  int32_t default_label() const { return default_label_; }         // -1: unlabelled
  const std::string& source() const { return source_; }
  const std::string& sha256() const { return sha256_; }  // of the text: the lexicon's identity

  // The first rule, in priority order, whose pattern occurs in `sentence` (valid UTF-8); nullptr if none.
  const LexiconRule* match(std::string_view sentence) const;

 private:
  std::vector<std::string> labels_;
  std::vector<LexiconRule> rules_;
  int32_t default_label_ = -1;
  std::string source_, sha256_;
};

class LexiconAnnotator : public Annotator {
 public:
  explicit LexiconAnnotator(Lexicon lexicon) : lexicon_(std::move(lexicon)) {}
  std::string name() const override { return "lexicon"; }
  const std::vector<std::string>& labels() const override { return lexicon_.labels(); }
  std::string identity() const override { return "lexicon sha256 " + lexicon_.sha256(); }
  // One span per sentence of [begin, end) with at least 3 words: the matching rule's label (rule
  // "<file>:<line>"), else the default label (rule "default"). Problems: unlabelled_sentence (no
  // rule and no default label), short_fragment (a piece under 3 words, §B.3), no_sentences.
  Annotation annotate(const Trace& trace) const override;
  const Lexicon& lexicon() const { return lexicon_; }

 private:
  Lexicon lexicon_;
};

}  // namespace ts
