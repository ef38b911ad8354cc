#include "model/kv_cache.h"

#include <ATen/ATen.h>
#include <ATen/TensorIndexing.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

namespace ts {

KVCache::KVCache(int64_t n_layer, int64_t batch, int64_t n_kv_head, int64_t capacity, int64_t d_head, const at::TensorOptions& options)
    : capacity_(capacity), batch_(batch) {
  for (int64_t l = 0; l < n_layer; ++l) {
    k_.push_back(at::zeros({batch, n_kv_head, capacity, d_head}, options));
    v_.push_back(at::zeros({batch, n_kv_head, capacity, d_head}, options));
  }
}

void KVCache::require_capacity(int64_t end) const {
  if (end > capacity_) throw std::runtime_error("KV cache overflow: slot " + std::to_string(end) + " > capacity " + std::to_string(capacity_));
}

std::pair<at::Tensor, at::Tensor> KVCache::update(int64_t layer, int64_t slot_start, const at::Tensor& k, const at::Tensor& v) {
  const int64_t n = k.size(2);
  require_capacity(slot_start + n);
  at::Tensor& kc = k_[static_cast<size_t>(layer)];
  at::Tensor& vc = v_[static_cast<size_t>(layer)];
  kc.narrow(2, slot_start, n).copy_(k);
  vc.narrow(2, slot_start, n).copy_(v);
  return {kc.narrow(2, 0, slot_start + n), vc.narrow(2, 0, slot_start + n)};
}

bool KVCache::store_token(int64_t layer, int64_t slot_start, const at::Tensor& row_slots, int64_t read_end, int64_t B, const void* k, int64_t k_row,
                          const void* v, int64_t v_row) {
  at::Tensor& kc = k_[static_cast<size_t>(layer)];
  at::Tensor& vc = v_[static_cast<size_t>(layer)];
  if (!kc.device().is_cpu() || !kc.is_contiguous() || !vc.is_contiguous() || kc.size(0) != B) return false;
  if (row_slots.defined() && (!row_slots.device().is_cpu() || row_slots.scalar_type() != at::kLong || !row_slots.is_contiguous() || row_slots.numel() != B))
    return false;
  require_capacity(read_end);
  const int64_t K = kc.size(1), E = kc.size(3), elt = kc.element_size();
  auto* kd = static_cast<char*>(kc.data_ptr());
  auto* vd = static_cast<char*>(vc.data_ptr());
  const int64_t* slots = row_slots.defined() ? row_slots.data_ptr<int64_t>() : nullptr;
  const auto slot_of = [&](int64_t b) { return slots != nullptr ? slots[b] : slot_start; };
  for (int64_t b = 0; b < B; ++b)  // every slot checked before anything is written
    if (slot_of(b) < 0 || slot_of(b) >= read_end)
      throw std::runtime_error("KV cache: row slot " + std::to_string(slot_of(b)) + " outside [0, " + std::to_string(read_end) + ")");
  for (int64_t b = 0; b < B; ++b) {
    const int64_t slot = slot_of(b);
    for (int64_t g = 0; g < K; ++g) {
      const int64_t at = ((b * K + g) * capacity_ + slot) * E * elt;
      std::memcpy(kd + at, static_cast<const char*>(k) + (b * k_row + g * E) * elt, static_cast<size_t>(E * elt));
      std::memcpy(vd + at, static_cast<const char*>(v) + (b * v_row + g * E) * elt, static_cast<size_t>(E * elt));
    }
  }
  return true;
}

std::pair<at::Tensor, at::Tensor> KVCache::update_rows(int64_t layer, const at::Tensor& row_slots, int64_t read_end, const at::Tensor& k,
                                                       const at::Tensor& v) {
  require_capacity(read_end);
  at::Tensor& kc = k_[static_cast<size_t>(layer)];
  at::Tensor& vc = v_[static_cast<size_t>(layer)];
  // (b, h, row_slots[b]) as a row of the cache seen as [B * K * capacity, E]; one index per step, shared by the layers.
  if (!row_slots.is_same(flat_for_)) {
    const int64_t B = k.size(0), K = k.size(1);
    flat_for_ = row_slots;
    flat_index_ = (at::arange(B * K, row_slots.options()) * capacity_).view({B, K}).add_(row_slots.unsqueeze(1)).view({B * K});
  }
  const int64_t E = k.size(3);
  kc.view({-1, E}).index_copy_(0, flat_index_, k.reshape({-1, E}));
  vc.view({-1, E}).index_copy_(0, flat_index_, v.reshape({-1, E}));
  return {kc.narrow(2, 0, read_end), vc.narrow(2, 0, read_end)};
}

void KVCache::put_rows(const at::Tensor& rows, const KVCache& src) {
  if (src.k_.size() != k_.size() || src.capacity_ > capacity_) throw std::invalid_argument("KVCache::put_rows: not a cache of these layers");
  for (size_t l = 0; l < k_.size(); ++l) {
    k_[l].narrow(2, 0, src.capacity_).index_copy_(0, rows, src.k_[l]);
    v_[l].narrow(2, 0, src.capacity_).index_copy_(0, rows, src.v_[l]);
  }
}

void KVCache::keep_rows(const at::Tensor& rows) {
  const at::Tensor both = shadow_from_ < 0 ? rows : at::cat({rows, rows + batch_});
  for (size_t l = 0; l < k_.size(); ++l) {
    const at::Tensor& r = shadow_from_ >= 0 && static_cast<int64_t>(l) >= shadow_from_ ? both : rows;
    k_[l] = k_[l].index_select(0, r);
    v_[l] = v_[l].index_select(0, r);
  }
  batch_ = rows.size(0);
}

void KVCache::add_shadow_rows(int64_t first_layer) {
  if (shadow_from_ >= 0) throw std::logic_error("KVCache::add_shadow_rows: the cache has shadow rows already");
  shadow_from_ = first_layer;
  for (size_t l = static_cast<size_t>(first_layer); l < k_.size(); ++l) {
    k_[l] = at::cat({k_[l], k_[l]});
    v_[l] = at::cat({v_[l], v_[l]});
  }
}

void KVCache::sync_shadow(int64_t slot) {
  for (size_t l = static_cast<size_t>(std::max<int64_t>(shadow_from_, 0)); shadow_from_ >= 0 && l < k_.size(); ++l) {
    k_[l].narrow(0, batch_, batch_).narrow(2, slot, 1).copy_(k_[l].narrow(0, 0, batch_).narrow(2, slot, 1));
    v_[l].narrow(0, batch_, batch_).narrow(2, slot, 1).copy_(v_[l].narrow(0, 0, batch_).narrow(2, slot, 1));
  }
}

std::vector<at::Tensor> KVCache::save_slot(int64_t slot, int64_t first_layer) const {
  std::vector<at::Tensor> out;
  for (size_t l = static_cast<size_t>(first_layer); l < k_.size(); ++l) {
    out.push_back(k_[l].narrow(2, slot, 1).clone());
    out.push_back(v_[l].narrow(2, slot, 1).clone());
  }
  return out;
}

void KVCache::restore_slot(int64_t slot, int64_t first_layer, const std::vector<at::Tensor>& saved) {
  if (saved.size() != 2 * (k_.size() - static_cast<size_t>(first_layer))) throw std::invalid_argument("KVCache::restore_slot: not a save of these layers");
  for (size_t l = static_cast<size_t>(first_layer), j = 0; l < k_.size(); ++l, j += 2) {
    k_[l].narrow(2, slot, 1).copy_(saved[j]);
    v_[l].narrow(2, slot, 1).copy_(saved[j + 1]);
  }
}

}  // namespace ts
