// Prompt datasets: JSONL files, one JSON object per line, with configurable field names.
// A malformed line is an InputError naming "<file>:<line>" and the field.
#pragma once
#include "core/json.h"
#include <filesystem>
#include <nlohmann/json_fwd.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace ts {

struct PromptSpan {
  std::string label;
  int64_t begin = 0, end = 0;  // code points of Prompt::text, 0 <= begin < end <= length
};

// The one id rule of every input row (prompts, traces, generations): a JSON string, or an integer
// taken as its decimal text; non-empty, without control characters (U+0000-U+001F, U+007F), and
// unique within its file. row_id reads and checks one id (errors name `where` and `field`); the
// IdSet checks uniqueness.
std::string row_id(const json& value, const std::string& where, const std::string& field);
class IdSet {
 public:
  // Throws InputError(where, field, "duplicate id ...") when `id` was seen before.
  void add(const std::string& id, const std::string& where, const std::string& field);

 private:
  std::set<std::string> seen_;
};

struct Prompt {
  std::string id;      // from id_field (string or integer), else the 0-based line number
  std::string text;    // from prompt_field
  std::string answer;  // from answer_field if present, else empty
  std::vector<PromptSpan> spans;  // from spans_field when one is asked for: [{"begin", "end", "label"}]
  std::string category, split;    // from the fields "category" and "split" when present
};

// With a non-empty `spans_field`, every line must carry that field (an array, possibly empty) whose
// ranges lie inside the text; a bad span is an InputError naming the line and "<field>[i]".
std::vector<Prompt> prompts_read_jsonl(const std::filesystem::path& path, const std::string& prompt_field,
                                       const std::string& id_field, const std::string& answer_field, int64_t limit = 0,
                                       const std::string& spans_field = "");

// The same for JSONL text already in memory; `name` stands for the file in errors.
std::vector<Prompt> prompts_parse_jsonl(std::string_view text, const std::string& name, const std::string& prompt_field,
                                        const std::string& id_field, const std::string& answer_field, int64_t limit = 0,
                                        const std::string& spans_field = "");

// The spans in field `spans_field` of a JSONL record (an array, possibly empty, of {begin, end,
// label?}), each non-empty and inside [0, length) code points; an InputError names `where` and
// "<spans_field>[i]" otherwise.
std::vector<PromptSpan> spans_parse(const nlohmann::json& record, const std::string& spans_field, int64_t length,
                                    const std::string& where);

// Number of Unicode code points of valid UTF-8 text.
int64_t utf8_length(std::string_view text);

}  // namespace ts
