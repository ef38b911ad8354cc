#include "tokenizer/added_vocabulary.h"

#include <algorithm>

#include "core/utf8.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/json_fields.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/regex.h"

namespace ts {

namespace {

// Rust regex's Unicode \w: Alphabetic, marks, decimal numbers, connector punctuation, joiners.
bool is_word_char(std::string_view one_char) {
  static const Regex word(R"([\p{Alphabetic}\p{L}\p{M}\p{Nd}\p{Pc}\x{200C}\x{200D}])", "<builtin>", "word-character");
  size_t end = 0;
  return word.matches_prefix(one_char, end);
}

size_t previous_char_start(std::string_view text, size_t pos) {
  size_t i = pos - 1;
  while (i > 0 && utf8::is_continuation(static_cast<unsigned char>(text[i]))) --i;
  return i;
}

bool ends_with_word(std::string_view text, size_t pos) {
  if (pos == 0) return false;
  size_t start = previous_char_start(text, pos);
  return is_word_char(text.substr(start, pos - start));
}

bool starts_with_word(std::string_view text, size_t pos) {
  if (pos >= text.size()) return false;
  return is_word_char(text.substr(pos, utf8::sequence_length(static_cast<unsigned char>(text[pos]))));
}

// Start of the run of whitespace that ends at `pos`.
size_t whitespace_run_start(std::string_view text, size_t pos) {
  while (pos > 0) {
    size_t start = previous_char_start(text, pos);
    size_t i = start;
    if (!utf8::is_white_space(utf8::next(text, i))) break;
    pos = start;
  }
  return pos;
}

// End of the run of whitespace that starts at `pos`.
size_t whitespace_run_end(std::string_view text, size_t pos) {
  while (pos < text.size()) {
    size_t i = pos;
    if (!utf8::is_white_space(utf8::next(text, i))) break;
    pos = i;
  }
  return pos;
}

}  // namespace

void AddedVocabulary::Trie::insert(std::string_view key, int32_t token) {
  int32_t node = 0;
  for (size_t k = 0; k < key.size(); ++k) {
    unsigned char b = static_cast<unsigned char>(key[k]);
    int32_t child = -1;
    if (node == 0) {
      child = root_next[b];
    } else {
      for (const auto& [byte, n] : nodes[static_cast<size_t>(node)].next)
        if (byte == b) child = n;
    }
    if (child < 0) {
      child = static_cast<int32_t>(nodes.size());
      nodes.emplace_back();
      if (node == 0)
        root_next[b] = child;
      else
        nodes[static_cast<size_t>(node)].next.emplace_back(b, child);
    }
    node = child;
  }
  nodes[static_cast<size_t>(node)].token = token;
}

bool AddedVocabulary::Trie::longest_at(std::string_view text, size_t pos, size_t& end, int32_t& token) const {
  int32_t node = root_next[static_cast<unsigned char>(text[pos])];
  bool found = false;
  size_t i = pos + 1;
  while (node >= 0) {
    const Node& n = nodes[static_cast<size_t>(node)];
    if (n.token >= 0) {
      found = true;
      end = i;
      token = n.token;
    }
    if (i >= text.size()) break;
    unsigned char b = static_cast<unsigned char>(text[i]);
    int32_t child = -1;
    for (const auto& [byte, c] : n.next)
      if (byte == b) child = c;
    node = child;
    ++i;
  }
  return found;
}

AddedVocabulary AddedVocabulary::from_json(const json* value, const std::string& file, const BpeModel& model,
                                           const Normalizer& normalizer) {
  AddedVocabulary vocab;
  if (!value || value->is_null()) return vocab;
  tokjson::Where where{file, "added_tokens"};
  if (!value->is_array()) where.fail("expected an array, got " + std::string(value->type_name()));
  for (size_t i = 0; i < value->size(); ++i) {
    const json& item = (*value)[i];
    tokjson::Where w = where.index(i);
    tokjson::require_object(item, w);
    AddedToken t;
    int64_t id = tokjson::require_int(item, "id", w);
    if (id < 0 || id > (int64_t{1} << 24) - 1) w.field("id").fail("expected a token id between 0 and 16777215");
    t.id = static_cast<int32_t>(id);
    t.content = tokjson::require_string(item, "content", w);
    t.single_word = tokjson::optional_bool(item, "single_word", false, w);
    t.lstrip = tokjson::optional_bool(item, "lstrip", false, w);
    t.rstrip = tokjson::optional_bool(item, "rstrip", false, w);
    t.special = tokjson::optional_bool(item, "special", false, w);
    t.normalized = tokjson::optional_bool(item, "normalized", !t.special, w);
    if (t.content.empty()) continue;  // HF ignores empty added tokens
    if (auto model_id = model.token_to_id(t.content); model_id && *model_id != t.id)
      w.field("id").fail("token '" + t.content + "' has id " + std::to_string(*model_id) + " in model.vocab");
    if (vocab.by_content_.count(t.content)) w.field("content").fail("duplicate added token '" + t.content + "'");
    if (vocab.by_id_.count(t.id)) w.field("id").fail("id " + std::to_string(t.id) + " is used by another added token");
    if (const std::string* other = model.id_to_token(t.id); other && *other != t.content)
      w.field("id").fail("id " + std::to_string(t.id) + " is already used by model.vocab token '" + *other + "'");
    vocab.by_content_.emplace(t.content, t.id);
    vocab.by_id_.emplace(t.id, vocab.tokens_.size());
    vocab.max_id_ = std::max(vocab.max_id_, t.id);
    vocab.tokens_.push_back(std::move(t));
  }
  for (size_t k = 0; k < vocab.tokens_.size(); ++k) {
    const AddedToken& t = vocab.tokens_[k];
    if (t.normalized) {
      std::string key = normalizer.apply_to_string(t.content);
      if (!key.empty()) vocab.tries_[1].insert(key, static_cast<int32_t>(k));
    } else {
      vocab.tries_[0].insert(t.content, static_cast<int32_t>(k));
    }
  }
  return vocab;
}

const AddedToken* AddedVocabulary::find(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

std::optional<int32_t> AddedVocabulary::token_to_id(std::string_view content) const {
  auto it = by_content_.find(std::string(content));
  if (it == by_content_.end()) return std::nullopt;
  return it->second;
}

void AddedVocabulary::split(std::string_view text, bool normalized_set, std::vector<AddedSpan>& out) const {
  const Trie& trie = tries_[normalized_set ? 1 : 0];
  const size_t n = text.size();
  size_t start_offset = 0;
  size_t pos = 0;
  while (pos < n) {
    // Leftmost position where some token starts, then the longest token there.
    while (pos < n && trie.root_next[static_cast<unsigned char>(text[pos])] < 0) ++pos;
    if (pos >= n) break;
    size_t stop = 0;
    int32_t index = -1;
    if (!trie.longest_at(text, pos, stop, index)) {
      ++pos;
      continue;
    }
    size_t start = pos;
    pos = stop;  // the search resumes after the match, whatever single_word/strip decide
    const AddedToken& token = tokens_[static_cast<size_t>(index)];
    if (token.single_word && (ends_with_word(text, start) || starts_with_word(text, stop))) continue;
    if (token.lstrip) start = std::max(whitespace_run_start(text, start), start_offset);
    if (token.rstrip) stop = whitespace_run_end(text, stop);
    start = std::min(start, stop);
    if (start_offset < start) out.push_back({-1, static_cast<uint32_t>(start_offset), static_cast<uint32_t>(start)});
    out.push_back({token.id, static_cast<uint32_t>(start), static_cast<uint32_t>(stop)});
    start_offset = stop;
  }
  if (start_offset < n) out.push_back({-1, static_cast<uint32_t>(start_offset), static_cast<uint32_t>(n)});
}

}  // namespace ts
