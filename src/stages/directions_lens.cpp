// Stage `directions lens`: the logit lens (docs/directions.md; docs/algorithms.md §E) — at every layer,
// the model's final RMSNorm and unembedding applied to the residual stream after that layer.
//   in : directions.a (default <run.dir>/collect/activations.h5) holding blocks.{l}.hook_resid_post of
//        model.path, the last layer's included (collect.hooks = blocks.*.hook_resid_post, output.dtype =
//        float32 for exact numbers); model.path (model.norm, lm_head or the tied embedding, tokenizer)
//   out: <run.dir>/directions/lens.h5 (per row and layer: KL(final || lens), the probability and rank of
//        the eventual token = the model's own top-1 at that position, the top directions.top_k tokens),
//        lens.csv (per layer), lens_top.jsonl (the first directions.lens_rows rows, decoded), .done marker
// The last layer's lens is the model's own distribution (its KL is 0, its rank of the target 0). Rows are
// dealt over the ranks in batches of directions.batch_rows; results are added up into zero-filled buffers.
#include <ATen/ATen.h>
#include <fmt/format.h>

#include <filesystem>

#include "artifacts/directions.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "core/sha256.h"
#include "io/h5store.h"
#include "model/checkpoint_edit.h"
#include "model/checkpoint_identity.h"
#include "model/model_config.h"
#include "stages/directions_inputs.h"
#include "stages/stage.h"
#include "tokenizer/tokenizer.h"

