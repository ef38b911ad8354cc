// Hook points: explicit, named call sites in the forward pass (libtorch modules have no forward hooks).
// Names follow TransformerLens (docs/decisions.md):
//   blocks.{l}.hook_resid_pre   [B, T, D]  input of block l
//   blocks.{l}.hook_attn_out    [B, T, D]  attention output (after o_proj), before the residual add
//   blocks.{l}.hook_resid_mid   [B, T, D]  resid_pre + attn_out
//   blocks.{l}.hook_mlp_out     [B, T, D]  MLP output, before the residual add
//   blocks.{l}.hook_resid_post  [B, T, D]  output of block l (== HF hidden_states[l+1] for l < L-1)
//   blocks.{l}.attn.hook_z      [B, T, H, E] per-head input of o_proj
//   ln_final.hook_normalized    [B, T, D]  output of the final RMSNorm
// Observation (record, grad probes) and intervention (add, project out, replace, fn) attach to a
// HookSet; an unattached hook point costs one branch on a flag array.
//
// Positions are addressed by *slot*: the column of the (left-padded) sequence, the same in the prefill
// and at every decode step, so an intervention applies identically to both. Slots < prompt_end are prompt.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace ts {

enum class HookSite : uint8_t { RESID_PRE, ATTN_OUT, RESID_MID, MLP_OUT, RESID_POST, ATTN_Z, LN_FINAL };
inline constexpr int HOOK_SITE_COUNT = 7;

struct HookPoint {
  HookSite site = HookSite::RESID_POST;
  int64_t layer = 0;  // ignored (0) for LN_FINAL
  bool operator<(const HookPoint& o) const { return site != o.site ? site < o.site : layer < o.layer; }
  bool operator==(const HookPoint& o) const { return site == o.site && layer == o.layer; }
};

std::string hook_name(HookPoint point);
// Parses a TransformerLens name; throws InputError("<hook>", name, ...) if unknown or the layer is out of range.
HookPoint hook_parse(std::string_view name, int64_t n_layer);

struct HookContext {
  HookPoint point;
  int64_t slot_start = 0;  // slot of position 0 of this call
  int64_t n_pos = 0;       // T
  int64_t prompt_end = std::numeric_limits<int64_t>::max();
};

enum class PositionScope { ALL, PROMPT, GENERATED };

using HookFn = std::function<at::Tensor(const at::Tensor& x, const HookContext& ctx)>;

class HookSet {
 public:
  explicit HookSet(int64_t n_layer);

  // Observation.
  void record(HookPoint point);      // copy out every call's activation (detached)
  void grad_probe(HookPoint point);  // x + zeros(requires_grad): after backward, grad(point) = d metric / d x

  // Intervention. `vector` is [D] (or [H, E] / [H*E] at attn.hook_z); `mask`, if given, is [B, S_max]
  // per-slot coefficients (multiplied with coef). Ops at one point run in the order they were added.
  void add_vector(HookPoint point, at::Tensor vector, double coef = 1.0, PositionScope scope = PositionScope::ALL,
                  at::Tensor mask = {});
  void project_out(HookPoint point, at::Tensor direction, PositionScope scope = PositionScope::ALL, at::Tensor mask = {});
  void replace(HookPoint point, at::Tensor value);  // value [B, S_max, ...]: the activation at slot s becomes value[:, s]
  void add_fn(HookPoint point, HookFn fn);

  bool active(HookSite site, int64_t layer) const { return active_[index(site, layer)] != 0; }
  // True when every op acts on each batch row alone, through position scopes only (ADD, PROJECT_OUT
  // without a per-row mask): such a set may run on a batch whose finished rows have been dropped.
  // Records, probes, replacements, masks and functions are indexed by the original row.
  bool row_independent() const;
  at::Tensor run(HookSite site, int64_t layer, at::Tensor x, const HookContext& ctx);

  // Recorded activations of `point`, concatenated along positions: [B, T_total, ...].
  at::Tensor recorded(HookPoint point) const;
  std::vector<HookPoint> recorded_points() const;
  // Gradients of grad probes (after backward), concatenated along positions.
  at::Tensor grad(HookPoint point) const;
  void clear_records();
  void clear();

 private:
  struct Op {
    enum class Kind { RECORD, GRAD_PROBE, ADD, PROJECT_OUT, REPLACE, FN } kind;
    at::Tensor tensor;  // vector, unit direction or replacement value
    double coef = 1.0;
    PositionScope scope = PositionScope::ALL;
    at::Tensor mask;
    HookFn fn;
  };
  size_t index(HookSite site, int64_t layer) const { return static_cast<size_t>(site) * static_cast<size_t>(n_layer_) + static_cast<size_t>(layer); }
  void push(HookPoint point, Op op);
  at::Tensor position_coef(const Op& op, const at::Tensor& x, const HookContext& ctx) const;

  int64_t n_layer_;
  std::vector<uint8_t> active_;
  std::map<HookPoint, std::vector<Op>> ops_;
  std::map<HookPoint, std::vector<at::Tensor>> records_;
  std::map<HookPoint, std::vector<at::Tensor>> probes_;
};

// The call site used in forward(): free when `hooks` is null or nothing is attached at (site, layer).
inline at::Tensor hook(HookSet* hooks, HookSite site, int64_t layer, at::Tensor x, const HookContext& ctx) {
  if (hooks == nullptr || !hooks->active(site, layer)) return x;
  HookContext c = ctx;
  c.point = {site, layer};
  return hooks->run(site, layer, std::move(x), c);
}

}  // namespace ts
