#include "tokenizer/bpe_model.h"

#include <algorithm>
#include <limits>
#include <queue>

#include "core/utf8.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/json_fields.h"

namespace ts {

namespace {

constexpr int64_t kMaxTokenId = (int64_t{1} << 24) - 1;  // far above any real vocabulary
constexpr uint32_t kNoMerge = std::numeric_limits<uint32_t>::max();
constexpr size_t kCacheableLength = 256;
constexpr size_t kLinearMergeLimit = 64;

std::string shorten(std::string_view s) {
  if (s.size() <= 40) return std::string(s);
  size_t cut = 40;
  while (cut > 0 && utf8::is_continuation(static_cast<unsigned char>(s[cut]))) --cut;
  return std::string(s.substr(0, cut)) + "...";
}

// "dropout": null or 0; "continuing_subword_prefix" / "end_of_word_suffix": null or "".
void check_unsupported(const json& model, const tokjson::Where& where) {
  if (auto it = model.find("dropout"); it != model.end() && !it->is_null()) {
    if (!it->is_number()) where.field("dropout").fail("expected null or a number, got " + std::string(it->type_name()));
    if (it->get<double>() != 0.0) where.field("dropout").fail("BPE dropout is not supported (expected null or 0)");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (auto it = model.find(key); it != model.end() && !it->is_null()) {
      if (!it->is_string()) where.field(key).fail("expected null or a string, got " + std::string(it->type_name()));
      if (!it->get<std::string>().empty()) where.field(key).fail("non-empty value is not supported");
    }
  }
  if (tokjson::optional_bool(model, "byte_fallback", false, where))
    where.field("byte_fallback").fail("byte_fallback=true is not supported");
}

}  // namespace

std::unique_ptr<BpeModel> BpeModel::from_json(const json& model, const std::string& file, const std::string& path) {
  tokjson::Where where{file, path};
  tokjson::require_object(model, where);
  if (auto it = model.find("type"); it != model.end()) {
    std::string type = tokjson::component_type(model, where);
    if (type != "BPE") where.field("type").fail("unsupported model type '" + type + "' (supported: BPE)");
  } else if (!model.contains("merges")) {
    where.field("type").fail("missing required field");
  }
  check_unsupported(model, where);

  std::unique_ptr<BpeModel> bpe(new BpeModel());

  bpe->read_vocab(model, file, path);
  bpe->read_merges(model, file, path);

  // Options.
  bpe->ignore_merges_ = tokjson::optional_bool(model, "ignore_merges", false, where);
  bpe->fuse_unk_ = tokjson::optional_bool(model, "fuse_unk", false, where);
  if (auto it = model.find("unk_token"); it != model.end() && !it->is_null()) {
    if (!it->is_string()) where.field("unk_token").fail("expected null or a string, got " + std::string(it->type_name()));
    auto unk = bpe->vocab_.find(it->get<std::string>());
    if (unk == bpe->vocab_.end()) where.field("unk_token").fail("unk token is not in model.vocab");
    bpe->unk_id_ = unk->second;
  }

  // Byte-level views of the vocabulary.
  for (int b = 0; b < 256; ++b) {
    auto it = bpe->vocab_.find(byte_level::encode(std::string(1, static_cast<char>(b))));
    bpe->byte_ids_[static_cast<size_t>(b)] = it == bpe->vocab_.end() ? -1 : it->second;
  }
  if (bpe->ignore_merges_) {
    std::string raw;
    for (const auto& [token, id] : bpe->vocab_) {
      raw.clear();
      if (byte_level::decode(token, raw)) bpe->raw_vocab_.emplace(raw, id);
    }
  }
  return bpe;
}

// model.vocab: token -> id, every id used once.
void BpeModel::read_vocab(const json& model, const std::string& file, const std::string& path) {
  tokjson::Where where{file, path};
  const json& vocab = json_require(model, "vocab", file, path);
  tokjson::Where vocab_where = where.field("vocab");
  if (!vocab.is_object()) vocab_where.fail("expected an object mapping tokens to ids, got " + std::string(vocab.type_name()));
  vocab_.reserve(vocab.size());
  tokens_.reserve(vocab.size());
  int64_t max_id = -1;
  std::vector<int32_t> ids;
  ids.reserve(vocab.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const json& v = it.value();
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > kMaxTokenId) {
      std::string got = v.is_number() ? v.dump() : std::string(v.type_name());
      vocab_where.field(shorten(it.key()))
          .fail("expected a token id between 0 and " + std::to_string(kMaxTokenId) + ", got " + got);
    }
    int64_t id = v.get<int64_t>();
    vocab_.emplace(it.key(), static_cast<int32_t>(id));
    tokens_.push_back(it.key());
    ids.push_back(static_cast<int32_t>(id));
    max_id = std::max(max_id, id);
  }
  id_index_.assign(static_cast<size_t>(max_id + 1), -1);
  for (size_t i = 0; i < tokens_.size(); ++i) {
    int32_t id = ids[i];
    int32_t& slot = id_index_[static_cast<size_t>(id)];
    if (slot >= 0)
      vocab_where.field(shorten(tokens_[i]))
          .fail("id " + std::to_string(id) + " is also used by '" + shorten(tokens_[static_cast<size_t>(slot)]) + "'");
    slot = static_cast<int32_t>(i);
  }
}

