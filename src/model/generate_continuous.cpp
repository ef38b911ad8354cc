#include "model/generate_continuous.h"

#include <ATen/ATen.h>
#include <ATen/TensorIndexing.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <limits>
#include <memory>
#include <stdexcept>

namespace ts {
namespace {

constexpr size_t NONE = std::numeric_limits<size_t>::max();

at::Tensor long_tensor(const std::vector<int64_t>& v, const at::Device& device) {
  return at::from_blob(const_cast<int64_t*>(v.data()), {static_cast<int64_t>(v.size())}, at::kLong).clone().to(device);
}

// The rows of one continuous batch. A row is active (its request decodes) or parked (free: it computes a
// dummy token at slot 0 of its own cache row until a request enters or the row leaves).
class ContinuousBatch {
 public:
  ContinuousBatch(const Transformer& model, const std::vector<GenerateRequest>& requests, const GenerateOptions& opt, HookSet* hooks,
                  const ContinuousOptions& batching)
      : model_(model), req_(requests), opt_(opt), hooks_(hooks), batching_(batching), results_(requests.size()),
        rows_(static_cast<size_t>(std::min<int64_t>(batching.max_rows, static_cast<int64_t>(requests.size())))) {
    int64_t longest = 0;
    for (const auto& r : requests) longest = std::max<int64_t>(longest, static_cast<int64_t>(r.prompt.size()));
    for (const auto& s : opt.stop_strings) max_stop_ = std::max(max_stop_, s.size());
    const ModelConfig& c = model.config();
    const int64_t R = static_cast<int64_t>(rows_.size()), capacity = longest + opt.max_new_tokens;
    cache_ = std::make_unique<KVCache>(model.n_layer_held(), R, c.n_kv_head, capacity, c.d_head, model.options());
    valid_ = at::zeros({R, capacity}, at::TensorOptions().dtype(at::kBool).device(model.options().device()));
    valid_.narrow(1, 0, 1).fill_(true);  // every row starts parked
  }

  std::vector<GenerateResult> run() {
    for (;;) {
      std::vector<int64_t> free = parked();
      while (!free.empty() && next_ < end_) {
        if (next_ > 0 && batching_.admit && !batching_.admit()) end_ = next_;
        else enter(free);
        free = parked();
      }
      if (free.size() == rows_.size()) break;
      if (next_ == end_ && !free.empty() && free.size() * 4 >= rows_.size()) compact();
      step();
    }
    results_.resize(end_);
    return std::move(results_);
  }

 private:
  struct Row {
    size_t request = NONE;
    int64_t next_slot = 0;  // where the row's next key goes
    int64_t position = 0;   // rotary position of the row's next token
  };

  std::vector<int64_t> parked() const {
    std::vector<int64_t> out;
    for (size_t r = 0; r < rows_.size(); ++r)
      if (rows_[r].request == NONE) out.push_back(static_cast<int64_t>(r));
    return out;
  }

  // Picks each listed row's token from `logits` [rows, 1, V] and appends it; finished requests leave.
  void take(const at::Tensor& logits, const std::vector<int64_t>& rows) {
    std::vector<uint64_t> streams(rows.size());
    std::vector<int64_t> steps(rows.size(), -1);
    for (size_t j = 0; j < rows.size(); ++j) {
      const size_t i = rows_[static_cast<size_t>(rows[j])].request;
      if (i == NONE) continue;
      streams[j] = req_[i].stream;
      steps[j] = static_cast<int64_t>(results_[i].tokens.size());
    }
    const std::vector<int64_t> next = choose_tokens(logits, opt_, streams, steps);
    for (size_t j = 0; j < rows.size(); ++j) {
      const size_t i = rows_[static_cast<size_t>(rows[j])].request;
      if (i == NONE || !accept_token(results_[i], next[j], opt_, max_stop_)) continue;
      if (batching_.on_done) batching_.on_done(i, results_[i]);
      park(rows[j]);
    }
  }

  void park(int64_t r) {
    rows_[static_cast<size_t>(r)] = Row{};
    valid_[r].fill_(false);
    valid_[r][0].fill_(true);
  }

