// Prompt datasets: JSONL files, one JSON object per line, with configurable field names.
// A malformed line is an InputError naming "<file>:<line>" and the field.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace ts {

struct Prompt {
  std::string id;      // from id_field (string or integer), else the 0-based line number
  std::string text;    // from prompt_field
  std::string answer;  // from answer_field if present, else empty
};

std::vector<Prompt> prompts_read_jsonl(const std::filesystem::path& path, const std::string& prompt_field,
                                       const std::string& id_field, const std::string& answer_field, int64_t limit = 0);

}  // namespace ts
