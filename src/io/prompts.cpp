#include "io/prompts.h"

#include <fstream>
#include <sstream>
#include <set>

#include "core/error.h"
#include "core/json.h"

namespace ts {

namespace {
std::string fmt_hex(unsigned char c) {
  const char* digits = "0123456789ABCDEF";
  return std::string("00") + digits[c >> 4] + digits[c & 15];
}
}  // namespace

std::string row_id(const json& v, const std::string& where, const std::string& field) {
  std::string id;
  if (v.is_string()) id = v.get<std::string>();
  else if (v.is_number_integer()) id = std::to_string(v.get<int64_t>());
  else throw InputError(where, field, "id must be a string or an integer, got " + v.dump().substr(0, 40));
  if (id.empty()) throw InputError(where, field, "id must not be empty");
  for (unsigned char c : id)
    if (c < 0x20 || c == 0x7f) throw InputError(where, field, "id must not contain control characters (found U+" + fmt_hex(c) + ")");
  return id;
}

void IdSet::add(const std::string& id, const std::string& where, const std::string& field) {
  if (!seen_.insert(id).second) throw InputError(where, field, "duplicate id '" + id + "'");
}

namespace {

std::vector<Prompt> prompts_from_stream(std::istream& in, const std::string& name, const std::string& prompt_field,
                                        const std::string& id_field, const std::string& answer_field, int64_t limit,
                                        const std::string& spans_field) {
  std::vector<Prompt> out;
  IdSet ids;
  jsonl_for_each(in, name, [&](const json& obj, const std::string& where, int64_t lineno) {
    Prompt p;
    p.text = json_string(obj, prompt_field, where);
    p.id = obj.contains(id_field) ? row_id(obj[id_field], where, id_field) : std::to_string(lineno - 1);
    ids.add(p.id, where, id_field);
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
  std::error_code ec;
  if (std::filesystem::exists(path, ec) && !std::filesystem::is_regular_file(path, ec))
    throw InputError(path.string(), "data.prompts", "is not a regular file");
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
