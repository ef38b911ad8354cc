// Thread-safe cache of BPE results per word, shared by concurrent const encode() calls.
// Sharded maps behind reader/writer locks; each shard stops accepting new words once full
// (like HF's cache), so memory stays bounded on endless streams of new words.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ts {

// One BPE output token: its id and its length in units of the word (bytes).
struct WordToken {
  int32_t id;
  uint32_t length;
};

class WordCache {
 public:
  explicit WordCache(size_t capacity = 1 << 16);

  // Copies the cached tokens of `word` into `out` (appending); false on a miss.
  bool lookup(std::string_view word, std::vector<WordToken>& out) const;
  void insert(std::string_view word, const WordToken* tokens, size_t count);

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Shard {
    mutable std::shared_mutex mutex;
    std::unordered_map<std::string, std::vector<WordToken>, Hash, std::equal_to<>> map;
  };
  static constexpr size_t kShards = 32;
  size_t per_shard_capacity_;
  std::unique_ptr<std::array<Shard, kShards>> shards_;
};

}  // namespace ts
