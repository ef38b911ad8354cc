// Preallocated key/value cache: one [B, K, S_max, E] pair per layer, allocated once. The model writes
// positions [slot_start, slot_start+T) and reads [0, slot_start+T); it never computes offsets itself.
#pragma once
#include <ATen/core/Tensor.h>

#include <utility>
#include <vector>

namespace ts {

class KVCache {
 public:
  // n_layer layers of [batch, n_kv_head, capacity, d_head].
  KVCache(int64_t n_layer, int64_t batch, int64_t n_kv_head, int64_t capacity, int64_t d_head, const at::TensorOptions& options);

  // Stores k, v ([B, K, T, E]) at slots [slot_start, slot_start+T) of `layer` (index into this cache)
  // and returns views of all keys/values so far: [B, K, slot_start+T, E].
  std::pair<at::Tensor, at::Tensor> update(int64_t layer, int64_t slot_start, const at::Tensor& k, const at::Tensor& v);
  // One token per row at its own slot (continuous batching, generate_continuous.h): k, v [B, K, 1, E],
  // row b stored at slot row_slots[b] ([B] int64 on the cache's device, each < read_end); returns views
  // of slots [0, read_end).
  std::pair<at::Tensor, at::Tensor> update_rows(int64_t layer, const at::Tensor& row_slots, int64_t read_end, const at::Tensor& k,
                                                const at::Tensor& v);
  // The decode step's store without tensor views (the CPU path of Transformer::attention): for each row b and KV head g,
  // E values from k + b * k_row + g * E and v + b * v_row + g * E (elements of the cache's dtype) go to slot
  // row_slots[b] (defined: [B] int64 on the CPU, each < read_end) or slot_start (read_end = slot_start + 1). Returns false,
  // writing nothing, where the cache is not a contiguous CPU one of B rows: the caller then uses update / update_rows.
  // A slot outside [0, read_end) throws, also before anything is written.
  bool store_token(int64_t layer, int64_t slot_start, const at::Tensor& row_slots, int64_t read_end, int64_t B, const void* k, int64_t k_row,
                   const void* v, int64_t v_row);
  // One layer's whole [B, K, capacity, E] tensors (what store_token wrote into).
  const at::Tensor& keys(int64_t layer) const { return k_[static_cast<size_t>(layer)]; }
  const at::Tensor& values(int64_t layer) const { return v_[static_cast<size_t>(layer)]; }

  // Copies every layer of `src` (same layers, heads and width; src.capacity() <= capacity()) into batch rows
  // `rows` ([src.batch()] int64), slots [0, src.capacity()): a prefill run in its own cache joins this one.
  void put_rows(const at::Tensor& rows, const KVCache& src);

  // Keeps only batch rows `rows` ([B'] int64 on the cache's device), in that order (drops finished rows).
  void keep_rows(const at::Tensor& rows);

  // The keys and values at one slot of layers [first_layer, n_layer) (copies), and their restoration: a
  // step recomputed with an edit (the hybrid's steered step, hybrid/lockstep.h) leaves the cache as the
  // unedited step wrote it.
  std::vector<at::Tensor> save_slot(int64_t slot, int64_t first_layer) const;
  void restore_slot(int64_t slot, int64_t first_layer, const std::vector<at::Tensor>& saved);

  // Shadow rows (the hybrid's fused step, hybrid/lockstep.h): layers [first_layer, n_layer) get a second copy of
  // every batch row, rows [batch, 2 batch), which a forward of 2 batch rows through those layers uses; keep_rows
  // keeps both copies of a row; sync_shadow copies one slot of the first copy over the second, so the shadow rows
  // always hold the first rows' history.
  void add_shadow_rows(int64_t first_layer);
  void sync_shadow(int64_t slot);

  int64_t capacity() const { return capacity_; }
  int64_t batch() const { return batch_; }

 private:
  void require_capacity(int64_t end) const;  // slots [0, end) must fit: the one overflow error of update, update_rows, store_token

  int64_t capacity_;
  int64_t batch_;
  int64_t shadow_from_ = -1;  // first layer with shadow rows (-1: none)
  std::vector<at::Tensor> k_;  // [B, K, S_max, E]
  std::vector<at::Tensor> v_;  // [B, K, S_max, E]
  at::Tensor flat_for_, flat_index_;  // update_rows: the row_slots of this step and their rows in the flattened cache
};

}  // namespace ts