// model.merges ("left right" or [left, right]), in rank order; every token in model.vocab.
void BpeModel::read_merges(const json& model, const std::string& file, const std::string& path) {
  tokjson::Where where{file, path};
  const json& merges = tokjson::require_array(model, "merges", where);
  tokjson::Where merges_where = where.field("merges");
  merges_.reserve(merges.size());
  std::vector<uint8_t> produced(id_index_.size(), 0);
  unique_merge_results_ = true;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const json& m = merges[rank];
    tokjson::Where m_where = merges_where.index(rank);
    std::string left, right;
    if (m.is_string()) {
      const std::string& s = m.get_ref<const std::string&>();
      size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
        m_where.fail("expected \"left right\" (two tokens separated by one space), got \"" + shorten(s) + "\"");
      left = s.substr(0, space);
      right = s.substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      left = m[0].get<std::string>();
      right = m[1].get<std::string>();
    } else {
      m_where.fail("expected a \"left right\" string or a [left, right] pair of strings");
    }
    auto l = vocab_.find(left);
    if (l == vocab_.end()) m_where.fail("token '" + shorten(left) + "' is not in model.vocab");
    auto r = vocab_.find(right);
    if (r == vocab_.end()) m_where.fail("token '" + shorten(right) + "' is not in model.vocab");
    auto merged = vocab_.find(left + right);
    if (merged == vocab_.end()) m_where.fail("merged token '" + shorten(left + right) + "' is not in model.vocab");
    if (merges_.find(l->second, r->second) == nullptr) {
      uint8_t& p = produced[static_cast<size_t>(merged->second)];
      if (p) unique_merge_results_ = false;
      p = 1;
    }
    merges_.insert_or_assign(l->second, r->second, Merge{static_cast<uint32_t>(rank), merged->second});
  }
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_index_.size() || id_index_[static_cast<size_t>(id)] < 0) return nullptr;
  return &tokens_[static_cast<size_t>(id_index_[static_cast<size_t>(id)])];
}

// Exact "lowest rank first, leftmost on ties" loop; only used when every merged token has a single
// merge rule, in which case it gives the same result as HF's heap (see merge_symbols_heap).
void BpeModel::merge_symbols(std::vector<WordToken>& symbols) const {
  size_t n = symbols.size();
  if (n < 2) return;
  if (n > kLinearMergeLimit || !unique_merge_results_) {
    merge_symbols_heap(symbols);
    return;
  }
  uint32_t ranks[kLinearMergeLimit];
  int32_t merged_ids[kLinearMergeLimit];
  auto compute = [&](size_t k) {
    const Merge* m = merges_.find(symbols[k].id, symbols[k + 1].id);
    ranks[k] = m ? m->rank : kNoMerge;
    merged_ids[k] = m ? m->merged_id : -1;
  };
  for (size_t k = 0; k + 1 < n; ++k) compute(k);
  while (n > 1) {
    size_t best = 0;
    for (size_t k = 1; k + 1 < n; ++k)
      if (ranks[k] < ranks[best]) best = k;
    if (ranks[best] == kNoMerge) break;
    symbols[best].id = merged_ids[best];
    symbols[best].length += symbols[best + 1].length;
    symbols.erase(symbols.begin() + static_cast<std::ptrdiff_t>(best) + 1);
    for (size_t k = best + 1; k + 1 < n; ++k) {
      ranks[k] = ranks[k + 1];
      merged_ids[k] = merged_ids[k + 1];
    }
    --n;
    if (best > 0) compute(best - 1);
    if (best + 1 < n) compute(best);
  }
}

