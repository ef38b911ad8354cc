// Directional ablation (directions/orthogonalize.h) on the tiny HF reference checkpoints (tests/reference):
// the weight-orthogonalised export (fp32, through model/checkpoint_edit.h's writer) against the source model
// with the direction projected out at every layer's resid_pre, attn_out and mlp_out by hooks.
// Tolerance (symmetric, fp32 on CPU): logits max |a - b| <= 1e-4, the engine's parity tolerance (the two
// compute the same function in another order of operations). Also: the residual stream of the export has no
// component along the direction (|x.r| <= 1e-4 |x|), tied embeddings come out untied with the original
// unembedding, and nothing else changed.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "../unit/temp_dir.h"
#include "core/json.h"
#include "directions/orthogonalize.h"
#include "model/checkpoint_edit.h"
#include "model/checkpoint_files.h"
#include "model/transformer.h"

namespace fs = std::filesystem;
using namespace ts;

namespace {

ForwardArgs args_for(HookSet* hooks) {
  ForwardArgs a;
  a.tokens = at::arange(5, 45, at::kLong).remainder(250).unsqueeze(0);
  a.positions = at::arange(a.tokens.size(1), at::kLong).unsqueeze(0);
  a.hooks = hooks;
  return a;
}

class Orthogonalized : public ::testing::TestWithParam<std::string> {};

TEST_P(Orthogonalized, ExportEqualsHookAblation) {
  const fs::path src = fs::path(THINKSTEER_TEST_DATA) / "reference" / GetParam();
  const CheckpointFiles ck = checkpoint_open(src);
  const ModelConfig& c = ck.config;
  at::manual_seed(11);
  const at::Tensor r = at::randn({c.d_model}, at::kFloat);
  CheckpointEdit edit = directions::orthogonalize(ck, r);
  edit.float32 = true;
  edit.marker = "ablation.json";
  edit.marker_content = "{}";
  ts_test::TempDir tmp;
  write_edited_checkpoint(src, tmp.path() / "out", edit, "out");
  // Kept for test_orthogonalize_hf.py (transformers on the export against transformers with hooks): the
  // direction goes into the marker file.
  CheckpointEdit kept = edit;
  const at::Tensor rc = r.contiguous();
  kept.marker_content = json{{"direction", std::vector<float>(rc.data_ptr<float>(), rc.data_ptr<float>() + rc.numel())}}.dump();
  write_edited_checkpoint(src, fs::path(THINKSTEER_TEST_DATA) / "directions" / GetParam(), kept, "out");

  const Transformer source = Transformer::load(src, LoadOptions{});
  const Transformer exported = Transformer::load(tmp.path() / "out", LoadOptions{});
  HookSet hooks(c.n_layer);
  directions::ablate_with_hooks(hooks, c.n_layer, r);
  const at::Tensor want = source.forward(args_for(&hooks));
  HookSet probe(c.n_layer);
  probe.record({HookSite::RESID_POST, c.n_layer / 2});
  const at::Tensor got = exported.forward(args_for(&probe));
  EXPECT_LE((got - want).abs().max().item<double>(), 1e-4) << GetParam();
  EXPECT_GT((source.forward(args_for(nullptr)) - want).abs().max().item<double>(), 1e-3);  // the ablation does something

  const at::Tensor x = probe.recorded({HookSite::RESID_POST, c.n_layer / 2});
  const at::Tensor along = at::matmul(x, r / r.norm()).abs();
  EXPECT_LE((along / x.norm(2, -1)).max().item<double>(), 1e-4);

  const json config = json_read_file(tmp.path() / "out" / "config.json");
  EXPECT_FALSE(config.value("tie_word_embeddings", false));
  const CheckpointFiles out = checkpoint_open(tmp.path() / "out");
  if (c.tie_word_embeddings) {  // the unembedding is the original embedding
    EXPECT_TRUE(at::equal(checkpoint_tensor_f32(out, "lm_head.weight"), checkpoint_tensor_f32(ck, "model.embed_tokens.weight")));
  }
  for (const auto& [name, entry] : ck.tensors) {
    const bool edited = edit.replace.count(name) > 0;
    if (!edited) {
      EXPECT_TRUE(at::equal(checkpoint_tensor_f32(out, name), checkpoint_tensor_f32(ck, name))) << name;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Reference, Orthogonalized, ::testing::Values("qwen2_gqa_tied", "qwen2_untied_sharded", "llama3_rope_untied", "llama_bf16"));

TEST(Orthogonalize, RefusesAZeroOrMisSizedDirection) {
  const CheckpointFiles ck = checkpoint_open(fs::path(THINKSTEER_TEST_DATA) / "reference" / "qwen2_gqa_tied");
  EXPECT_THROW(directions::orthogonalize(ck, at::zeros({ck.config.d_model})), std::invalid_argument);
  EXPECT_THROW(directions::orthogonalize(ck, at::ones({ck.config.d_model + 1})), std::invalid_argument);
}

}  // namespace
