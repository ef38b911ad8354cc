// Artifact `generations` (docs/run-layout.md): the traces `generate` writes,
// <run.dir>/generate/generations.h5 (format thinksteer.generations) and generations.jsonl (one row per
// prompt: id, prompt, prompt_text, prompt_tokens, token_ids, text, thinking, answer_text,
// thinking_closed, n_new_tokens, n_thinking_tokens, finish_reason, reference_answer).
// Readers take the JSONL (every later stage needs prompt_text and token_ids, nothing else).
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "artifacts/artifact.h"
#include "core/json.h"
#include "tokenizer/tokenizer.h"

namespace ts::artifacts {

inline constexpr Format GENERATIONS{"thinksteer.generations", 1, "generate"};
inline constexpr Location GENERATIONS_H5{"generate", "generations.h5"};
inline constexpr Location GENERATIONS_JSONL{"generate", "generations.jsonl"};
inline constexpr Location GENERATIONS_PROGRESS{"generate", "generations.progress.jsonl"};

// The numeric datasets of generations.h5 for n prompts, `n_tokens` generated tokens and
// `n_prompt_tokens` prompt tokens over all prompts (back to back). The strings beside them:
// /prompts/{id, user_prompt, prompt_text, reference_answer, text, thinking, answer_text, finish_reason}.
std::vector<h5::DatasetSpec> generations_datasets(int64_t n, int64_t n_tokens, int64_t n_prompt_tokens);

// The token sequence of one generation (a row of generations.jsonl) as `collect` with source =
// generations runs it: prompt_text encoded without added special tokens (the chat format already
// holds them), then the generated ids. `text` = prompt_text + decode(generated); `offsets` are code
// points of `text`, the tokenizer's for the prompt tokens and, for generated tokens, every character
// a token contributes bytes to (generated_token_offsets).
struct TokenSequence {
  std::string text;
  std::vector<int32_t> ids;
  std::vector<std::pair<int64_t, int64_t>> offsets;
  int64_t n_prompt = 0;       // prompt tokens
  int64_t prompt_chars = 0;   // code points of prompt_text: where the generated text starts in `text`
  size_t prompt_bytes = 0;    // the same in bytes
};
TokenSequence generation_sequence(const Tokenizer& tok, const std::string& prompt_text, const std::vector<int32_t>& generated);

// Code-point ranges of generated tokens inside decode(ids), shifted by `base`, with the tokenizer's
// convention for prompt tokens (HF `offsets`): a token covers every character it contributes bytes
// to, so the tokens of a character split across tokens all cover it.
std::vector<std::pair<int64_t, int64_t>> generated_token_offsets(const Tokenizer& tok, const std::vector<int32_t>& ids, int64_t base);

// Thinking length of generated tokens: the tokens before the first </think>, and whether there is one
// (without a </think> token in the vocabulary, or in the tokens, every token is thinking).
struct ThinkingLength {
  int64_t tokens = 0;
  bool closed = false;
};
ThinkingLength thinking_length(std::span<const int32_t> generated, std::optional<int32_t> think_close);

// One generation as `collect` runs it: prompt tokens, then the generated ids.
struct Generation {
  std::string id;
  std::vector<int32_t> ids;
  int64_t n_prompt = 0;
};
// The `token_ids` of a generations row, each checked to be an id of `tok`; errors name `where` and the field.
std::vector<int32_t> row_token_ids(const json& row, const Tokenizer& tok, const std::string& where);

// Every row of a generations JSONL; `key` is the config key that points at it (for messages). With
// `sequences`, also each row's TokenSequence (text and token offsets, for stages that map characters
// to tokens), in the same order; then a row's `text` must be the decoding of its token_ids.
std::vector<Generation> read_generations(const std::filesystem::path& file, const Tokenizer& tok, const std::string& key,
                                         std::vector<TokenSequence>* sequences = nullptr);

}  // namespace ts::artifacts
