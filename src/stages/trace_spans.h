// Inputs of the stages that read `generate`'s traces with `annotate`'s spans (vectors, attribute): the
// generations as `collect` runs them, the spans file, and the check that the spans were made from
// exactly these generations with this tokenizer. Errors are InputError naming the file and the field;
// `section` ("vectors", "attribute") names the config keys in the messages.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/json.h"
#include "tokenizer/tokenizer.h"

namespace ts::stages {

// One generation as `collect` runs it: prompt tokens, then the generated ids.
struct Generation {
  std::string id;
  std::vector<int32_t> ids;
  int64_t n_prompt = 0;
};
// The `token_ids` of a generations row, each checked to be an id of `tok`; errors name `where` and the field.
std::vector<int32_t> row_token_ids(const json& row, const Tokenizer& tok, const std::string& where);

std::vector<Generation> read_generations(const std::filesystem::path& file, const Tokenizer& tok, const std::string& section);

// The spans file (format thinksteer.spans, stages/annotate.cpp), as read and checked for shape and range.
struct Spans {
  std::string file;
  std::vector<std::string> labels, trace_ids;
  std::vector<int64_t> trace, label, token_begin, token_end;            // per span row
  std::vector<int64_t> span_offset, n_spans, n_tokens, n_prompt_tokens;  // per trace
  json provenance;
};
Spans read_spans(const std::filesystem::path& path, const std::string& section);

// The spans must index these very generations, tokenized by the tokenizer with SHA-256 `tok_sha`.
void check_same_generations(const Spans& s, const std::vector<Generation>& gens, const std::filesystem::path& gen_file,
                            const std::string& gen_sha, const std::string& tok_sha, const std::string& section);

}  // namespace ts::stages
