#include "model/transformer.h"

#include "model/decode_attention.h"
#include "model/prefill_attention.h"
#include "model/small_linear.h"

#include <ATen/ATen.h>

#include <cmath>
#include <algorithm>
#include <stdexcept>

namespace ts {

at::Tensor rope_inv_freq(const ModelConfig& c) {
  // HF: inv_freq = 1 / theta ** (arange(0, E, 2).float() / E), all in fp32.
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  at::Tensor exponent = at::arange(0, c.d_head, 2, at::TensorOptions().dtype(at::kLong)).to(at::kFloat) / static_cast<double>(c.d_head);
  at::Tensor inv_freq = 1.0 / at::pow(at::scalar_tensor(c.rope.theta, f32), exponent);
  if (c.rope.type == "linear") {
    inv_freq = inv_freq / c.rope.factor;
  } else if (c.rope.type == "llama3") {
    // Llama 3.1: keep high frequencies, divide low ones by `factor`, interpolate in between.
    const double factor = c.rope.factor, low = c.rope.low_freq_factor, high = c.rope.high_freq_factor;
    const double old_ctx = static_cast<double>(c.rope.original_max_position_embeddings);
    const double low_freq_wavelen = old_ctx / low, high_freq_wavelen = old_ctx / high;
    at::Tensor wavelen = 2 * M_PI / inv_freq;
    at::Tensor scaled = at::where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq);
    at::Tensor smooth = (old_ctx / wavelen - low) / (high - low);
    at::Tensor smoothed = (1 - smooth) * scaled / factor + smooth * scaled;
    at::Tensor is_medium = (wavelen >= high_freq_wavelen).logical_and(wavelen <= low_freq_wavelen);
    inv_freq = at::where(is_medium, smoothed, scaled);
  }
  return inv_freq;
}

namespace {

at::Tensor rotate_half(const at::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

// x: [B, T, n, E]; cos, sin: [B, T, 1, E] (decode rows: one fused pass with the same roundings, model/small_linear.h)
at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  if (small_rope_applies(x, cos, sin)) return small_rope(x, cos, sin);
  return x * cos + rotate_half(x) * sin;
}

// softmax(q kᵀ / √E + mask) v. On the CPU without autograd one query per row (the decode step) goes to
// model/decode_attention.h and more (a prefill) to model/prefill_attention.h; otherwise torch's SDPA, where a few bf16
// queries go through it in fp32 (the kernels off, a CPU without AVX-512 BF16): torch's bf16 CPU kernel costs 0.6 ms a call
// at a batch-8 step against 0.1 ms in fp32 (bench_engine --profile; docs/architecture.md "Decode kernels"), and the
// casts of q, k and v are small there. The result is rounded to bf16 once, as the bf16 kernel's fp32 accumulation is.
at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask, bool causal, bool gqa) {
  constexpr int64_t SMALL_T = 16;
  if (decode_attention_applies(q, k, v, mask, causal)) return decode_attention(q, k, v, mask);
  if (prefill_attention_applies(q, k, v, mask, causal)) return prefill_attention(q, k, v, mask, causal);
  const std::optional<at::Tensor> m = mask.defined() ? std::optional<at::Tensor>(mask) : std::nullopt;
  if (q.device().is_cpu() && q.scalar_type() == at::kBFloat16 && q.size(2) <= SMALL_T) {
    const std::optional<at::Tensor> mf = m && m->is_floating_point() ? std::optional<at::Tensor>(m->to(at::kFloat)) : m;
    return at::scaled_dot_product_attention(q.to(at::kFloat), k.to(at::kFloat), v.to(at::kFloat), mf, 0.0, causal, std::nullopt, gqa)
        .to(at::kBFloat16);
  }
  return at::scaled_dot_product_attention(q, k, v, m, /*dropout_p=*/0.0, /*is_causal=*/causal, /*scale=*/std::nullopt, /*enable_gqa=*/gqa);
}

}  // namespace

Transformer::Transformer(ModelWeights weights) : w_(std::move(weights)) {
  const at::Tensor& any = w_.layers.empty() ? (w_.embed.defined() ? w_.embed : w_.lm_head) : w_.layers[0].w_qkv;
  inv_freq_ = rope_inv_freq(w_.config).to(any.device());
}

Transformer Transformer::load(const std::filesystem::path& dir, const LoadOptions& opts) {
  CheckpointFiles ck = checkpoint_open(dir, opts.layer_begin, opts.layer_end, opts.with_embed, opts.with_head);
  return Transformer(weights_load(ck, opts));
}

at::TensorOptions Transformer::options() const {
  const at::Tensor& any = w_.layers.empty() ? (w_.embed.defined() ? w_.embed : w_.lm_head) : w_.layers[0].w_qkv;
  return any.options();
}

