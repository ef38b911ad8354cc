#include "tokenizer/pre_tokenizer.h"

#include <utf8proc.h>

#include "core/utf8.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/json_fields.h"
#include "tokenizer/unicode_compat.h"

namespace ts {

namespace {

// Rust's char::is_numeric: general category Nd, Nl or No.
bool is_numeric(char32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  auto category = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  if (category == UTF8PROC_CATEGORY_CN) return unicode_compat::recent_category(cp).starts_with("N");
  return category == UTF8PROC_CATEGORY_ND || category == UTF8PROC_CATEGORY_NL || category == UTF8PROC_CATEGORY_NO;
}

// Rewrites the text of `p` so that it contains exactly its pieces, each optionally preceded by a
// space (aligned like HF's NormalizedString::prepend: to the piece's first character) and mapped
// to the byte-level alphabet when the mapping was deferred.
void materialize(Pieces& p, const std::vector<bool>* prefix_space) {
  const NormalizedText& src = *p.text;
  std::string_view text = src.text();
  std::string out;
  std::vector<uint32_t> begin, end;
  std::vector<ByteRange> ranges;
  ranges.reserve(p.ranges.size());
  auto push = [&](std::string_view bytes, uint32_t b, uint32_t e) {
    out.append(bytes);
    begin.insert(begin.end(), bytes.size(), b);
    end.insert(end.end(), bytes.size(), e);
  };
  std::string mapped;
  for (size_t i = 0; i < p.ranges.size(); ++i) {
    const ByteRange r = p.ranges[i];
    uint32_t start = static_cast<uint32_t>(out.size());
    if (prefix_space && (*prefix_space)[i]) push(" ", src.begin_of(r.begin), src.end_of(r.begin));
    for (uint32_t k = r.begin; k < r.end; ++k) {
      std::string_view bytes = text.substr(k, 1);
      if (p.byte_level) {
        mapped.clear();
        byte_level::encode_append(mapped, bytes);
        bytes = mapped;
      }
      push(bytes, src.begin_of(k), src.end_of(k));
    }
    ranges.push_back({start, static_cast<uint32_t>(out.size())});
  }
  p.owned = NormalizedText::owned(std::move(out), std::move(begin), std::move(end));
  p.text = &*p.owned;
  p.ranges = std::move(ranges);
  p.byte_level = false;
}

}  // namespace

void PreTokenizer::parse_into(const json& value, const std::string& file, const std::string& path,
                              std::vector<Step>& steps) {
  tokjson::Where where{file, path};
  if (value.is_null()) return;
  std::string type = tokjson::component_type(value, where);
  if (type == "Sequence") {
    tokjson::for_each_sequence_item(value, "pretokenizers", "pre-tokenizer", where, [&](const json& item, const tokjson::Where& item_where) {
      parse_into(item, file, item_where.path, steps);
    });
  } else if (type == "Split") {
    Step step{Step::Kind::split, nullptr};
    const json& pattern = json_require(value, "pattern", file, path);
    tokjson::Where pattern_where = where.field("pattern");
    tokjson::require_object(pattern, pattern_where);
    if (pattern.size() != 1) pattern_where.fail("expected exactly one of \"Regex\" or \"String\"");
    if (pattern.contains("Regex")) {
      std::string regex = tokjson::require_string(pattern, "Regex", pattern_where);
      step.regex = std::make_shared<const Regex>(regex, file, pattern_where.field("Regex").path);
    } else if (pattern.contains("String")) {
      std::string literal = tokjson::require_string(pattern, "String", pattern_where);
      step.regex = std::make_shared<const Regex>(Regex::literal(literal, file, pattern_where.field("String").path));
    } else {
      pattern_where.fail("expected exactly one of \"Regex\" or \"String\"");
    }
    std::string behavior = tokjson::require_string(value, "behavior", where);
    auto parsed = split_behavior_from_name(behavior);
    if (!parsed)
      where.field("behavior").fail("unknown split behavior '" + behavior +
                                   "' (expected Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous)");
    step.behavior = *parsed;
    step.invert = tokjson::optional_bool(value, "invert", false, where);
    steps.push_back(std::move(step));
  } else if (type == "ByteLevel") {
    Step step{Step::Kind::byte_level, nullptr};
    step.add_prefix_space = tokjson::optional_bool(value, "add_prefix_space", true, where);
    tokjson::optional_bool(value, "trim_offsets", true, where);  // only meaningful for the post-processor
    if (tokjson::optional_bool(value, "use_regex", true, where))
      step.regex = std::make_shared<const Regex>(byte_level::kGpt2Pattern, file, where.field("use_regex").path);
    steps.push_back(std::move(step));
  } else if (type == "Digits") {
    Step step{Step::Kind::digits, nullptr};
    step.individual_digits = tokjson::optional_bool(value, "individual_digits", false, where);
    step.behavior = step.individual_digits ? SplitBehavior::isolated : SplitBehavior::contiguous;
    steps.push_back(std::move(step));
  } else {
    where.field("type").fail("unsupported pre-tokenizer type '" + type +
                             "' (supported: Sequence, Split, ByteLevel, Digits)");
  }
}

PreTokenizer PreTokenizer::from_json(const json& value, const std::string& file, const std::string& path) {
  PreTokenizer p;
  parse_into(value, file, path, p.steps_);
  return p;
}

void PreTokenizer::apply(Pieces& p) const {
  std::vector<std::pair<uint32_t, uint32_t>> matches;
  std::vector<MatchSpan> spans;
  std::vector<ByteRange> next;

  auto split_all = [&](const Regex* regex, SplitBehavior behavior, bool invert) {
    next.clear();
    next.reserve(p.ranges.size() + 8);
    std::string_view text = p.text->text();
    for (const ByteRange r : p.ranges) {
      std::string_view piece = text.substr(r.begin, r.end - r.begin);
      matches.clear();
      if (regex) {
        regex->find_all(piece, matches);
      } else {  // Digits: every numeric character is a match
        for (size_t i = 0; i < piece.size();) {
          size_t start = i;
          if (is_numeric(utf8::next(piece, i)))
            matches.emplace_back(static_cast<uint32_t>(start), static_cast<uint32_t>(i));
        }
      }
      segment_by_matches(matches, static_cast<uint32_t>(piece.size()), spans);
      apply_split_behavior(spans, behavior, invert, r.begin, next);
    }
    p.ranges.swap(next);
  };

  for (const Step& step : steps_) {
    switch (step.kind) {
      case Step::Kind::split:
        if (p.byte_level) materialize(p, nullptr);
        split_all(step.regex.get(), step.behavior, step.invert);
        break;
      case Step::Kind::digits:
        if (p.byte_level) materialize(p, nullptr);
        split_all(nullptr, step.behavior, false);
        break;
      case Step::Kind::byte_level: {
        if (p.byte_level) materialize(p, nullptr);
        if (step.add_prefix_space) {
          std::vector<bool> prefix(p.ranges.size());
          bool any = false;
          std::string_view text = p.text->text();
          for (size_t i = 0; i < p.ranges.size(); ++i) {
            prefix[i] = text[p.ranges[i].begin] != ' ';
            any = any || prefix[i];
          }
          if (any) materialize(p, &prefix);
        }
        if (step.regex) split_all(step.regex.get(), SplitBehavior::isolated, false);
        p.byte_level = true;
        break;
      }
    }
  }
}

}  // namespace ts
