// tokenizer.json "model" of type BPE: vocabulary, ranked merges and the merge loop.
//
// Supported: merges as "a b" strings or ["a", "b"] pairs, ignore_merges, unk_token/fuse_unk,
// dropout null or 0. Rejected with InputError: byte_fallback true, non-empty
// continuing_subword_prefix / end_of_word_suffix, dropout > 0.
// Words are encoded either as text (each UTF-8 character is an initial symbol) or, when the
// pre-tokenizer deferred the byte-level mapping, as raw bytes read in the byte-level alphabet.
// Merging follows HF: repeatedly apply the lowest-rank merge, leftmost first.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/json.h"
#include "tokenizer/merge_table.h"
#include "tokenizer/word_cache.h"

namespace ts {

class BpeModel {
 public:
  // Parses the "model" object. Throws InputError naming the field (e.g. "model.merges[12]").
  static std::unique_ptr<BpeModel> from_json(const json& model, const std::string& file, const std::string& path);

  // Appends the tokens of one non-empty word. `byte_level`: `word` holds raw bytes to be read in
  // the byte-level alphabet. Token lengths are in bytes of `word` and add up as in HF (a dropped
  // unknown character without unk_token shifts the following offsets, exactly like HF).
  void tokenize(std::string_view word, bool byte_level, std::vector<WordToken>& out) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  // The token string of `id`, or nullptr.
  const std::string* id_to_token(int32_t id) const;
  int32_t max_id() const { return static_cast<int32_t>(id_index_.size()) - 1; }
  size_t size() const { return tokens_.size(); }

 private:
  BpeModel() = default;
  // from_json's parts: model.vocab (with the id index), then model.merges (which need the vocab).
  void read_vocab(const json& model, const std::string& file, const std::string& path);
  void read_merges(const json& model, const std::string& file, const std::string& path);
  void merge_symbols(std::vector<WordToken>& symbols) const;
  void merge_symbols_heap(std::vector<WordToken>& symbols) const;

  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using Vocab = std::unordered_map<std::string, int32_t, Hash, std::equal_to<>>;

  Vocab vocab_;                     // token string -> id
  std::vector<std::string> tokens_;  // token strings in vocab order
  std::vector<int32_t> id_index_;    // id -> index into tokens_, -1 for unused ids
  MergeTable merges_;
  std::array<int32_t, 256> byte_ids_{};  // raw byte -> id of its byte-level character token, or -1
  Vocab raw_vocab_;  // raw bytes -> id, for ignore_merges on byte-level words
  bool ignore_merges_ = false;
  bool unique_merge_results_ = false;  // every merged token has exactly one merge rule
  std::optional<int32_t> unk_id_;
  bool fuse_unk_ = false;
  mutable WordCache cache_bytes_;
  mutable WordCache cache_text_;
};

}  // namespace ts
