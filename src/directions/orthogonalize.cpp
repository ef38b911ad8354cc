#include "directions/orthogonalize.h"

#include <ATen/ATen.h>

#include <stdexcept>
#include <string>

#include "model/tensor_names.h"

namespace ts::directions {

namespace {

at::Tensor unit(const at::Tensor& direction) {
  const at::Tensor d = direction.to(at::kFloat).flatten();
  const double norm = d.norm().item<double>();
  if (!(norm > 0)) throw std::invalid_argument("directions::orthogonalize: the direction is zero (or not finite)");
  return d / norm;
}

// (I - r r^T) W for W [d_model, n] (an output space of d_model rows), or w - (w.r) r for a [d_model] bias.
at::Tensor project_rows(const at::Tensor& w, const at::Tensor& r) {
  if (w.dim() == 1) return w - at::dot(w, r) * r;
  return w - at::outer(r, at::matmul(r, w));
}

}  // namespace

CheckpointEdit orthogonalize(const CheckpointFiles& ck, const at::Tensor& direction) {
  const ModelConfig& c = ck.config;
  const at::Tensor r = unit(direction);
  if (r.numel() != c.d_model) throw std::invalid_argument("directions::orthogonalize: the direction has " + std::to_string(r.numel()) + " values, d_model is " +
                                                          std::to_string(c.d_model));
  CheckpointEdit edit;
  const std::string embed(HF_EMBED_TOKENS);
  const at::Tensor e = checkpoint_tensor_f32(ck, embed);   // [vocab, d_model]: rows are the vectors
  edit.replace[embed] = e - at::outer(at::matmul(e, r), r);
  if (c.tie_word_embeddings) {
    edit.add[std::string(HF_LM_HEAD)] = e;
    edit.config_update["tie_word_embeddings"] = false;
  }
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    for (const char* name : {"self_attn.o_proj.weight", "self_attn.o_proj.bias", "mlp.down_proj.weight", "mlp.down_proj.bias"})
      if (ck.has(p + name)) edit.replace[p + name] = project_rows(checkpoint_tensor_f32(ck, p + name), r);
  }
  return edit;
}

void ablate_with_hooks(HookSet& hooks, int64_t n_layer, const at::Tensor& direction) {
  const at::Tensor r = unit(direction);
  for (int64_t l = 0; l < n_layer; ++l)
    for (HookSite site : {HookSite::RESID_PRE, HookSite::ATTN_OUT, HookSite::MLP_OUT}) hooks.project_out({site, l}, r);
}

}  // namespace ts::directions