at::Tensor Transformer::rms_norm(const at::Tensor& x, const at::Tensor& weight) const {
  // HF: normalise in fp32, cast back, then scale (decode rows: one fused pass, model/small_linear.h).
  if (small_rms_norm_applies(x, weight)) return small_rms_norm(x, weight, w_.config.rms_norm_eps);
  at::Tensor xf = x.to(at::kFloat);
  at::Tensor var = xf.pow(2).mean(-1, /*keepdim=*/true);
  return weight * (xf * at::rsqrt(var + w_.config.rms_norm_eps)).to(x.scalar_type());
}

at::Tensor Transformer::decode_step_attention(int64_t il, const at::Tensor& qk, const at::Tensor& qkv, const ForwardArgs& a, const at::Tensor& mask,
                                              bool causal) const {
  // One token per row with a cache, on the CPU kernels: its key and value go straight into the cache and attention reads
  // q from the rotated rows and k, v from the cache in place (model/decode_attention.h), the same bits as attention()'s
  // tensor form without its views, KV copies and transposes. Undefined where this does not apply.
  const ModelConfig& c = w_.config;
  const int64_t H = c.n_head, K = c.n_kv_head, E = c.d_head, B = qk.size(0), read_end = a.slot_start + 1;
  if (a.cache == nullptr || causal || !qkv.is_contiguous()) return {};
  const at::Tensor& kc = a.cache->keys(il);
  const at::Tensor& vc = a.cache->values(il);
  if (!decode_attention_cached_applies(qk, H, kc, vc, read_end, mask)) return {};
  const auto* qk_bytes = static_cast<const char*>(qk.data_ptr());
  const auto* qkv_bytes = static_cast<const char*>(qkv.data_ptr());
  const int64_t elt = qk.element_size();
  if (!a.cache->store_token(il, a.slot_start, a.row_slots, read_end, B, qk_bytes + H * E * elt, (H + K) * E, qkv_bytes + (H + K) * E * elt,
                            (H + 2 * K) * E))
    return {};
  return decode_attention_cached(qk, H, kc, vc, read_end, mask);
}

at::Tensor Transformer::attention(int64_t il, const at::Tensor& x, const ForwardArgs& a, const at::Tensor& cos, const at::Tensor& sin,
                                  const at::Tensor& mask, bool causal, const HookContext& ctx, const at::Tensor& residual) const {
  const ModelConfig& c = w_.config;
  const LayerWeights& lw = w_.layers[static_cast<size_t>(il)];
  const int64_t B = x.size(0), T = x.size(1), H = c.n_head, K = c.n_kv_head, E = c.d_head;
  at::Tensor qkv = ts::linear(x, lw.w_qkv, lw.b_qkv);  // [B, T, (H+2K)E]
  // q and k are adjacent columns of qkv: rotate both heads at once.
  at::Tensor qk = apply_rope(qkv.narrow(-1, 0, (H + K) * E).view({B, T, H + K, E}), cos, sin);  // [B, T, H+K, E]
  at::Tensor z = T == 1 ? decode_step_attention(il, qk, qkv, a, mask, causal) : at::Tensor();  // [B, T, H, E]
  if (!z.defined()) {
    at::Tensor q = qk.narrow(2, 0, H).transpose(1, 2);                                    // [B, H, T, E]
    at::Tensor k = qk.narrow(2, H, K).transpose(1, 2);                                    // [B, K, T, E]
    at::Tensor v = qkv.narrow(-1, (H + K) * E, K * E).view({B, T, K, E}).transpose(1, 2);  // [B, K, T, E]
    if (a.cache != nullptr)
      std::tie(k, v) = a.row_slots.defined() ? a.cache->update_rows(il, a.row_slots, a.slot_start + 1, k, v)
                                             : a.cache->update(il, a.slot_start, k, v);  // [B, K, S, E]
    z = attend(q, k, v, mask, causal, K != H).transpose(1, 2);                           // [B, T, H, E]
  }
  z = hook(a.hooks, HookSite::ATTN_Z, w_.layer_begin + il, z, ctx);
  return ts::linear(z.reshape({B, T, H * E}), lw.w_o, lw.b_o, residual);  // [B, T, D]
}

at::Tensor Transformer::mlp(int64_t il, const at::Tensor& x, const at::Tensor& residual) const {
  const LayerWeights& lw = w_.layers[static_cast<size_t>(il)];
  at::Tensor gate = ts::linear(x, lw.w_gate, lw.b_gate);  // [B, T, F]
  at::Tensor up = ts::linear(x, lw.w_up, lw.b_up);        // [B, T, F]
  return ts::linear(at::silu(gate) * up, lw.w_down, lw.b_down, residual);
}

