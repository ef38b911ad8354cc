#include "model/generate.h"

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

std::vector<GenerateResult> generate_batch(const Transformer& model, const std::vector<GenerateRequest>& requests,
                                           const GenerateOptions& opt, HookSet* hooks) {
  const int64_t B = static_cast<int64_t>(requests.size());
  std::vector<GenerateResult> results(static_cast<size_t>(B));
  if (B == 0) return results;
  if (!opt.stop_strings.empty() && !opt.decode) throw std::invalid_argument("generate_batch: stop strings need a decoder");
  c10::InferenceMode inference;

  const ModelConfig& c = model.config();
  const auto device = model.options().device();
  int64_t prompt_len = 0;
  for (const auto& r : requests) {
    if (r.prompt.empty()) throw std::invalid_argument("generate_batch: empty prompt");
    prompt_len = std::max<int64_t>(prompt_len, static_cast<int64_t>(r.prompt.size()));
  }
  const int64_t capacity = prompt_len + opt.max_new_tokens;

  // Left-padded prompt slots, per-row positions and key validity (built on the CPU, moved once).
  at::Tensor tokens = at::full({B, prompt_len}, opt.pad_id, at::kLong);
  at::Tensor positions = at::zeros({B, prompt_len}, at::kLong);
  at::Tensor key_valid = at::zeros({B, capacity}, at::kBool);
  std::vector<int64_t> next_position(static_cast<size_t>(B));
  bool padded = false;
  {
    auto tok = tokens.accessor<int64_t, 2>();
    auto pos = positions.accessor<int64_t, 2>();
    auto valid = key_valid.accessor<bool, 2>();
    for (int64_t b = 0; b < B; ++b) {
      const auto& p = requests[static_cast<size_t>(b)].prompt;
      const int64_t pad = prompt_len - static_cast<int64_t>(p.size());
      padded = padded || pad > 0;
      for (int64_t s = pad; s < prompt_len; ++s) {
        tok[b][s] = p[static_cast<size_t>(s - pad)];
        pos[b][s] = s - pad;
        valid[b][s] = true;
      }
      for (int64_t s = prompt_len; s < capacity; ++s) valid[b][s] = true;  // generated slots
      next_position[static_cast<size_t>(b)] = static_cast<int64_t>(p.size());
    }
  }
  tokens = tokens.to(device);
  positions = positions.to(device);
  key_valid = key_valid.to(device);

  KVCache cache(model.n_layer_held(), B, c.n_kv_head, capacity, c.d_head, model.options());
  ForwardArgs args;
  args.tokens = tokens;
  args.positions = positions;
  args.key_valid = padded ? key_valid.narrow(1, 0, prompt_len) : at::Tensor();
  args.slot_start = 0;
  args.prompt_end = prompt_len;
  args.cache = &cache;
  args.hooks = hooks;
  args.logits = LogitsMode::LAST;
  at::Tensor logits = model.forward(args);  // [B, 1, V]

  std::vector<bool> done(static_cast<size_t>(B), false);
  size_t max_stop = 0;
  for (const auto& s : opt.stop_strings) max_stop = std::max(max_stop, s.size());
  const bool greedy = opt.sampling.temperature <= 0.0;
  // Batch row -> request. Without hooks, finished rows are dropped from the batch (and the KV cache)
  // once a quarter of it has finished; with hooks the batch keeps its rows, because hook masks,
  // replacement values and records are indexed by the original row.
  std::vector<size_t> rows(static_cast<size_t>(B));
  std::iota(rows.begin(), rows.end(), size_t{0});

  for (int64_t step = 0; step < opt.max_new_tokens; ++step) {
    const int64_t n = static_cast<int64_t>(rows.size());
    std::vector<int64_t> next(static_cast<size_t>(n), opt.pad_id);
    if (greedy) {
      at::Tensor ids = logits.select(1, 0).argmax(-1).to(at::kCPU);
      auto acc = ids.accessor<int64_t, 1>();
      for (int64_t j = 0; j < n; ++j) next[static_cast<size_t>(j)] = acc[j];
    } else {
      at::Tensor probs = logits.select(1, 0).to(at::kFloat).to(at::kCPU).contiguous();
      const int64_t V = probs.size(1);
      for (int64_t j = 0; j < n; ++j) {
        const size_t i = rows[static_cast<size_t>(j)];
        if (done[i]) continue;
        const double u = stream_uniform(opt.seed, requests[i].stream, static_cast<uint64_t>(step));
        next[static_cast<size_t>(j)] = sample_from_logits(probs.data_ptr<float>() + j * V, V, opt.sampling, u);
      }
    }
    int64_t n_done = 0;
    for (int64_t j = 0; j < n; ++j) {
      const size_t i = rows[static_cast<size_t>(j)];
      if (done[i]) {
        ++n_done;
        continue;
      }
      GenerateResult& r = results[i];
      r.tokens.push_back(static_cast<int32_t>(next[static_cast<size_t>(j)]));
      if (std::find(opt.eos_ids.begin(), opt.eos_ids.end(), next[static_cast<size_t>(j)]) != opt.eos_ids.end()) {
        r.finish = FinishReason::EOS;
        done[i] = true;
      } else if (max_stop > 0) {
        // Decode only a tail long enough to contain any stop string ending at this token.
        const size_t tail = std::min(r.tokens.size(), max_stop + 2);
        const std::string text = opt.decode(std::span<const int32_t>(r.tokens.data() + r.tokens.size() - tail, tail));
        for (const auto& s : opt.stop_strings)
          if (text.find(s) != std::string::npos) {
            r.finish = FinishReason::STOP_STRING;
            done[i] = true;
            break;
          }
      }
      n_done += done[i] ? 1 : 0;
    }
    if (n_done == n || step + 1 == opt.max_new_tokens) break;

    if (hooks == nullptr && n_done * 4 >= n) {
      std::vector<int64_t> keep;
      std::vector<size_t> kept_rows;
      std::vector<int64_t> kept_next;
      for (int64_t j = 0; j < n; ++j)
        if (!done[rows[static_cast<size_t>(j)]]) {
          keep.push_back(j);
          kept_rows.push_back(rows[static_cast<size_t>(j)]);
          kept_next.push_back(next[static_cast<size_t>(j)]);
        }
      at::Tensor index = at::from_blob(keep.data(), {static_cast<int64_t>(keep.size())}, at::kLong).clone().to(device);
      cache.keep_rows(index);
      key_valid = key_valid.index_select(0, index);
      rows = std::move(kept_rows);
      next = std::move(kept_next);
    }

    // Feed the chosen tokens (finished rows still in the batch compute on; their outputs are ignored).
    const int64_t m = static_cast<int64_t>(rows.size());
    std::vector<int64_t> pos(static_cast<size_t>(m));
    for (int64_t j = 0; j < m; ++j) pos[static_cast<size_t>(j)] = next_position[rows[static_cast<size_t>(j)]]++;
    args.tokens = at::from_blob(next.data(), {m, 1}, at::kLong).clone().to(device);
    args.positions = at::from_blob(pos.data(), {m, 1}, at::kLong).clone().to(device);
    args.slot_start = prompt_len + step;
    args.key_valid = padded ? key_valid.narrow(1, 0, args.slot_start + 1) : at::Tensor();
    logits = model.forward(args);
  }
  return results;
}

}  // namespace ts
