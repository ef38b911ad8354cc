// Byte-level BPE trainer: see bpe_trainer.h for the output layout and the tie-break rule.
#include "toy/bpe_trainer.h"

#include <algorithm>
#include <array>
#include <queue>
#include <set>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/normalized_text.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/utf8.h"

namespace ts {
namespace {

using ojson = nlohmann::ordered_json;

// The DeepSeek-R1-Distill pre-tokenizer (scripts/make_demo_model.py builds the same with HF tokenizers).
ojson r1_pre_tokenizer() {
  static const char* const kR1Pattern =
      R"re([!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
  auto split = [](const char* pattern) {
    return ojson{{"type", "Split"}, {"pattern", {{"Regex", pattern}}}, {"behavior", "Isolated"}, {"invert", false}};
  };
  return ojson{{"type", "Sequence"},
               {"pretokenizers",
                {split(R"(\p{N}{1,3})"), split("[一-龥぀-ゟ゠-ヿ]+"), split(kR1Pattern),
                 ojson{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}}}}};
}

uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t{static_cast<uint32_t>(a)} << 32) | static_cast<uint32_t>(b); }

// The gaps of `text` between added tokens (leftmost-longest matching, like HF's added vocabulary).
void gaps_between_added(std::string_view text, const std::vector<std::string>& added, std::vector<std::string_view>& out) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t best = std::string_view::npos, best_len = 0;
    for (const auto& token : added) {
      size_t at = text.find(token, pos);
      if (at < best || (at == best && at != std::string_view::npos && token.size() > best_len)) {
        best = at;
        best_len = token.size();
      }
    }
    const size_t gap_end = best == std::string_view::npos ? text.size() : best;
    if (gap_end > pos) out.push_back(text.substr(pos, gap_end - pos));
    if (best == std::string_view::npos) break;
    pos = best + best_len;
  }
}

// Distinct pre-tokenized words (raw bytes) with their counts, sorted by word.
std::vector<std::pair<std::string, int64_t>> count_words(const std::vector<std::string>& texts,
                                                         const std::vector<std::string>& added) {
  const PreTokenizer pre = PreTokenizer::from_json(json::parse(r1_pre_tokenizer().dump()), "<bpe trainer>", "pre_tokenizer");
  std::unordered_map<std::string, int64_t> counts;
  std::vector<std::string_view> gaps;
  std::string word;
  for (size_t t = 0; t < texts.size(); ++t) {
    if (auto bad = utf8::find_invalid(texts[t]))
      throw InputError("<training text>", "text " + std::to_string(t), "invalid UTF-8 at byte " + std::to_string(*bad));
    gaps.clear();
    gaps_between_added(texts[t], added, gaps);
    for (std::string_view gap : gaps) {
      const NormalizedText normalized = NormalizedText::borrowed(gap, 0);
      Pieces pieces;
      pieces.text = &normalized;
      pieces.ranges.push_back({0, static_cast<uint32_t>(gap.size())});
      pre.apply(pieces);
      const std::string_view ptext = pieces.text->text();
      for (const ByteRange& r : pieces.ranges) {
        const std::string_view piece = ptext.substr(r.begin, r.end - r.begin);
        if (pieces.byte_level) {
          word.assign(piece);
        } else if (!byte_level::decode(piece, word)) {
          throw std::logic_error("bpe trainer: pre-tokenizer produced a word outside the byte-level alphabet");
        }
        ++counts[word];
      }
    }
  }
  std::vector<std::pair<std::string, int64_t>> sorted(counts.begin(), counts.end());
  std::sort(sorted.begin(), sorted.end());
  return sorted;
}

struct Word {
  std::vector<int32_t> symbols;
  int64_t count;
};

struct Candidate {
  int64_t count;
  int32_t left, right;
};

}  // namespace

const std::string& bpe_r1_pre_tokenizer_json() {
  static const std::string text = r1_pre_tokenizer().dump();
  return text;
}

