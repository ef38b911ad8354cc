#include "model/generate.h"

#include "core/error.h"
#include "model/logits_scan.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <numeric>
#include <stdexcept>

namespace ts {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::EOS: return "eos";
    case FinishReason::STOP_STRING: return "stop_string";
    case FinishReason::LENGTH: return "length";
  }
  return "?";
}

Decoder::Decoder(const std::vector<GenerateRequest>& requests, const GenerateOptions& opt, const ModelConfig& c,
                 int64_t n_layer_held, const at::TensorOptions& cache_options, HookSet* hooks)
    : requests_(requests), opt_(opt), hooks_(hooks), results_(requests.size()), done_(requests.size(), false),
      rows_(requests.size()), next_position_(requests.size()) {
  const int64_t B = static_cast<int64_t>(requests.size());
  if (B == 0) throw std::invalid_argument("Decoder: empty batch");
  if (!opt.stop_strings.empty() && !opt.decode) throw std::invalid_argument("Decoder: stop strings need a decoder");
  for (const auto& s : opt.stop_strings) max_stop_ = std::max(max_stop_, s.size());
  std::iota(rows_.begin(), rows_.end(), size_t{0});
  const LeftPadded in = left_pad(requests, opt.pad_id, opt.max_new_tokens, "Decoder");
  prompt_len_ = in.length;
  padded_ = in.padded;
  for (size_t b = 0; b < requests.size(); ++b) next_position_[b] = static_cast<int64_t>(requests[b].prompt.size());
  const int64_t capacity = prompt_len_ + opt.max_new_tokens;
  const auto device = cache_options.device();
  key_valid_ = in.key_valid.to(device);
  cache_ = std::make_unique<KVCache>(n_layer_held, B, c.n_kv_head, capacity, c.d_head, cache_options);
  args_.tokens = in.tokens.to(device);
  args_.positions = in.positions.to(device);
  args_.key_valid = padded_ ? key_valid_.narrow(1, 0, prompt_len_) : at::Tensor();
  args_.slot_start = 0;
  args_.prompt_end = prompt_len_;
  args_.cache = cache_.get();
  args_.hooks = hooks;
  args_.logits = LogitsMode::LAST;
}

LeftPadded left_pad(std::span<const GenerateRequest> requests, int64_t pad_id, int64_t generated, const char* who) {
  LeftPadded out;
  for (const auto& r : requests) {
    if (r.prompt.empty()) throw std::invalid_argument(std::string(who) + ": empty prompt");
    out.length = std::max<int64_t>(out.length, static_cast<int64_t>(r.prompt.size()));
  }
  const auto B = static_cast<int64_t>(requests.size()), L = out.length;
  out.tokens = at::full({B, L}, pad_id, at::kLong);
  out.positions = at::zeros({B, L}, at::kLong);
  out.key_valid = at::zeros({B, L + generated}, at::kBool);
  auto tok = out.tokens.accessor<int64_t, 2>();
  auto pos = out.positions.accessor<int64_t, 2>();
  auto valid = out.key_valid.accessor<bool, 2>();
  for (int64_t b = 0; b < B; ++b) {
    const auto& p = requests[static_cast<size_t>(b)].prompt;
    const int64_t pad = L - static_cast<int64_t>(p.size());
    out.padded = out.padded || pad > 0;
    for (int64_t s = pad; s < L; ++s) {
      tok[b][s] = p[static_cast<size_t>(s - pad)];
      pos[b][s] = s - pad;
      valid[b][s] = true;
    }
    for (int64_t s = L; s < L + generated; ++s) valid[b][s] = true;
  }
  return out;
}

std::vector<int64_t> choose_tokens(const at::Tensor& logits, const GenerateOptions& opt, std::span<const uint64_t> streams,
                                   std::span<const int64_t> steps) {
  const int64_t n = logits.size(0);
  const bool greedy = opt.sampling.temperature <= 0.0;
  const auto not_finite = [&] {
    const int64_t step = steps.empty() ? 0 : *std::max_element(steps.begin(), steps.end());
    return NonFiniteError("logits are not finite at generation step " + std::to_string(step) + " (a steering edit or a dtype overflow?)");
  };
  at::Tensor last = logits.select(1, 0);
  std::vector<int64_t> next(static_cast<size_t>(n), opt.pad_id);
  if (logits_scan_applies(last)) {  // the check and the greedy choice in one pass (model/logits_scan.h)
    if (!logits_scan(last, greedy ? &next : nullptr)) throw not_finite();
    if (greedy) return next;
  } else {
    // Reduced-precision logits widened first (exact): torch's CPU argmax and isfinite run several times slower on bf16.
    if (logits.is_floating_point() && logits.element_size() < 4) last = last.to(at::kFloat);
    if (!at::isfinite(last).all().item<bool>()) throw not_finite();
    if (greedy) {
      at::Tensor ids = last.argmax(-1).to(at::kCPU);
      auto acc = ids.accessor<int64_t, 1>();
      for (int64_t j = 0; j < n; ++j) next[static_cast<size_t>(j)] = acc[j];
      return next;
    }
  }
  at::Tensor probs = last.to(at::kFloat).to(at::kCPU).contiguous();
  const int64_t V = probs.size(1);
  for (int64_t j = 0; j < n; ++j) {
    const auto k = static_cast<size_t>(j);
    if (steps[k] < 0) continue;
    const double u = stream_uniform(opt.seed, streams[k], static_cast<uint64_t>(steps[k]));
    next[k] = sample_from_logits(probs.data_ptr<float>() + j * V, V, opt.sampling, u);
  }
  return next;
}

