// HF-compatible tokenizer loaded from a tokenizer.json (the byte-level BPE tokenizers of the Qwen2,
// Qwen2.5/QwQ, Llama-3/3.1 and DeepSeek-R1-Distill families). encode() gives the same ids and
// offsets as Python `tokenizers` (0.23), decode() the same text.
//
// Pipeline (tokenizer.json field -> file):
//   added_tokens   -> added_vocabulary.h  (matched first, in the raw text / normalized text)
//   normalizer     -> normalizer.h        (NFC/NFD/NFKC/NFKD/Sequence, offsets stay aligned)
//   pre_tokenizer  -> pre_tokenizer.h     (Split/ByteLevel/Digits/Sequence)
//   model          -> bpe_model.h         (BPE with ranked merges, word cache)
//   post_processor -> post_processor.h    (ByteLevel offset trimming, TemplateProcessing)
//   decoder        -> decoder.h           (ByteLevel)
// Every malformed or unsupported input throws ts::InputError naming the file and the JSON field.
// A Tokenizer is immutable after loading; encode/decode are thread-safe and copies share state.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace ts {

struct Encoding {
  std::vector<int32_t> ids;
  // [begin, end) in Unicode code points of the input: identical to Python tokenizers'
  // Encoding.offsets. Template tokens (e.g. BOS) have (0, 0).
  std::vector<std::pair<int64_t, int64_t>> offsets;
  // The same ranges in UTF-8 bytes (what the Rust crate reports with byte offsets).
  std::vector<std::pair<int64_t, int64_t>> byte_offsets;
};

class Tokenizer {
 public:
  // Loads a tokenizer.json. Throws InputError (unreadable file, bad JSON, unsupported component).
  static Tokenizer from_file(const std::filesystem::path& tokenizer_json);
  static Tokenizer from_json_text(std::string_view text, const std::string& file_for_errors);

  // Tokenizes valid UTF-8 text (InputError otherwise). add_special_tokens applies the
  // post-processor template (e.g. BOS + text for Llama-3); special tokens written in the text are
  // always recognized as added tokens.
  Encoding encode(std::string_view text, bool add_special_tokens = false) const;
  std::vector<int32_t> encode_ids(std::string_view text, bool add_special_tokens = false) const;

  // Ids unknown to the vocabulary are skipped, like HF. skip_special_tokens drops added tokens
  // marked special.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  // The token string (added token content or model vocabulary entry). Throws std::out_of_range.
  std::string id_to_token(int32_t id) const;
  // Model vocabulary and added tokens: the largest id + 1.
  int64_t vocab_size() const;
  bool is_special(int32_t id) const;

 private:
  struct Impl;
  explicit Tokenizer(std::shared_ptr<const Impl> impl);
  static Tokenizer from_json_tree(const nlohmann::json& root, const std::string& file_for_errors);
  void encode_into(std::string_view text, bool add_special_tokens, bool with_offsets, Encoding& out) const;

  std::shared_ptr<const Impl> impl_;
};

}  // namespace ts
