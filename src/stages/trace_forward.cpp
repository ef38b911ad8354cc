#include "stages/trace_forward.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <numeric>

#include "core/error.h"

namespace ts::stages {

BlockHook resolve_block_hook(const std::string& name, const std::vector<std::string>& layers, int64_t n_layer, const std::string& section) {
  const bool star = name.rfind("blocks.*.", 0) == 0;
  const HookPoint first = hook_parse(star ? "blocks.0." + name.substr(9) : name, n_layer);
  if (first.site == HookSite::ATTN_Z || first.site == HookSite::LN_FINAL)
    throw InputError("<config>", section + ".hook", "'" + name + "' is not a d_model-sized block hook (resid_pre, attn_out, resid_mid, mlp_out or resid_post)");
  BlockHook h;
  h.site = first.site;
  const std::string at0 = hook_name({first.site, 0});
  h.pattern = "blocks.{l}" + at0.substr(std::string("blocks.0").size());
  if (!star) {
    if (!layers.empty()) throw InputError("<config>", section + ".layers", "needs a blocks.* hook (" + section + ".hook names one layer)");
    h.layers = {first.layer};
    return h;
  }
  for (const std::string& l : layers) {
    const int64_t v = std::stoll(l);
    if (v >= n_layer) throw InputError("<config>", section + ".layers", "layer " + l + " >= the model's " + std::to_string(n_layer) + " layers");
    h.layers.push_back(v);
  }
  if (h.layers.empty()) {
    h.layers.resize(static_cast<size_t>(n_layer));
    std::iota(h.layers.begin(), h.layers.end(), int64_t{0});
  }
  std::sort(h.layers.begin(), h.layers.end());
  h.layers.erase(std::unique(h.layers.begin(), h.layers.end()), h.layers.end());
  return h;
}

std::vector<std::vector<int64_t>> trace_batches(const std::vector<artifacts::Generation>& gens, std::vector<int64_t> order, int64_t batch_size) {
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return gens[static_cast<size_t>(a)].ids.size() > gens[static_cast<size_t>(b)].ids.size(); });
  std::vector<std::vector<int64_t>> out;
  for (size_t i = 0; i < order.size(); i += static_cast<size_t>(batch_size))
    out.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(i), order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), i + static_cast<size_t>(batch_size))));
  return out;
}

Range trace_batch_share(const std::vector<std::vector<int64_t>>& batches, const std::vector<artifacts::Generation>& gens, const Runtime& rt) {
  std::vector<int64_t> costs;
  for (const auto& b : batches) costs.push_back(static_cast<int64_t>(b.size() * gens[static_cast<size_t>(b.front())].ids.size()));
  return partition_contiguous(costs, rt.n_replicas)[static_cast<size_t>(rt.replica)];
}

TraceModel load_trace_model(const Config& cfg, Runtime& rt) {
  TraceModel model{load_stage_model(cfg, rt), nullptr, 1};
  model.pipeline = std::make_unique<Pipeline>(*model.m.model, rt);
  model.micro = rt.n_stages > 1 ? (cfg.parallel.micro_batches > 0 ? cfg.parallel.micro_batches : rt.n_stages) : 1;
  return model;
}

void forward_traces(TraceModel& model, Runtime& rt, const std::vector<artifacts::Generation>& gens, const std::vector<int64_t>& batch,
                    const WithHooks& with_hooks) {
  int64_t T = 0;
  for (int64_t t : batch) T = std::max<int64_t>(T, static_cast<int64_t>(gens[static_cast<size_t>(t)].ids.size()));
  for (const Range& mb : even_ranges(static_cast<int64_t>(batch.size()), model.micro)) {
    const std::span<const int64_t> traces = std::span<const int64_t>(batch).subspan(static_cast<size_t>(mb.begin), static_cast<size_t>(mb.size()));
    // Right padding: with causal attention the real tokens never see the padding after them.
    at::Tensor tokens = at::full({mb.size(), T}, model.m.pad_id, at::kLong);
    for (int64_t b = 0; b < mb.size(); ++b) {
      const std::vector<int32_t>& ids = gens[static_cast<size_t>(traces[static_cast<size_t>(b)])].ids;
      tokens[b].narrow(0, 0, static_cast<int64_t>(ids.size())).copy_(at::tensor(std::vector<int64_t>(ids.begin(), ids.end()), at::kLong));
    }
    HookSet hooks(model.m.config.n_layer);
    with_hooks(hooks, traces, T, [&] {
      ForwardArgs args;
      args.tokens = tokens.to(rt.device);
      args.positions = at::arange(T, at::TensorOptions().dtype(at::kLong)).unsqueeze(0).expand({mb.size(), T}).contiguous().to(rt.device);
      args.hooks = &hooks;
      args.logits = LogitsMode::NONE;
      if (rt.n_stages > 1) model.pipeline->forward(args);
      else model.m.model->forward(args);
    });
  }
}

}  // namespace ts::stages
