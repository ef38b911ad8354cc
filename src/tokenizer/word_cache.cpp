#include "tokenizer/word_cache.h"

#include <mutex>

namespace ts {

WordCache::WordCache(size_t capacity)
    : per_shard_capacity_(capacity / kShards + 1), shards_(std::make_unique<std::array<Shard, kShards>>()) {}

bool WordCache::lookup(std::string_view word, std::vector<WordToken>& out) const {
  size_t h = Hash{}(word);
  const Shard& shard = (*shards_)[h % kShards];
  std::shared_lock lock(shard.mutex);
  auto it = shard.map.find(word);
  if (it == shard.map.end()) return false;
  out.insert(out.end(), it->second.begin(), it->second.end());
  return true;
}

void WordCache::insert(std::string_view word, const WordToken* tokens, size_t count) {
  size_t h = Hash{}(word);
  Shard& shard = (*shards_)[h % kShards];
  std::unique_lock lock(shard.mutex);
  if (shard.map.size() >= per_shard_capacity_) return;
  shard.map.try_emplace(std::string(word), tokens, tokens + count);
}

}  // namespace ts
