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
#include "core/utf8.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/normalized_text.h"
#include "tokenizer/pre_tokenizer.h"

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

// The added tokens (special first), checked, after checking that opt.vocab_size leaves room for the
// 256 bytes, them and at least one merge.
std::vector<std::string> checked_added_tokens(const BpeTrainOptions& opt) {
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
  return added;
}

// The model's tokens (raw bytes) by id.
struct Vocabulary {
  std::vector<std::string> tokens;
  std::unordered_map<std::string, int32_t> ids;
  std::array<int32_t, 256> byte_id{};  // the id of each single byte

  // The id of `token`, added when new.
  int32_t add(std::string token) {
    if (auto it = ids.find(token); it != ids.end()) return it->second;
    const auto id = static_cast<int32_t>(tokens.size());
    ids.emplace(token, id);
    tokens.push_back(std::move(token));
    return id;
  }
};

// Initial alphabet: the 256 byte-level characters in code point order (HF's order).
Vocabulary byte_alphabet() {
  Vocabulary v;
  std::vector<uint8_t> bytes(256);
  for (int b = 0; b < 256; ++b) bytes[static_cast<size_t>(b)] = static_cast<uint8_t>(b);
  std::sort(bytes.begin(), bytes.end(), [](uint8_t x, uint8_t y) { return byte_level::byte_to_char(x) < byte_level::byte_to_char(y); });
  for (uint8_t b : bytes) v.byte_id[b] = v.add(std::string(1, static_cast<char>(b)));
  return v;
}

// The counted words as byte ids.
std::vector<Word> byte_words(const std::vector<std::pair<std::string, int64_t>>& counted, const Vocabulary& v) {
  std::vector<Word> words;
  words.reserve(counted.size());
  for (const auto& [text, count] : counted) {
    Word w{{}, count};
    for (unsigned char c : text) w.symbols.push_back(v.byte_id[c]);
    words.push_back(std::move(w));
  }
  return words;
}

// Heap order: by count, then smallest (left, right) token strings first.
struct CandidateOrder {
  const std::vector<std::string>* tokens;
  bool operator()(const Candidate& x, const Candidate& y) const {
    if (x.count != y.count) return x.count < y.count;
    const std::string& xl = (*tokens)[static_cast<size_t>(x.left)];
    const std::string& yl = (*tokens)[static_cast<size_t>(y.left)];
    if (xl != yl) return xl > yl;
    return (*tokens)[static_cast<size_t>(x.right)] > (*tokens)[static_cast<size_t>(y.right)];
  }
};