at::Tensor Transformer::block(int64_t il, at::Tensor x, const ForwardArgs& a, const at::Tensor& cos, const at::Tensor& sin,
                              const at::Tensor& mask, bool causal, const HookContext& ctx) const {
  const LayerWeights& lw = w_.layers[static_cast<size_t>(il)];
  const int64_t l = w_.layer_begin + il;
  // x + attn_out and x + mlp_out; where nothing is attached to attn_out (mlp_out) the sum comes out of o_proj (down_proj)
  // itself, the same bits (model/small_linear.h).
  const auto hooked = [&](HookSite site) { return a.hooks != nullptr && a.hooks->active(site, l); };
  x = hook(a.hooks, HookSite::RESID_PRE, l, x, ctx);
  x = hooked(HookSite::ATTN_OUT)
          ? x + hook(a.hooks, HookSite::ATTN_OUT, l, attention(il, rms_norm(x, lw.attn_norm), a, cos, sin, mask, causal, ctx), ctx)
          : attention(il, rms_norm(x, lw.attn_norm), a, cos, sin, mask, causal, ctx, x);
  x = hook(a.hooks, HookSite::RESID_MID, l, x, ctx);
  x = hooked(HookSite::MLP_OUT) ? x + hook(a.hooks, HookSite::MLP_OUT, l, mlp(il, rms_norm(x, lw.mlp_norm)), ctx)
                                : mlp(il, rms_norm(x, lw.mlp_norm), x);
  return hook(a.hooks, HookSite::RESID_POST, l, x, ctx);
}

at::Tensor Transformer::forward(const ForwardArgs& a) const {
  if (a.first_layer < 0 || a.first_layer > n_layer_held() || (a.first_layer > 0 && !a.hidden_in.defined()))
    throw std::invalid_argument("Transformer::forward: first_layer > 0 needs hidden_in and a held layer");
  at::Tensor x = a.hidden_in.defined() ? a.hidden_in : at::embedding(w_.embed, a.tokens);  // [B, T, D]
  const int64_t T = x.size(1), S = a.slot_start + T;
  HookContext ctx{{}, a.slot_start, T, a.prompt_end};

  // Rotary tables for this call's positions (HF: fp32 angles, cos/sin cast to the compute dtype).
  at::Tensor freqs = a.positions.to(at::kFloat).unsqueeze(-1) * inv_freq_;  // [B, T, E/2]
  at::Tensor angles = at::cat({freqs, freqs}, -1).unsqueeze(2);              // [B, T, 1, E]
  at::Tensor cos = angles.cos().to(x.scalar_type()), sin = angles.sin().to(x.scalar_type());

  // Attention mask. Rows at their own slots (row_slots) see exactly the keys key_valid marks. Fast paths: a single new token with no padding sees every cached key; an unpadded
  // prefill from slot 0 is plain causal. Otherwise allowed[b, t, s] = key_valid[b, s] && s <= slot(t),
  // plus the diagonal so padding queries never see an empty row (their outputs are never used).
  at::Tensor mask;
  bool causal = false;
  if (a.row_slots.defined()) {
    if (T != 1 || !a.key_valid.defined() || a.cache == nullptr)
      throw std::invalid_argument("Transformer::forward: row_slots needs one token per row, key_valid and a cache");
    mask = a.key_valid.to(x.device()).unsqueeze(1).unsqueeze(1);  // [B, 1, 1, S]: each row's own keys, its new one included
  } else if (!a.key_valid.defined() && T == 1) {
  } else if (!a.key_valid.defined() && a.slot_start == 0) {
    causal = true;
  } else {
    const auto long_opts = at::TensorOptions().dtype(at::kLong).device(x.device());
    at::Tensor key_slot = at::arange(S, long_opts).unsqueeze(0);                    // [1, S]
    at::Tensor query_slot = at::arange(a.slot_start, S, long_opts).unsqueeze(1);    // [T, 1]
    at::Tensor allowed = key_slot.le(query_slot).unsqueeze(0);                      // [1, T, S]
    if (a.key_valid.defined()) allowed = allowed.logical_and(a.key_valid.to(x.device()).unsqueeze(1));  // [B, T, S]
    mask = allowed.logical_or(key_slot.eq(query_slot).unsqueeze(0)).unsqueeze(1);  // [B|1, 1, T, S]
  }

  const int64_t end = a.end_layer < 0 ? n_layer_held() : std::min(a.end_layer, n_layer_held());
  for (int64_t il = a.first_layer; il < end; ++il) x = block(il, x, a, cos, sin, mask, causal, ctx);
  if (end < n_layer_held() || a.logits == LogitsMode::NONE || !w_.final_norm.defined()) return x;

  x = hook(a.hooks, HookSite::LN_FINAL, 0, rms_norm(x, w_.final_norm), ctx);
  if (a.logits == LogitsMode::LAST) x = x.narrow(1, T - 1, 1);
  return ts::linear(x, w_.lm_head);  // [B, T|1, V]
}

at::Tensor Transformer::head(const at::Tensor& rows) const {
  if (!w_.final_norm.defined() || !w_.lm_head.defined()) throw std::logic_error("Transformer::head: this part of the model holds no final norm and lm_head");
  return ts::linear(rms_norm(rows, w_.final_norm), w_.lm_head);
}

}  // namespace ts