  // The next requests' prompts, left-padded to their longest, prefilled in a cache of their own and copied
  // into the free rows; their first tokens come from this prefill.
  void enter(const std::vector<int64_t>& free) {
    const size_t k = std::min(free.size(), end_ - next_);
    const std::vector<int64_t> rows(free.begin(), free.begin() + static_cast<std::ptrdiff_t>(k));
    const LeftPadded in = left_pad(std::span<const GenerateRequest>(req_).subspan(next_, k), opt_.pad_id, 0, "generate_continuous");
    const int64_t B = static_cast<int64_t>(k), L = in.length;
    for (size_t b = 0; b < k; ++b) rows_[static_cast<size_t>(rows[b])] = Row{next_ + b, L, static_cast<int64_t>(req_[next_ + b].prompt.size())};
    next_ += k;
    const at::Device device = valid_.device();
    const ModelConfig& c = model_.config();
    KVCache prompt_cache(model_.n_layer_held(), B, c.n_kv_head, L, c.d_head, model_.options());
    ForwardArgs a;
    a.tokens = in.tokens.to(device);
    a.positions = in.positions.to(device);
    const at::Tensor key_valid = in.key_valid.to(device);
    a.key_valid = in.padded ? key_valid : at::Tensor();
    a.prompt_end = L;
    a.cache = &prompt_cache;
    a.hooks = hooks_;
    a.logits = LogitsMode::LAST;
    const at::Tensor logits = model_.forward(a);
    const at::Tensor index = long_tensor(rows, device);
    cache_->put_rows(index, prompt_cache);
    valid_.index_fill_(0, index, false);
    valid_.narrow(1, 0, L).index_copy_(0, index, key_valid);
    take(logits, rows);
  }

  // One token for every row, each at its own slot.
  void step() {
    const size_t R = rows_.size();
    std::vector<int64_t> tokens(R, opt_.pad_id), positions(R, 0), slots(R, 0), all(R);
    for (size_t r = 0; r < R; ++r) {
      all[r] = static_cast<int64_t>(r);
      if (rows_[r].request == NONE) continue;
      tokens[r] = results_[rows_[r].request].tokens.back();
      positions[r] = rows_[r].position++;
      slots[r] = rows_[r].next_slot++;
    }
    const at::Device device = valid_.device();
    const int64_t S = *std::max_element(slots.begin(), slots.end()) + 1;
    ForwardArgs a;
    a.tokens = long_tensor(tokens, device).unsqueeze(1);
    a.positions = long_tensor(positions, device).unsqueeze(1);
    a.row_slots = long_tensor(slots, device);
    valid_.index_put_({at::arange(static_cast<int64_t>(R), a.row_slots.options()), a.row_slots}, true);
    a.key_valid = valid_.narrow(1, 0, S);
    a.slot_start = S - 1;
    a.prompt_end = 0;  // every decode step feeds a generated token
    a.cache = cache_.get();
    a.hooks = hooks_;
    a.logits = LogitsMode::LAST;
    take(model_.forward(a), all);
  }

  // No request waits and a quarter of the rows are parked: the active rows alone stay.
  void compact() {
    std::vector<int64_t> keep;
    std::vector<Row> kept;
    for (size_t r = 0; r < rows_.size(); ++r)
      if (rows_[r].request != NONE) {
        keep.push_back(static_cast<int64_t>(r));
        kept.push_back(rows_[r]);
      }
    const at::Tensor index = long_tensor(keep, valid_.device());
    cache_->keep_rows(index);
    valid_ = valid_.index_select(0, index);
    rows_ = std::move(kept);
  }

  const Transformer& model_;
  const std::vector<GenerateRequest>& req_;
  const GenerateOptions& opt_;
  HookSet* hooks_;
  const ContinuousOptions& batching_;
  std::vector<GenerateResult> results_;
  std::vector<Row> rows_;
  size_t next_ = 0, end_ = req_.size(), max_stop_ = 0;  // requests [next_, end_) wait
  std::unique_ptr<KVCache> cache_;
  at::Tensor valid_;  // [rows, capacity] bool: the slots each row's request has written (parked rows: slot 0)
};

}  // namespace

std::vector<GenerateResult> generate_continuous(const Transformer& model, const std::vector<GenerateRequest>& requests,
                                                const GenerateOptions& options, HookSet* hooks, const ContinuousOptions& batching) {
  const int64_t max_rows = batching.max_rows;
  if (max_rows < 1) throw std::invalid_argument("generate_continuous: max_rows must be at least 1");
  if (!options.stop_strings.empty() && !options.decode) throw std::invalid_argument("generate_continuous: stop strings need a decoder");
  if (requests.empty()) return {};
  static const bool off = [] {
    const char* v = std::getenv("THINKSTEER_CONTINUOUS");  // "0": batches of max_rows, as generate_batch (a suspected batching problem)
    return v != nullptr && std::string(v) == "0";
  }();
  if (!off && (hooks == nullptr || hooks->row_independent())) {
    c10::InferenceMode inference;
    return ContinuousBatch(model, requests, options, hooks, batching).run();
  }
  std::vector<GenerateResult> out;
  for (size_t begin = 0; begin < requests.size(); begin += static_cast<size_t>(max_rows)) {
    if (begin > 0 && batching.admit && !batching.admit()) break;
    const size_t end = std::min(requests.size(), begin + static_cast<size_t>(max_rows));
    const std::vector<GenerateRequest> group(requests.begin() + static_cast<std::ptrdiff_t>(begin), requests.begin() + static_cast<std::ptrdiff_t>(end));
    for (GenerateResult& r : generate_batch(model, group, options, hooks)) {
      if (batching.on_done) batching.on_done(out.size(), r);
      out.push_back(std::move(r));
    }
  }
  return out;
}

}  // namespace ts