BpeTrainResult bpe_train(const std::vector<std::string>& texts, const BpeTrainOptions& opt) {
  std::vector<std::string> added = opt.special_tokens;
  added.insert(added.end(), opt.added_tokens.begin(), opt.added_tokens.end());
  if (std::set<std::string>(added.begin(), added.end()).size() != added.size())
    throw std::invalid_argument("bpe trainer: duplicate added token");
  for (const auto& token : added) {
    if (token.empty()) throw std::invalid_argument("bpe trainer: empty added token");
    if (utf8::find_invalid(token)) throw std::invalid_argument("bpe trainer: added token is not valid UTF-8");
  }
  const int64_t n_added = static_cast<int64_t>(added.size());
  if (opt.vocab_size < 256 + n_added + 1 || opt.vocab_size > 65536)
    throw std::invalid_argument("bpe trainer: vocab_size must be in " + std::to_string(256 + n_added + 1) +
                                "..65536 (256 bytes + " + std::to_string(n_added) + " added tokens + at least one merge), got " +
                                std::to_string(opt.vocab_size));
  const size_t model_target = static_cast<size_t>(opt.vocab_size - n_added);

  // Initial alphabet: the 256 byte-level characters in code point order (HF's order).
  std::vector<std::string> tokens;  // id -> raw bytes
  std::unordered_map<std::string, int32_t> token_ids;
  std::vector<uint8_t> bytes(256);
  for (int b = 0; b < 256; ++b) bytes[static_cast<size_t>(b)] = static_cast<uint8_t>(b);
  std::sort(bytes.begin(), bytes.end(), [](uint8_t x, uint8_t y) { return byte_level::byte_to_char(x) < byte_level::byte_to_char(y); });
  std::array<int32_t, 256> byte_id{};
  for (uint8_t b : bytes) {
    byte_id[b] = static_cast<int32_t>(tokens.size());
    token_ids.emplace(std::string(1, static_cast<char>(b)), static_cast<int32_t>(tokens.size()));
    tokens.emplace_back(1, static_cast<char>(b));
  }

  const auto counted = count_words(texts, added);
  std::vector<Word> words;
  words.reserve(counted.size());
  for (const auto& [text, count] : counted) {
    Word w{{}, count};
    for (unsigned char c : text) w.symbols.push_back(byte_id[c]);
    words.push_back(std::move(w));
  }

  // Pair statistics: counts over all words, and the words each pair occurs in (may hold stale
  // entries; deduplicated when the pair is merged).
  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<uint32_t>> pair_words;
  for (uint32_t w = 0; w < words.size(); ++w) {
    const auto& s = words[w].symbols;
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      const uint64_t key = pair_key(s[i], s[i + 1]);
      pair_count[key] += words[w].count;
      pair_words[key].push_back(w);
    }
  }

  // Max-heap by count, then smallest (left, right) token strings. Entries go stale when a count
  // changes: a count that only dropped is re-queued when popped, an increase queues a new entry.
  auto lower = [&tokens](const Candidate& x, const Candidate& y) {
    if (x.count != y.count) return x.count < y.count;
    const std::string& xl = tokens[static_cast<size_t>(x.left)];
    const std::string& yl = tokens[static_cast<size_t>(y.left)];
    if (xl != yl) return xl > yl;
    return tokens[static_cast<size_t>(x.right)] > tokens[static_cast<size_t>(y.right)];
  };
  std::priority_queue<Candidate, std::vector<Candidate>, decltype(lower)> queue(lower);
  for (const auto& [key, count] : pair_count)
    queue.push({count, static_cast<int32_t>(key >> 32), static_cast<int32_t>(key & 0xFFFFFFFFu)});

  std::vector<std::pair<int32_t, int32_t>> merges;
  std::unordered_map<uint64_t, int64_t> delta;
  std::vector<int32_t> merged_symbols;
  while (tokens.size() < model_target && !queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    const uint64_t key = pair_key(top.left, top.right);
    auto found = pair_count.find(key);
    const int64_t current = found == pair_count.end() ? 0 : found->second;
    if (top.count != current) {
      if (current > 0 && top.count > current) queue.push({current, top.left, top.right});
      continue;
    }
    if (current < std::max<int64_t>(1, opt.min_frequency)) break;

    std::string merged = tokens[static_cast<size_t>(top.left)] + tokens[static_cast<size_t>(top.right)];
    int32_t new_id;
    if (auto it = token_ids.find(merged); it != token_ids.end()) {
      new_id = it->second;
    } else {
      new_id = static_cast<int32_t>(tokens.size());
      token_ids.emplace(merged, new_id);
      tokens.push_back(std::move(merged));
    }
    merges.emplace_back(top.left, top.right);

    std::vector<uint32_t> where = std::move(pair_words[key]);
    pair_words.erase(key);
    std::sort(where.begin(), where.end());
    where.erase(std::unique(where.begin(), where.end()), where.end());
    delta.clear();
    for (uint32_t w : where) {
      Word& word = words[w];
      const auto& s = word.symbols;
      merged_symbols.clear();
      for (size_t i = 0; i < s.size(); ++i) {
        if (i + 1 < s.size() && s[i] == top.left && s[i + 1] == top.right) {
          merged_symbols.push_back(new_id);
          ++i;
        } else {
          merged_symbols.push_back(s[i]);
        }
      }
      if (merged_symbols.size() == s.size()) continue;  // stale entry
      for (size_t i = 0; i + 1 < s.size(); ++i) delta[pair_key(s[i], s[i + 1])] -= word.count;
      for (size_t i = 0; i + 1 < merged_symbols.size(); ++i) {
        const uint64_t k = pair_key(merged_symbols[i], merged_symbols[i + 1]);
        delta[k] += word.count;
        if (merged_symbols[i] == new_id || merged_symbols[i + 1] == new_id) pair_words[k].push_back(w);
      }
      word.symbols.swap(merged_symbols);
    }
    for (const auto& [k, d] : delta) {
      if (d == 0) continue;
      int64_t& count = pair_count[k];
      count += d;
      if (d > 0) queue.push({count, static_cast<int32_t>(k >> 32), static_cast<int32_t>(k & 0xFFFFFFFFu)});
      if (count == 0) pair_count.erase(k);
    }
  }

  // tokenizer.json (HF field order).
  const int32_t n_model = static_cast<int32_t>(tokens.size());
  ojson added_json = ojson::array();
  for (size_t i = 0; i < added.size(); ++i) {
    const bool special = i < opt.special_tokens.size();
    added_json.push_back({{"id", n_model + static_cast<int32_t>(i)},
                          {"content", added[i]},
                          {"single_word", false},
                          {"lstrip", false},
                          {"rstrip", false},
                          {"normalized", false},
                          {"special", special}});
  }
  std::vector<std::string> mapped(tokens.size());
  ojson vocab = ojson::object();
  for (size_t id = 0; id < tokens.size(); ++id) {
    mapped[id] = byte_level::encode(tokens[id]);
    vocab[mapped[id]] = static_cast<int32_t>(id);
  }
  ojson merges_json = ojson::array();
  for (const auto& [l, r] : merges) merges_json.push_back({mapped[static_cast<size_t>(l)], mapped[static_cast<size_t>(r)]});

  ojson root;
  root["version"] = "1.0";
  root["truncation"] = nullptr;
  root["padding"] = nullptr;
  root["added_tokens"] = std::move(added_json);
  root["normalizer"] = nullptr;
  root["pre_tokenizer"] = r1_pre_tokenizer();
  root["post_processor"] = nullptr;
  root["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
  root["model"] = {{"type", "BPE"},
                   {"dropout", nullptr},
                   {"unk_token", nullptr},
                   {"continuing_subword_prefix", nullptr},
                   {"end_of_word_suffix", nullptr},
                   {"fuse_unk", false},
                   {"byte_fallback", false},
                   {"ignore_merges", false},
                   {"vocab", std::move(vocab)},
                   {"merges", std::move(merges_json)}};

  BpeTrainResult result;
  result.tokenizer_json = root.dump(2) + "\n";
  result.vocab_size = n_model + n_added;
  result.n_merges = static_cast<int64_t>(merges.size());
  result.n_words = static_cast<int64_t>(words.size());
  return result;
}

std::string bpe_train_tokenizer_json(const std::vector<std::string>& texts, const BpeTrainOptions& opt) {
  return bpe_train(texts, opt).tokenizer_json;
}

}  // namespace ts