namespace ts::stages::directions_lens {
namespace fs = std::filesystem;

namespace {

// The final norm and unembedding, fp32.
struct Head {
  at::Tensor norm, unembed;  // [D], [V, D]
  double eps = 1e-6;
  at::Tensor logits(const at::Tensor& x) const {  // x [N, D] -> [N, V]
    const at::Tensor h = x * at::rsqrt(x.pow(2).mean(-1, true) + eps) * norm;
    return at::matmul(h, unembed.t());
  }
};

// On the rank's device (model.device): the unembedding is the cost of the lens (V x D per row and layer).
Head load_head(const Config& cfg, const ModelConfig& c, c10::Device device) {
  const CheckpointFiles ck = checkpoint_open(cfg.model.path);
  Head h;
  h.norm = checkpoint_tensor_f32(ck, "model.norm.weight").to(device);
  h.unembed = checkpoint_tensor_f32(ck, c.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight").to(device);
  h.eps = c.rms_norm_eps;
  return h;
}

// The resid_post hooks of every layer, layer 0 first; the last layer's must be there.
std::vector<std::string> lens_hooks(const ActivationInput& a, const ModelConfig& c) {
  std::vector<std::string> out;
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const std::string name = "blocks." + std::to_string(l) + ".hook_resid_post";
    const bool held = std::any_of(a.hooks.begin(), a.hooks.end(), [&](const artifacts::ActivationHook& h) { return h.name == name; });
    if (held) out.push_back(name);
    else if (l == c.n_layer - 1)
      throw InputError(a.file.string(), "/activations/" + name, "the lens needs the last layer's resid_post (the model's own distribution): "
                                                                "collect blocks.*.hook_resid_post at every layer");
  }
  for (const auto& h : a.hooks)
    if (h.name.find("hook_resid_post") != std::string::npos && h.width != c.d_model)
      throw InputError(a.file.string(), "/activations/" + h.name, "has width " + std::to_string(h.width) + ", the model's d_model is " + std::to_string(c.d_model));
  return out;
}

struct Buffers {
  at::Tensor kl, prob, rank, top_ids, top_probs, target;  // float32, zero where another rank computed
};

// Rows [r0, r1) at every layer.
void lens_batch(const Head& head, const h5::SerialFile& f, const std::vector<std::string>& hooks, int64_t r0, int64_t r1, int64_t k, Buffers& b) {
  const int64_t n = r1 - r0, L = static_cast<int64_t>(hooks.size());
  const auto rows = [&](const std::string& hook) {
    std::vector<float> v = f.read_f32_rows("/activations/" + hook, r0, n);
    return at::from_blob(v.data(), {n, static_cast<int64_t>(v.size()) / n}, at::kFloat).clone().to(head.norm.device());
  };
  const at::Tensor final_logp = at::log_softmax(head.logits(rows(hooks.back())).to(at::kDouble), -1);
  const at::Tensor target = final_logp.argmax(-1);
  b.target.narrow(0, r0, n).copy_(target);  // copy_ brings results back to the CPU buffers
  for (int64_t l = 0; l < L; ++l) {
    const at::Tensor logp = l == L - 1 ? final_logp : at::log_softmax(head.logits(rows(hooks[static_cast<size_t>(l)])).to(at::kDouble), -1);
    const at::Tensor kl = (final_logp.exp() * (final_logp - logp)).sum(-1);
    const at::Tensor t_logp = logp.gather(1, target.unsqueeze(1));
    b.kl.narrow(0, r0, n).select(1, l).copy_(kl);
    b.prob.narrow(0, r0, n).select(1, l).copy_(t_logp.squeeze(1).exp());
    b.rank.narrow(0, r0, n).select(1, l).copy_((logp > t_logp).sum(-1));
    const auto [top_logp, top_id] = logp.topk(k, -1);
    b.top_ids.narrow(0, r0, n).select(1, l).copy_(top_id);
    b.top_probs.narrow(0, r0, n).select(1, l).copy_(top_logp.exp());
  }
}

artifacts::LensResults compute(const Config& cfg, Runtime& rt, const ActivationInput& a, const std::vector<std::string>& hooks, const Head& head) {
  const int64_t R = a.n_rows(), L = static_cast<int64_t>(hooks.size()), k = std::min<int64_t>(cfg.directions.top_k, head.unembed.size(0));
  Buffers b{at::zeros({R, L}), at::zeros({R, L}), at::zeros({R, L}), at::zeros({R, L, k}), at::zeros({R, L, k}), at::zeros({R})};
  const h5::SerialFile f(a.file, h5::SerialFile::Mode::READ_ONLY);
  const int64_t step = cfg.directions.batch_rows;
  Progress progress("directions lens", R, cfg.log.progress_seconds);
  int64_t done = 0;
  for (int64_t r0 = 0, batch = 0; r0 < R; r0 += step, ++batch) {
    if (batch % rt.world != rt.rank) continue;
    lens_batch(head, f, hooks, r0, std::min(R, r0 + step), k, b);
    progress.update(done += std::min(R, r0 + step) - r0);
  }
  progress.finish();
  for (at::Tensor* t : {&b.kl, &b.prob, &b.rank, &b.top_ids, &b.top_probs, &b.target})
    rt.world_comm.allreduce_sum(std::span<float>(t->data_ptr<float>(), static_cast<size_t>(t->numel())));
  artifacts::LensResults r;
  for (const std::string& h : hooks) r.layers.push_back(std::stoll(h.substr(7, h.find('.', 7) - 7)));
  r.k = k;
  r.sequence = a.row_sequence;
  r.token = a.row_token;
  const auto as_i32 = [](const at::Tensor& t) { const at::Tensor i = t.round().to(at::kInt).contiguous(); return std::vector<int32_t>(i.data_ptr<int32_t>(), i.data_ptr<int32_t>() + i.numel()); };
  const auto as_f32 = [](const at::Tensor& t) { return std::vector<float>(t.data_ptr<float>(), t.data_ptr<float>() + t.numel()); };
  r.target = as_i32(b.target);
  r.kl = as_f32(b.kl);
  r.target_prob = as_f32(b.prob);
  r.target_rank = as_i32(b.rank);
  r.top_ids = as_i32(b.top_ids);
  r.top_probs = as_f32(b.top_probs);
  r.input = fs::absolute(a.file).string();
  return r;
}

std::string lens_top_jsonl(const Config& cfg, const ActivationInput& a, const artifacts::LensResults& r, const Tokenizer& tok) {
  std::string out;
  const int64_t L = r.n_layers(), k = r.k;
  const auto text = [&](int32_t id) { return tok.decode(std::span<const int32_t>(&id, 1)); };
  for (int64_t i = 0; i < std::min(r.n_rows(), cfg.directions.lens_rows); ++i) {
    const auto& seq = a.index.sequences[static_cast<size_t>(r.sequence[static_cast<size_t>(i)])];
    json row = {{"row", i}, {"sequence_id", seq.id}, {"token_index", r.token[static_cast<size_t>(i)]},
                {"token_text", text(seq.ids[static_cast<size_t>(r.token[static_cast<size_t>(i)])])}, {"target_text", text(r.target[static_cast<size_t>(i)])},
                {"layers", json::array()}};
    for (int64_t l = 0; l < L; ++l) {
      json top = json::array();
      for (int64_t j = 0; j < k; ++j) {
        const size_t x = static_cast<size_t>((i * L + l) * k + j);
        top.push_back({text(r.top_ids[x]), r.top_probs[x]});
      }
      row["layers"].push_back({{"layer", r.layers[static_cast<size_t>(l)]}, {"top", top}});
    }
    out += row.dump() + "\n";
  }
  return out;
}

}  // namespace

void run(const Config& cfg, Runtime& rt) {
  if (cfg.model.path.empty()) throw InputError("<config>", "model.path", "the lens needs the model's final norm and unembedding (model.path)");
  const ModelConfig c = model_config_read(fs::path(cfg.model.path) / "config.json");
  const ActivationInput a = read_activation_input(cfg, directions_a(cfg), "directions.a");
  const std::vector<std::string> hooks = lens_hooks(a, c);
  if (a.n_rows() == 0) throw InputError(a.file.string(), "/activations", "holds no rows");
  const std::string hash = artifacts::output_config_hash(cfg, {"directions"}, fmt::format("lens\n{}\n{}", a.sha256, checkpoint_identity(cfg.model.path)));
  StageOutput out(cfg, rt, "directions lens", artifacts::LENS_H5.in(cfg), hash);
  if (out.complete()) return;
  const Tokenizer tok = Tokenizer::from_file(fs::path(cfg.model.path) / "tokenizer.json");
  const Head head = load_head(cfg, c, rt.device);
  out.begin();
  const artifacts::LensResults r = compute(cfg, rt, a, hooks, head);
  if (rt.rank == 0) {
    json prov = out.provenance(cfg.model.path);
    prov["activations"] = fs::absolute(a.file).string();
    prov["activations_sha256"] = a.sha256;
    artifacts::write_lens(out.partial(), r, prov);
    const fs::path csv = artifacts::LENS_CSV.in(cfg), top = artifacts::LENS_TOP.in(cfg);
    write_file_atomic(csv, artifacts::lens_csv(r));
    write_file_atomic(top, lens_top_jsonl(cfg, a, r, tok));
    out.commit_h5(prov, artifacts::LOGIT_LENS, artifacts::lens_datasets(r), {.certified = {csv, top}});
    spdlog::info("directions lens: {} rows x {} layers, wrote {}", r.n_rows(), r.n_layers(), out.path().string());
  }
  rt.world_comm.barrier();
}

}  // namespace ts::stages::directions_lens