// HF's Word::merge_all: a priority queue of candidate merges ordered by (rank, position); a popped
// candidate is applied when the pair now at its position still produces the same token.
void BpeModel::merge_symbols_heap(std::vector<WordToken>& symbols) const {
  struct Symbol {
    int32_t id;
    uint32_t length;
    int32_t prev;
    int32_t next;
  };
  struct Candidate {
    uint32_t rank;
    int32_t pos;
    int32_t merged_id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  const int32_t n = static_cast<int32_t>(symbols.size());
  std::vector<Symbol> syms(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i)
    syms[static_cast<size_t>(i)] = {symbols[static_cast<size_t>(i)].id, symbols[static_cast<size_t>(i)].length, i - 1,
                                    i + 1 < n ? i + 1 : -1};
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  for (int32_t i = 0; i + 1 < n; ++i)
    if (const Merge* m = merges_.find(syms[static_cast<size_t>(i)].id, syms[static_cast<size_t>(i) + 1].id))
      queue.push({m->rank, i, m->merged_id});
  while (!queue.empty()) {
    Candidate top = queue.top();
    queue.pop();
    Symbol& s = syms[static_cast<size_t>(top.pos)];
    if (s.length == 0 || s.next == -1) continue;
    Symbol& right = syms[static_cast<size_t>(s.next)];
    const Merge* current = merges_.find(s.id, right.id);
    if (!current || current->merged_id != top.merged_id) continue;
    s.id = top.merged_id;
    s.length += right.length;
    right.length = 0;
    s.next = right.next;
    if (s.next != -1) syms[static_cast<size_t>(s.next)].prev = top.pos;
    if (s.prev != -1)
      if (const Merge* m = merges_.find(syms[static_cast<size_t>(s.prev)].id, s.id))
        queue.push({m->rank, s.prev, m->merged_id});
    if (s.next != -1)
      if (const Merge* m = merges_.find(s.id, syms[static_cast<size_t>(s.next)].id))
        queue.push({m->rank, top.pos, m->merged_id});
  }
  symbols.clear();
  for (const Symbol& s : syms)
    if (s.length > 0) symbols.push_back({s.id, s.length});
}

void BpeModel::tokenize(std::string_view word, bool byte_level, std::vector<WordToken>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    const Vocab& vocab = byte_level ? raw_vocab_ : vocab_;
    auto it = vocab.find(word);
    if (it != vocab.end()) {
      out.push_back({it->second, static_cast<uint32_t>(word.size())});
      return;
    }
  }
  WordCache& cache = byte_level ? cache_bytes_ : cache_text_;
  const bool cacheable = word.size() < kCacheableLength;
  if (cacheable && cache.lookup(word, out)) return;

  thread_local std::vector<WordToken> symbols;
  symbols.clear();
  // Initial symbols. Unknown characters become unk_token (fused when fuse_unk) or are dropped.
  bool pending_unk = false;
  WordToken unk{};
  auto add_known = [&](int32_t id, uint32_t length) {
    if (pending_unk) {
      symbols.push_back(unk);
      pending_unk = false;
    }
    symbols.push_back({id, length});
  };
  auto add_unknown = [&](uint32_t length) {
    if (!unk_id_) return;
    if (pending_unk) {
      if (fuse_unk_) {
        unk.length += length;
        return;
      }
      symbols.push_back(unk);
    }
    unk = {*unk_id_, length};
    pending_unk = true;
  };
  if (byte_level) {
    for (unsigned char b : word) {
      int32_t id = byte_ids_[b];
      if (id >= 0)
        add_known(id, 1);
      else
        add_unknown(1);
    }
  } else {
    for (size_t i = 0; i < word.size();) {
      size_t start = i;
      utf8::next(word, i);
      auto it = vocab_.find(word.substr(start, i - start));
      if (it != vocab_.end())
        add_known(it->second, static_cast<uint32_t>(i - start));
      else
        add_unknown(static_cast<uint32_t>(i - start));
    }
  }
  if (pending_unk) symbols.push_back(unk);

  merge_symbols(symbols);
  out.insert(out.end(), symbols.begin(), symbols.end());
  if (cacheable) cache.insert(word, symbols.data(), symbols.size());
}

}  // namespace ts