// The merge loop: pair counts over all words, the words each pair occurs in (may hold stale entries;
// deduplicated when the pair is merged), and a max-heap of candidates. Heap entries go stale when a
// count changes: a count that only dropped is re-queued when popped, an increase queues a new entry.
class MergeLearner {
 public:
  MergeLearner(Vocabulary& vocab, std::vector<Word>& words) : vocab_(vocab), words_(words), queue_(CandidateOrder{&vocab.tokens}) {
    for (uint32_t w = 0; w < words_.size(); ++w) {
      const auto& s = words_[w].symbols;
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        const uint64_t key = pair_key(s[i], s[i + 1]);
        pair_count_[key] += words_[w].count;
        pair_words_[key].push_back(w);
      }
    }
    for (const auto& [key, count] : pair_count_) queue_.push({count, static_cast<int32_t>(key >> 32), static_cast<int32_t>(key & 0xFFFFFFFFu)});
  }

  // Merges, in order, until the vocabulary holds `target` tokens or the best pair occurs fewer than
  // max(1, min_frequency) times.
  std::vector<std::pair<int32_t, int32_t>> learn(size_t target, int64_t min_frequency) {
    std::vector<std::pair<int32_t, int32_t>> merges;
    while (vocab_.tokens.size() < target && !queue_.empty()) {
      const Candidate top = queue_.top();
      queue_.pop();
      const uint64_t key = pair_key(top.left, top.right);
      auto found = pair_count_.find(key);
      const int64_t current = found == pair_count_.end() ? 0 : found->second;
      if (top.count != current) {
        if (current > 0 && top.count > current) queue_.push({current, top.left, top.right});
        continue;
      }
      if (current < std::max<int64_t>(1, min_frequency)) break;
      const int32_t new_id = vocab_.add(vocab_.tokens[static_cast<size_t>(top.left)] + vocab_.tokens[static_cast<size_t>(top.right)]);
      merges.emplace_back(top.left, top.right);
      merge(key, top.left, top.right, new_id);
    }
    return merges;
  }

 private:
  // Rewrites every word holding (left, right) with `new_id` and updates the pair statistics.
  void merge(uint64_t key, int32_t left, int32_t right, int32_t new_id) {
    std::vector<uint32_t> where = std::move(pair_words_[key]);
    pair_words_.erase(key);
    std::sort(where.begin(), where.end());
    where.erase(std::unique(where.begin(), where.end()), where.end());
    delta_.clear();
    for (uint32_t w : where) {
      Word& word = words_[w];
      const auto& s = word.symbols;
      merged_symbols_.clear();
      for (size_t i = 0; i < s.size(); ++i) {
        if (i + 1 < s.size() && s[i] == left && s[i + 1] == right) {
          merged_symbols_.push_back(new_id);
          ++i;
        } else {
          merged_symbols_.push_back(s[i]);
        }
      }
      if (merged_symbols_.size() == s.size()) continue;  // stale entry
      for (size_t i = 0; i + 1 < s.size(); ++i) delta_[pair_key(s[i], s[i + 1])] -= word.count;
      for (size_t i = 0; i + 1 < merged_symbols_.size(); ++i) {
        const uint64_t k = pair_key(merged_symbols_[i], merged_symbols_[i + 1]);
        delta_[k] += word.count;
        if (merged_symbols_[i] == new_id || merged_symbols_[i + 1] == new_id) pair_words_[k].push_back(w);
      }
      word.symbols.swap(merged_symbols_);
    }
    for (const auto& [k, d] : delta_) {
      if (d == 0) continue;
      int64_t& count = pair_count_[k];
      count += d;
      if (d > 0) queue_.push({count, static_cast<int32_t>(k >> 32), static_cast<int32_t>(k & 0xFFFFFFFFu)});
      if (count == 0) pair_count_.erase(k);
    }
  }

  Vocabulary& vocab_;
  std::vector<Word>& words_;
  std::unordered_map<uint64_t, int64_t> pair_count_;
  std::unordered_map<uint64_t, std::vector<uint32_t>> pair_words_;
  std::priority_queue<Candidate, std::vector<Candidate>, CandidateOrder> queue_;
  std::unordered_map<uint64_t, int64_t> delta_;  // per merge: the change of each pair's count
  std::vector<int32_t> merged_symbols_;
};

// tokenizer.json (HF field order): the model tokens, then the added tokens (the first `n_special`
// of them special).
ojson tokenizer_json(const std::vector<std::string>& tokens, const std::vector<std::pair<int32_t, int32_t>>& merges,
                     const std::vector<std::string>& added, size_t n_special) {
  const int32_t n_model = static_cast<int32_t>(tokens.size());
  ojson added_json = ojson::array();
  for (size_t i = 0; i < added.size(); ++i) {
    const bool special = i < n_special;
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
  return root;
}

}  // namespace

const std::string& bpe_r1_pre_tokenizer_json() {
  static const std::string text = r1_pre_tokenizer().dump();
  return text;
}

BpeTrainResult bpe_train(const std::vector<std::string>& texts, const BpeTrainOptions& opt) {
  const std::vector<std::string> added = checked_added_tokens(opt);
  const int64_t n_added = static_cast<int64_t>(added.size());
  Vocabulary vocab = byte_alphabet();
  std::vector<Word> words = byte_words(count_words(texts, added), vocab);
  const auto merges = MergeLearner(vocab, words).learn(static_cast<size_t>(opt.vocab_size - n_added), opt.min_frequency);

  BpeTrainResult result;
  result.tokenizer_json = tokenizer_json(vocab.tokens, merges, added, opt.special_tokens.size()).dump(2) + "\n";
  result.vocab_size = static_cast<int64_t>(vocab.tokens.size()) + n_added;
  result.n_merges = static_cast<int64_t>(merges.size());
  result.n_words = static_cast<int64_t>(words.size());
  return result;
}

std::string bpe_train_tokenizer_json(const std::vector<std::string>& texts, const BpeTrainOptions& opt) {
  return bpe_train(texts, opt).tokenizer_json;
}

}  // namespace ts