bool accept_token(GenerateResult& r, int64_t token, const GenerateOptions& opt, size_t max_stop) {
  r.tokens.push_back(static_cast<int32_t>(token));
  if (std::find(opt.eos_ids.begin(), opt.eos_ids.end(), token) != opt.eos_ids.end()) {
    r.finish = FinishReason::EOS;
    return true;
  }
  if (max_stop > 0) {
    // Decode only a tail long enough to contain any stop string ending at this token.
    const size_t tail = std::min(r.tokens.size(), max_stop + 2);
    const std::string text = opt.decode(std::span<const int32_t>(r.tokens.data() + r.tokens.size() - tail, tail));
    for (const auto& s : opt.stop_strings)
      if (text.find(s) != std::string::npos) {
        r.finish = FinishReason::STOP_STRING;
        return true;
      }
  }
  r.finish = FinishReason::LENGTH;
  return static_cast<int64_t>(r.tokens.size()) >= opt.max_new_tokens;
}

std::vector<int64_t> Decoder::choose(const at::Tensor& logits) const {
  const int64_t n = rows();
  std::vector<uint64_t> streams(static_cast<size_t>(n));
  std::vector<int64_t> steps(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) {
    const size_t i = rows_[static_cast<size_t>(j)];
    streams[static_cast<size_t>(j)] = requests_[i].stream;
    steps[static_cast<size_t>(j)] = done_[i] ? -1 : step_;
  }
  return choose_tokens(logits, opt_, streams, steps);
}

bool Decoder::advance(const std::vector<int64_t>& chosen) {
  std::vector<int64_t> next = chosen;
  const int64_t n = rows();
  if (static_cast<int64_t>(next.size()) != n) throw std::invalid_argument("Decoder::advance: one token per row expected");
  int64_t n_done = 0;
  for (int64_t j = 0; j < n; ++j) {
    const size_t i = rows_[static_cast<size_t>(j)];
    if (done_[i]) {
      ++n_done;
      continue;
    }
    done_[i] = accept_token(results_[i], next[static_cast<size_t>(j)], opt_, max_stop_) && results_[i].finish != FinishReason::LENGTH;
    n_done += done_[i] ? 1 : 0;
  }
  if (n_done == n || step_ + 1 == opt_.max_new_tokens) return false;

  // Finished rows leave the batch (and the KV cache) once a quarter of it has finished, unless a hook
  // is bound to the original rows (masks, replacement values, records: HookSet::row_independent);
  // steering edits (a vector added or projected out by position scope) let them leave.
  const auto device = key_valid_.device();
  if ((hooks_ == nullptr || hooks_->row_independent()) && n_done * 4 >= n) {
    std::vector<int64_t> keep;
    std::vector<size_t> kept_rows;
    std::vector<int64_t> kept_next;
    for (int64_t j = 0; j < n; ++j)
      if (!done_[rows_[static_cast<size_t>(j)]]) {
        keep.push_back(j);
        kept_rows.push_back(rows_[static_cast<size_t>(j)]);
        kept_next.push_back(next[static_cast<size_t>(j)]);
      }
    at::Tensor index = at::from_blob(keep.data(), {static_cast<int64_t>(keep.size())}, at::kLong).clone().to(device);
    cache_->keep_rows(index);
    key_valid_ = key_valid_.index_select(0, index);
    rows_ = std::move(kept_rows);
    next = std::move(kept_next);
  }

  // Feed the chosen tokens (finished rows still in the batch compute on; their outputs are ignored).
  const int64_t m = rows();
  std::vector<int64_t> pos(static_cast<size_t>(m));
  for (int64_t j = 0; j < m; ++j) pos[static_cast<size_t>(j)] = next_position_[rows_[static_cast<size_t>(j)]]++;
  args_.tokens = at::from_blob(next.data(), {m, 1}, at::kLong).clone().to(device);
  args_.positions = at::from_blob(pos.data(), {m, 1}, at::kLong).clone().to(device);
  args_.slot_start = prompt_len_ + step_;
  args_.key_valid = padded_ ? key_valid_.narrow(1, 0, args_.slot_start + 1) : at::Tensor();
  ++step_;
  return true;
}

std::vector<GenerateResult> generate_batch(const Transformer& model, const std::vector<GenerateRequest>& requests,
                                           const GenerateOptions& opt, HookSet* hooks) {
  if (requests.empty()) return {};
  c10::InferenceMode inference;
  Decoder decoder(requests, opt, model.config(), model.n_layer_held(), model.options(), hooks);
  at::Tensor logits = model.forward(decoder.args());
  while (decoder.advance(decoder.choose(logits))) logits = model.forward(decoder.args());
  return decoder.take_results();
}

}  // namespace ts
