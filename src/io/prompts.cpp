#include "io/prompts.h"

#include <fstream>
#include <sstream>
#include <set>

#include "core/error.h"
#include "core/json.h"

namespace ts {

namespace {

std::vector<Prompt> prompts_from_stream(std::istream& in, const std::string& name, const std::string& prompt_field,
                                        const std::string& id_field, const std::string& answer_field, int64_t limit,
                                        const std::string& spans_field) {
  std::vector<Prompt> out;
  std::set<std::string> ids;
  jsonl_for_each(in, name, [&](const json& obj, const std::string& where, int64_t lineno) {
    Prompt p;
    p.text = json_string(obj, prompt_field, where);
    if (obj.contains(id_field)) {
      const json& id = obj[id_field];
      if (id.is_string()) p.id = id.get<std::string>();
      else if (id.is_number_integer()) p.id = std::to_string(id.get<int64_t>());
      else throw InputError(where, id_field, "id must be a string or an integer");
    } else {
      p.id = std::to_string(lineno - 1);
    }
    if (!ids.insert(p.id).second) throw InputError(where, id_field, "duplicate prompt id '" + p.id + "'");
    if (obj.contains(answer_field)) {
      const json& a = obj[answer_field];
      p.answer = a.is_string() ? a.get<std::string>() : a.dump();
    }
    if (obj.contains("category") && obj["category"].is_string()) p.category = obj["category"].get<std::string>();
    if (obj.contains("split") && obj["split"].is_string()) p.split = obj["split"].get<std::string>();
    if (!spans_field.empty()) p.spans = spans_parse(obj, spans_field, utf8_length(p.text), where);
    out.push_back(std::move(p));
    return limit <= 0 || static_cast<int64_t>(out.size()) < limit;
  });
  if (out.empty()) throw InputError(name, "data.prompts", "no prompts in file");
  return out;
}

}  // namespace

std::vector<Prompt> prompts_read_jsonl(const std::filesystem::path& path, const std::string& prompt_field,
                                       const std::string& id_field, const std::string& answer_field, int64_t limit,
                                       const std::string& spans_field) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path.string(), "data.prompts", "cannot open prompts file");
  return prompts_from_stream(in, path.string(), prompt_field, id_field, answer_field, limit, spans_field);
}

std::vector<Prompt> prompts_parse_jsonl(std::string_view text, const std::string& name, const std::string& prompt_field,
                                        const std::string& id_field, const std::string& answer_field, int64_t limit,
                                        const std::string& spans_field) {
  std::istringstream in{std::string(text)};
  return prompts_from_stream(in, name, prompt_field, id_field, answer_field, limit, spans_field);
}

std::vector<PromptSpan> spans_parse(const json& record, const std::string& spans_field, int64_t length, const std::string& where) {
  const json& spans = json_require(record, spans_field, where);
  if (!spans.is_array()) throw InputError(where, spans_field, "spans must be an array of {begin, end, label}");
  std::vector<PromptSpan> out;
  for (size_t i = 0; i < spans.size(); ++i) {
    const std::string field = spans_field + "[" + std::to_string(i) + "]";
    if (!spans[i].is_object()) throw InputError(where, field, "a span must be an object {begin, end, label}");
    PromptSpan s;
    s.begin = json_int(spans[i], "begin", where, field);
    s.end = json_int(spans[i], "end", where, field);
    if (spans[i].contains("label")) s.label = json_string(spans[i], "label", where, field);
    if (s.begin < 0 || s.end <= s.begin || s.end > length)
      throw InputError(where, field, "span [" + std::to_string(s.begin) + ", " + std::to_string(s.end) + ") is empty or outside the text (" +
                                         std::to_string(length) + " code points)");
    out.push_back(std::move(s));
  }
  return out;
}

int64_t utf8_length(std::string_view text) {
  int64_t n = 0;
  for (unsigned char c : text) n += (c & 0xC0) != 0x80;
  return n;
}

}  // namespace ts
