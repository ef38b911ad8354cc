// tokenizer.json "added_tokens": tokens matched in the text before the model runs.
//
// HF semantics: tokens with normalized=false are searched in the raw input, the remaining gaps are
// normalized and then searched for the normalized=true tokens (whose contents are normalized the
// same way). Matching is leftmost-longest, non-overlapping (HF uses Aho-Corasick with
// MatchKind::LeftmostLongest). single_word drops a match touching a word character (\w) on either
// side; lstrip / rstrip extend the match over adjacent Unicode whitespace.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/json.h"

namespace ts {

class BpeModel;
class Normalizer;

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
};

// A piece of text produced by splitting on added tokens: a gap (token_id < 0) or a token.
struct AddedSpan {
  int32_t token_id;
  uint32_t begin;
  uint32_t end;
};

class AddedVocabulary {
 public:
  // Parses "added_tokens" (null or missing allowed). Contents of normalized tokens are normalized
  // with `normalizer` for matching. Throws InputError naming the field (e.g. "added_tokens[3].id").
  static AddedVocabulary from_json(const json* value, const std::string& file, const BpeModel& model,
                                   const Normalizer& normalizer);

  // Splits `text` (valid UTF-8) into gaps and tokens of the raw (normalized=false) or normalized
  // set; the spans cover the whole text in order.
  void split(std::string_view text, bool normalized_set, std::vector<AddedSpan>& out) const;
  bool has_tokens(bool normalized_set) const { return tries_[normalized_set ? 1 : 0].nodes.size() > 1; }

  const AddedToken* find(int32_t id) const;
  std::optional<int32_t> token_to_id(std::string_view content) const;
  int32_t max_id() const { return max_id_; }

 private:
  struct Trie {
    struct Node {
      int32_t token = -1;                                    // index into tokens_ ending here
      std::vector<std::pair<unsigned char, int32_t>> next;  // children (root uses root_next)
    };
    std::vector<Node> nodes{Node{}};
    std::array<int32_t, 256> root_next{};
    Trie() { root_next.fill(-1); }
    void insert(std::string_view key, int32_t token);
    // Longest token starting at text[pos]: sets end and token index; false when none.
    bool longest_at(std::string_view text, size_t pos, size_t& end, int32_t& token) const;
  };

  std::vector<AddedToken> tokens_;
  std::unordered_map<int32_t, size_t> by_id_;
  std::unordered_map<std::string, int32_t> by_content_;
  std::array<Trie, 2> tries_;  // [0] normalized=false, [1] normalized=true
  int32_t max_id_ = -1;
};

}  // namespace ts
