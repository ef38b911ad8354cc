#include "artifacts/generations.h"

#include <algorithm>
#include <fstream>

#include "core/error.h"
#include "io/prompts.h"

namespace ts::artifacts {
namespace fs = std::filesystem;

std::vector<h5::DatasetSpec> generations_datasets(int64_t n, int64_t n_tokens, int64_t n_prompt_tokens) {
  using h5::DType;
  const std::vector<int64_t> per_prompt = {n};
  return {
      {"/prompts/n_prompt_tokens", DType::I64, per_prompt, {"prompt"}, {{"description", "tokens of the formatted prompt"}}},
      {"/prompts/n_new_tokens", DType::I64, per_prompt, {"prompt"}, {{"description", "generated tokens (including EOS)"}}},
      {"/prompts/n_thinking_tokens", DType::I64, per_prompt, {"prompt"}, {{"description", "generated tokens before </think> (all if unclosed)"}}},
      {"/prompts/thinking_closed", DType::U8, per_prompt, {"prompt"}, {{"description", "1 if the trace closed </think>"}}},
      {"/prompts/token_offset", DType::I64, per_prompt, {"prompt"}, {{"description", "first row of this prompt in /tokens"}}},
      {"/prompts/prompt_token_offset", DType::I64, per_prompt, {"prompt"}, {{"description", "first row of this prompt in /prompt_tokens"}}},
      {"/tokens/id", DType::I32, {n_tokens}, {"token"}, {{"description", "generated token ids of every prompt, back to back"}}},
      {"/tokens/prompt_index", DType::I64, {n_tokens}, {"token"}, {{"description", "row in /prompts"}}},
      {"/prompt_tokens/id", DType::I32, {n_prompt_tokens}, {"prompt_token"}, {{"description", "formatted prompt token ids, back to back"}}},
  };
}

std::vector<std::pair<int64_t, int64_t>> generated_token_offsets(const Tokenizer& tok, const std::vector<int32_t>& ids, int64_t base) {
  // O(n): each piece is decoded from the last point where the text ended on a complete character;
  // a piece ending in U+FFFD ends inside a character.
  std::vector<std::pair<int64_t, int64_t>> out(ids.size());
  size_t clean = 0;
  int64_t clean_len = base, prev_end = base;
  bool prev_partial = false;
  for (size_t j = 0; j < ids.size(); ++j) {
    const std::string piece = tok.decode(std::span<const int32_t>(ids.data() + clean, j + 1 - clean));
    const bool partial = piece.size() >= 3 && piece.compare(piece.size() - 3, 3, "\xEF\xBF\xBD") == 0;
    const int64_t end = clean_len + utf8_length(piece);
    const int64_t begin = std::min(end, prev_partial ? prev_end - 1 : prev_end);  // a split character starts before
    out[j] = {begin, end};
    prev_end = end;
    prev_partial = partial;
    if (!partial) {
      clean = j + 1;
      clean_len = end;
    }
  }
  return out;
}

TokenSequence generation_sequence(const Tokenizer& tok, const std::string& prompt_text, const std::vector<int32_t>& generated) {
  TokenSequence s;
  Encoding e = tok.encode(prompt_text);
  s.ids = std::move(e.ids);
  s.offsets = std::move(e.offsets);
  s.n_prompt = static_cast<int64_t>(s.ids.size());
  s.prompt_chars = utf8_length(prompt_text);
  s.prompt_bytes = prompt_text.size();
  s.text = prompt_text + tok.decode(generated);
  const auto gen_offsets = generated_token_offsets(tok, generated, s.prompt_chars);
  s.ids.insert(s.ids.end(), generated.begin(), generated.end());
  s.offsets.insert(s.offsets.end(), gen_offsets.begin(), gen_offsets.end());
  return s;
}

ThinkingLength thinking_length(std::span<const int32_t> generated, std::optional<int32_t> think_close) {
  ThinkingLength t{static_cast<int64_t>(generated.size()), false};
  if (think_close)
    if (auto it = std::find(generated.begin(), generated.end(), *think_close); it != generated.end()) t = {it - generated.begin(), true};
  return t;
}

std::vector<int32_t> row_token_ids(const json& row, const Tokenizer& tok, const std::string& where) {
  const json& ids = json_require(row, "token_ids", where);
  if (!ids.is_array()) throw InputError(where, "token_ids", "must be an array of token ids");
  std::vector<int32_t> out;
  out.reserve(ids.size());
  for (const json& t : ids) {
    if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= tok.vocab_size())
      throw InputError(where, "token_ids", "not a token id of this tokenizer: " + t.dump());
    out.push_back(t.get<int32_t>());
  }
  return out;
}

std::vector<Generation> read_generations(const fs::path& file, const Tokenizer& tok, const std::string& key, std::vector<TokenSequence>* sequences) {
  std::ifstream in(file);
  if (!in) throw InputError(file.string(), key, "cannot open the generations (run `thinksteer generate` first, or set " + key + ")");
  std::vector<Generation> out;
  IdSet ids;
  jsonl_for_each(in, file.string(), [&](const json& row, const std::string& where, int64_t) {
    const std::string id = row_id(json_require(row, "id", where), where, "id");
    ids.add(id, where, "id");
    const std::string prompt_text = json_string(row, "prompt_text", where);
    TokenSequence q = generation_sequence(tok, prompt_text, row_token_ids(row, tok, where));
    if (sequences) {
      if (q.text.compare(q.prompt_bytes, std::string::npos, json_string(row, "text", where)) != 0)
        throw InputError(where, "text", "is not the decoding of token_ids (was the file edited?)");
      sequences->push_back(q);
    }
    out.push_back({id, std::move(q.ids), q.n_prompt});
    return true;
  });
  if (out.empty()) throw InputError(file.string(), key, "no generations in the file");
  verify_committed(file, key);
  return out;
}

}  // namespace ts::artifacts
