#include "tokenizer/post_processor.h"

#include <algorithm>

#include "core/utf8.h"
#include "tokenizer/json_fields.h"

namespace ts {

namespace {

bool is_space_char(char32_t c) { return c == 0x120 || utf8::is_white_space(c); }

void trim_offsets(std::vector<EncodedToken>& tokens, bool add_prefix_space) {
  for (size_t i = 0; i < tokens.size(); ++i) {
    EncodedToken& t = tokens[i];
    uint32_t leading = t.leading_spaces;
    const uint32_t trailing = t.trailing_spaces;
    auto trim = [&](int64_t& begin, int64_t& end) {
      if (leading > 0) {
        uint32_t lead = leading;
        bool is_first = i == 0 || begin == 0;
        if (is_first && add_prefix_space && lead == 1) lead = 0;
        begin = std::min(begin + static_cast<int64_t>(lead), end);
      }
      if (trailing > 0 && end >= static_cast<int64_t>(trailing)) end = std::max(end - static_cast<int64_t>(trailing), begin);
    };
    trim(t.char_begin, t.char_end);
    trim(t.byte_begin, t.byte_end);
  }
}

}  // namespace

void count_space_chars(std::string_view token, uint32_t& leading, uint32_t& trailing) {
  std::vector<char32_t> chars;
  for (size_t i = 0; i < token.size();) chars.push_back(utf8::next(token, i));
  leading = 0;
  while (leading < chars.size() && is_space_char(chars[leading])) ++leading;
  trailing = 0;
  while (trailing < chars.size() && is_space_char(chars[chars.size() - 1 - trailing])) ++trailing;
}

void PostProcessor::parse_into(const json& value, const std::string& file, const std::string& path,
                               std::vector<Step>& steps) {
  tokjson::Where where{file, path};
  if (value.is_null()) return;
  std::string type = tokjson::component_type(value, where);
  if (type == "Sequence") {
    tokjson::for_each_sequence_item(value, "processors", "post-processor", where, [&](const json& item, const tokjson::Where& item_where) {
      parse_into(item, file, item_where.path, steps);
    });
  } else if (type == "ByteLevel") {
    Step step;
    step.kind = Step::Kind::byte_level;
    step.add_prefix_space = tokjson::optional_bool(value, "add_prefix_space", true, where);
    step.trim_offsets = tokjson::optional_bool(value, "trim_offsets", true, where);
    tokjson::optional_bool(value, "use_regex", true, where);
    steps.push_back(std::move(step));
  } else if (type == "TemplateProcessing") {
    Step step;
    step.kind = Step::Kind::template_processing;
    const json& specials = json_require(value, "special_tokens", file, path);
    tokjson::Where specials_where = where.field("special_tokens");
    tokjson::require_object(specials, specials_where);
    const json& single = tokjson::require_array(value, "single", where);
    tokjson::Where single_where = where.field("single");
    for (size_t i = 0; i < single.size(); ++i) {
      tokjson::Where w = single_where.index(i);
      const json& item = tokjson::require_object(single[i], w);
      if (item.size() != 1) w.fail("expected exactly one of \"Sequence\" or \"SpecialToken\"");
      if (item.contains("Sequence")) {
        std::string id = tokjson::require_string(item["Sequence"], "id", w.field("Sequence"));
        if (id != "A") w.field("Sequence").field("id").fail("the single template can only use sequence \"A\"");
        step.single.push_back({true, {}});
      } else if (item.contains("SpecialToken")) {
        std::string name = tokjson::require_string(item["SpecialToken"], "id", w.field("SpecialToken"));
        auto it = specials.find(name);
        if (it == specials.end())
          w.field("SpecialToken").field("id").fail("'" + name + "' is not listed in special_tokens");
        tokjson::Where sw = specials_where.field(name);
        const json& ids = tokjson::require_array(*it, "ids", sw);
        const json& strings = tokjson::require_array(*it, "tokens", sw);
        if (ids.size() != strings.size()) sw.fail("\"ids\" and \"tokens\" must have the same length");
        TemplatePiece piece{false, {}};
        for (size_t k = 0; k < ids.size(); ++k) {
          if (!ids[k].is_number_integer() || ids[k].get<int64_t>() < 0 || ids[k].get<int64_t>() > (int64_t{1} << 24) - 1)
            sw.field("ids").index(k).fail("expected a token id between 0 and 16777215");
          if (!strings[k].is_string()) sw.field("tokens").index(k).fail("expected a string");
          EncodedToken t{static_cast<int32_t>(ids[k].get<int64_t>()), 0, 0, 0, 0};
          count_space_chars(strings[k].get_ref<const std::string&>(), t.leading_spaces, t.trailing_spaces);
          piece.special.push_back(t);
        }
        step.single.push_back(std::move(piece));
      } else {
        w.fail("expected exactly one of \"Sequence\" or \"SpecialToken\"");
      }
    }
    steps.push_back(std::move(step));
  } else {
    where.field("type").fail("unsupported post-processor type '" + type +
                             "' (supported: ByteLevel, TemplateProcessing, Sequence)");
  }
}

PostProcessor PostProcessor::from_json(const json& value, const std::string& file, const std::string& path) {
  PostProcessor p;
  parse_into(value, file, path, p.steps_);
  return p;
}

bool PostProcessor::trims_offsets() const {
  return std::any_of(steps_.begin(), steps_.end(),
                     [](const Step& s) { return s.kind == Step::Kind::byte_level && s.trim_offsets; });
}

void PostProcessor::apply(std::vector<EncodedToken>& tokens, bool add_special_tokens) const {
  for (const Step& step : steps_) {
    if (step.kind == Step::Kind::byte_level) {
      if (step.trim_offsets) trim_offsets(tokens, step.add_prefix_space);
    } else if (add_special_tokens) {
      std::vector<EncodedToken> out;
      out.reserve(tokens.size() + 4);
      for (const TemplatePiece& piece : step.single) {
        if (piece.is_sequence)
          out.insert(out.end(), tokens.begin(), tokens.end());
        else
          out.insert(out.end(), piece.special.begin(), piece.special.end());
      }
      tokens = std::move(out);
    }
  }
}

}  // namespace ts
