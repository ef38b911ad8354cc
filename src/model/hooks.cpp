#include "model/hooks.h"

#include <ATen/ATen.h>

#include "core/error.h"

namespace ts {
namespace {

constexpr const char* SITE_SUFFIX[HOOK_SITE_COUNT] = {"hook_resid_pre", "hook_attn_out", "hook_resid_mid", "hook_mlp_out",
                                                      "hook_resid_post", "attn.hook_z", "ln_final.hook_normalized"};

}  // namespace

std::string hook_name(HookPoint p) {
  if (p.site == HookSite::LN_FINAL) return "ln_final.hook_normalized";
  return "blocks." + std::to_string(p.layer) + "." + SITE_SUFFIX[static_cast<int>(p.site)];
}

HookPoint hook_parse(std::string_view name, int64_t n_layer) {
  const std::string n(name);
  if (n == "ln_final.hook_normalized") return {HookSite::LN_FINAL, 0};
  const std::string prefix = "blocks.";
  if (n.rfind(prefix, 0) == 0) {
    size_t dot = n.find('.', prefix.size());
    if (dot != std::string::npos && dot > prefix.size()) {
      const std::string num = n.substr(prefix.size(), dot - prefix.size());
      if (num.find_first_not_of("0123456789") == std::string::npos && num.size() < 10) {
        const int64_t layer = std::stoll(num);
        const std::string suffix = n.substr(dot + 1);
        for (int s = 0; s < HOOK_SITE_COUNT - 1; ++s) {
          if (suffix == SITE_SUFFIX[s]) {
            if (layer >= n_layer)
              throw InputError("<hook>", n, "layer " + std::to_string(layer) + " out of range (model has " + std::to_string(n_layer) + " layers, 0-based)");
            return {static_cast<HookSite>(s), layer};
          }
        }
      }
    }
  }
  throw InputError("<hook>", n,
                   "unknown hook name (expected blocks.{l}.hook_resid_pre|hook_attn_out|hook_resid_mid|hook_mlp_out|hook_resid_post, "
                   "blocks.{l}.attn.hook_z or ln_final.hook_normalized)");
}

HookSet::HookSet(int64_t n_layer) : n_layer_(n_layer), active_(static_cast<size_t>(HOOK_SITE_COUNT * n_layer), 0) {}

void HookSet::push(HookPoint p, Op op) {
  if (p.site == HookSite::LN_FINAL) p.layer = 0;
  if (p.layer < 0 || p.layer >= n_layer_) throw InputError("<hook>", hook_name(p), "layer out of range");
  ops_[p].push_back(std::move(op));
  active_[index(p.site, p.layer)] = 1;
}

void HookSet::record(HookPoint p) { push(p, Op{Op::Kind::RECORD, {}, 1.0, PositionScope::ALL, {}, {}}); }
void HookSet::grad_probe(HookPoint p) { push(p, Op{Op::Kind::GRAD_PROBE, {}, 1.0, PositionScope::ALL, {}, {}}); }

void HookSet::add_vector(HookPoint p, at::Tensor vector, double coef, PositionScope scope, at::Tensor mask) {
  push(p, Op{Op::Kind::ADD, std::move(vector), coef, scope, std::move(mask), {}});
}

void HookSet::project_out(HookPoint p, at::Tensor direction, PositionScope scope, at::Tensor mask) {
  at::Tensor unit = direction / direction.norm();
  push(p, Op{Op::Kind::PROJECT_OUT, unit, 1.0, scope, std::move(mask), {}});
}

void HookSet::replace(HookPoint p, at::Tensor value) { push(p, Op{Op::Kind::REPLACE, std::move(value), 1.0, PositionScope::ALL, {}, {}}); }
void HookSet::add_fn(HookPoint p, HookFn fn) { push(p, Op{Op::Kind::FN, {}, 1.0, PositionScope::ALL, {}, std::move(fn)}); }

bool HookSet::row_independent() const {
  for (const auto& [point, ops] : ops_)
    for (const Op& op : ops)
      if ((op.kind != Op::Kind::ADD && op.kind != Op::Kind::PROJECT_OUT) || op.mask.defined()) return false;
  return true;
}

// Per-position coefficient broadcastable to x ([B, T, 1] or [B, T, 1, 1]); undefined means "coef everywhere".
at::Tensor HookSet::position_coef(const Op& op, const at::Tensor& x, const HookContext& ctx) const {
  const int64_t t0 = ctx.slot_start, n = ctx.n_pos;
  at::Tensor coef;
  if (op.scope != PositionScope::ALL) {
    // slots [t0, t0+n): prompt if slot < prompt_end
    at::Tensor slots = at::arange(t0, t0 + n, at::TensorOptions().dtype(at::kLong).device(x.device()));
    at::Tensor in_scope = op.scope == PositionScope::PROMPT ? slots.lt(ctx.prompt_end) : slots.ge(ctx.prompt_end);
    coef = in_scope.to(x.scalar_type()).unsqueeze(0).expand({x.size(0), n});
  }
  if (op.mask.defined()) {
    at::Tensor m = op.mask.narrow(1, t0, n).to(x.options());
    coef = coef.defined() ? coef * m : m;
  }
  if (!coef.defined()) return coef;
  while (coef.dim() < x.dim()) coef = coef.unsqueeze(-1);
  return coef;
}

at::Tensor HookSet::run(HookSite site, int64_t layer, at::Tensor x, const HookContext& ctx) {
  const HookPoint p{site, site == HookSite::LN_FINAL ? 0 : layer};
  for (const Op& op : ops_[p]) {
    switch (op.kind) {
      case Op::Kind::RECORD: records_[p].push_back(x.detach().clone()); break;
      case Op::Kind::GRAD_PROBE: {
        at::Tensor probe = at::zeros_like(x).requires_grad_(true);
        probes_[p].push_back(probe);
        x = x + probe;
        break;
      }
      case Op::Kind::ADD: {
        at::Tensor v = op.tensor.to(x.scalar_type()).to(x.device()).reshape(x.sizes().slice(2));
        at::Tensor c = position_coef(op, x, ctx);
        x = c.defined() ? x + (c * op.coef) * v : x + op.coef * v;
        break;
      }
      case Op::Kind::PROJECT_OUT: {
        at::Tensor r = op.tensor.to(x.scalar_type()).to(x.device()).reshape(x.sizes().slice(2));
        const int64_t nd = r.dim();
        std::vector<int64_t> dims;
        for (int64_t d = 0; d < nd; ++d) dims.push_back(x.dim() - nd + d);
        at::Tensor proj = (x * r).sum(dims, /*keepdim=*/true) * r;  // (x . r) r
        at::Tensor c = position_coef(op, x, ctx);
        x = c.defined() ? x - c * proj : x - proj;
        break;
      }
      case Op::Kind::REPLACE: x = op.tensor.narrow(1, ctx.slot_start, ctx.n_pos).to(x.options()); break;
      case Op::Kind::FN: x = op.fn(x, ctx); break;
    }
  }
  return x;
}

at::Tensor HookSet::recorded(HookPoint p) const {
  if (p.site == HookSite::LN_FINAL) p.layer = 0;
  auto it = records_.find(p);
  if (it == records_.end() || it->second.empty()) throw std::runtime_error("nothing recorded at " + hook_name(p));
  return it->second.size() == 1 ? it->second[0] : at::cat(it->second, 1);
}

std::vector<HookPoint> HookSet::recorded_points() const {
  std::vector<HookPoint> out;
  for (const auto& [p, v] : records_) out.push_back(p);
  return out;
}

at::Tensor HookSet::grad(HookPoint p) const {
  if (p.site == HookSite::LN_FINAL) p.layer = 0;
  auto it = probes_.find(p);
  if (it == probes_.end() || it->second.empty()) throw std::runtime_error("no grad probe at " + hook_name(p));
  std::vector<at::Tensor> grads;
  for (const auto& probe : it->second) grads.push_back(probe.grad().defined() ? probe.grad() : at::zeros_like(probe));
  return grads.size() == 1 ? grads[0] : at::cat(grads, 1);
}

void HookSet::clear_records() {
  records_.clear();
  probes_.clear();
}

void HookSet::clear() {
  clear_records();
  ops_.clear();
  std::fill(active_.begin(), active_.end(), 0);
}

}  // namespace ts
