// The lexicon annotator: file format and sentence labelling (lexicon.h).
#include "annotate/lexicon.h"

#include <algorithm>

#include "annotate/by_sentence.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/sha256.h"

namespace ts {
namespace {

constexpr const char* UNLABELLED = "unlabelled";

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::string label_list(const std::vector<std::string>& labels) {
  std::string out;
  for (const auto& l : labels) out += (out.empty() ? "" : ", ") + l;
  return out;
}

// The parser's state: the file's sections so far, in order.
struct Parser {
  std::string source;
  const std::vector<std::string>& labels;
  std::vector<LexiconRule> rules;
  int32_t default_label = -1;
  int64_t default_line = 0;
  std::vector<int64_t> section_line;  // per label: line of its header, 0 if none yet
  int32_t section = -1;               // current section's label, -1 before the first
  int64_t section_patterns = 0;

  [[noreturn]] void fail(int64_t line, const std::string& what) const { throw InputError(source, "line " + std::to_string(line), what); }

  int32_t label_index(std::string_view name, int64_t line) const {
    const auto it = std::find(labels.begin(), labels.end(), name);
    if (it == labels.end()) fail(line, "unknown label '" + std::string(name) + "' (labels: " + label_list(labels) + ")");
    return static_cast<int32_t>(it - labels.begin());
  }

  void end_section() const {
    if (section >= 0 && section_patterns == 0)
      fail(section_line[static_cast<size_t>(section)], "empty section [" + labels[static_cast<size_t>(section)] + "]: it holds no pattern");
  }

  void header(std::string_view item, int64_t line) {
    if (item.size() < 3 || item.back() != ']') fail(line, "malformed section header '" + std::string(item) + "' (expected [label])");
    end_section();
    const int32_t label = label_index(trim(item.substr(1, item.size() - 2)), line);
    int64_t& first = section_line[static_cast<size_t>(label)];
    if (first) fail(line, "section [" + labels[static_cast<size_t>(label)] + "] given twice (first at line " + std::to_string(first) + ")");
    first = line;
    section = label;
    section_patterns = 0;
  }

  // Before the first section only "default = LABEL" may appear.
  void preamble(std::string_view item, int64_t line) {
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos || trim(item.substr(0, eq)) != "default")
      fail(line, std::string("'").append(item).append("' outside a section (before the first [label] only `default = LABEL` may appear)"));
    if (default_line) fail(line, "default given twice (first at line " + std::to_string(default_line) + ")");
    const std::string_view value = trim(item.substr(eq + 1));
    default_line = line;
    default_label = value == UNLABELLED ? -1 : label_index(value, line);
  }

  void pattern(std::string_view item, int64_t line) {
    const std::string field = "line " + std::to_string(line);
    Regex regex("(?i)" + std::string(item), source, field);  // throws InputError naming file and line
    std::vector<std::pair<uint32_t, uint32_t>> empty_matches;
    regex.find_all("", empty_matches);
    if (!empty_matches.empty()) fail(line, "pattern '" + std::string(item) + "' matches the empty string, so it would label every sentence");
    rules.push_back({section, line, std::string(item), std::move(regex)});
    ++section_patterns;
  }

  void line(std::string_view raw, int64_t number) {
    const std::string_view item = trim(raw);
    if (item.empty() || item.front() == '#') return;
    if (item.front() == '[') header(item, number);
    else if (section < 0) preamble(item, number);
    else pattern(item, number);
  }
};

}  // namespace

Lexicon Lexicon::parse(std::string_view text, const std::string& source, const std::vector<std::string>& labels) {
  Parser p{source, labels, {}, -1, 0, std::vector<int64_t>(labels.size(), 0), -1, 0};
  int64_t number = 0;
  for (size_t pos = 0; pos <= text.size();) {
    const size_t nl = std::min(text.find('\n', pos), text.size());
    p.line(text.substr(pos, nl - pos), ++number);
    pos = nl + 1;
  }
  p.end_section();
  if (p.rules.empty()) throw InputError(source, "<file>", "no [label] section: the lexicon would label nothing");
  Lexicon lex;
  lex.labels_ = labels;
  lex.rules_ = std::move(p.rules);
  lex.default_label_ = p.default_label;
  lex.source_ = source;
  lex.sha256_ = sha256_hex(text);
  return lex;
}

Lexicon Lexicon::read(const std::filesystem::path& file, const std::vector<std::string>& labels) {
  return parse(read_file(file, " the lexicon (annotate.lexicon)"), file.string(), labels);
}

const LexiconRule* Lexicon::match(std::string_view sentence) const {
  std::vector<std::pair<uint32_t, uint32_t>> matches;
  for (const LexiconRule& rule : rules_) {
    rule.regex.find_all(sentence, matches);
    if (!matches.empty()) return &rule;
  }
  return nullptr;
}

Annotation LexiconAnnotator::annotate(const Trace& trace) const {
  return annotate_by_sentence(trace, [this](std::string_view sentence) -> SentenceVerdict {
    if (const LexiconRule* rule = lexicon_.match(sentence)) return {rule->label, lexicon_.source() + ":" + std::to_string(rule->line), ""};
    if (lexicon_.default_label() >= 0) return {lexicon_.default_label(), "default", ""};
    return {-1, "", "no rule matches and the lexicon has no default label"};
  });
}

}  // namespace ts
