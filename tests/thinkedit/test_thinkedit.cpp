// ThinkEdit's computations (thinkedit/thinkedit.h) and the edited-checkpoint writer
// (model/checkpoint_edit.h) on the tiny HF reference checkpoints (tests/reference).
// Tolerances (symmetric, fp32 on CPU):
//   edited checkpoint (fp32) vs the source with a hook projecting v out of the selected heads' outputs:
//     logits max |a - b| <= 1e-5 (the same products summed in another order);
//   head scores vs the per-position contributions W_O[:, h] z_h summed in fp64: <= 1e-9;
//   carried-over tensors and o_proj columns of heads not edited: bit for bit;
//   a BF16 source's edited columns: exactly bf16(round-to-nearest-even of the fp32 edit) (one rounding).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "core/json.h"
#include "model/checkpoint_edit.h"
#include "model/checkpoint_files.h"
#include "model/transformer.h"
#include "thinkedit/thinkedit.h"
#include "../unit/temp_dir.h"

namespace fs = std::filesystem;
using namespace ts;

namespace {

fs::path reference(const std::string& name) { return fs::path(THINKSTEER_TEST_DATA) / "reference" / name; }

std::string o_proj(int64_t l) { return "model.layers." + std::to_string(l) + ".self_attn.o_proj.weight"; }

struct Edit {
  std::vector<thinkedit::Head> heads;
  at::Tensor directions;  // [L, D]
};

Edit some_edit(const ModelConfig& c) {
  at::manual_seed(7);
  return {{{0, 1}, {c.n_layer - 1, 0}, {c.n_layer - 1, c.n_head - 1}}, at::randn({c.n_layer, c.d_model}, at::kFloat)};
}

CheckpointEdit make_edit(const fs::path& src, const ModelConfig& c, const Edit& e, bool float32) {
  CheckpointEdit out;
  std::map<int64_t, std::vector<int64_t>> by_layer;
  for (const auto& h : e.heads) by_layer[h.layer].push_back(h.head);
  for (const auto& [l, hs] : by_layer) out.replace[o_proj(l)] = thinkedit::project_out_heads(checkpoint_tensor_f32(src, o_proj(l)), e.directions[l], hs, c.d_head, 1.0);
  out.float32 = float32;
  out.marker = "edit.json";
  out.marker_content = "{}";
  return out;
}

at::Tensor logits(const Transformer& m, HookSet* hooks) {
  ForwardArgs a;
  a.tokens = at::arange(3, 40, at::kLong).remainder(200).unsqueeze(0);
  a.positions = at::arange(a.tokens.size(1), at::kLong).unsqueeze(0);
  a.hooks = hooks;
  return m.forward(a);
}

class EditedCheckpoint : public ::testing::TestWithParam<std::string> {};

TEST_P(EditedCheckpoint, Float32ExportEqualsProjectingOutThroughAHook) {
  const fs::path src = reference(GetParam());
  const ModelConfig c = checkpoint_open(src).config;
  const Edit e = some_edit(c);
  ts_test::TempDir tmp;
  write_edited_checkpoint(src, tmp.path() / "edited", make_edit(src, c, e, true), "out");
  const Transformer edited = Transformer::load(tmp.path() / "edited", LoadOptions{});
  const Transformer source = Transformer::load(src, LoadOptions{});

  // The hook: at each layer with selected heads, attn_out -= sum_h (v . W_O,h z_h) v.
  HookSet hooks(c.n_layer);
  std::map<int64_t, at::Tensor> z;
  for (int64_t l = 0; l < c.n_layer; ++l) {
    std::vector<int64_t> hs;
    for (const auto& h : e.heads)
      if (h.layer == l) hs.push_back(h.head);
    if (hs.empty()) continue;
    const at::Tensor w = checkpoint_tensor_f32(src, o_proj(l));
    const at::Tensor v = e.directions[l] / e.directions[l].norm();
    hooks.add_fn({HookSite::ATTN_Z, l}, [&z, l](const at::Tensor& x, const HookContext&) { z[l] = x.clone(); return x; });
    hooks.add_fn({HookSite::ATTN_OUT, l}, [&z, l, w, v, hs, E = c.d_head](const at::Tensor& x, const HookContext&) {
      at::Tensor y = x.clone();
      for (int64_t h : hs) {
        const at::Tensor contribution = at::matmul(z[l].select(2, h), w.narrow(1, h * E, E).t());  // [B, T, D]
        y -= at::matmul(contribution, v).unsqueeze(-1) * v;
      }
      return y;
    });
  }
  const double diff = (logits(edited, nullptr) - logits(source, &hooks)).abs().max().item<double>();
  EXPECT_LE(diff, 1e-5) << GetParam();
  // And the edit does something: the unedited model differs.
  EXPECT_GT((logits(edited, nullptr) - logits(source, nullptr)).abs().max().item<double>(), 1e-4);
}

TEST_P(EditedCheckpoint, EverythingButTheEditedColumnsIsBitIdentical) {
  const fs::path src = reference(GetParam());
  const CheckpointFiles a = checkpoint_open(src);
  const ModelConfig& c = a.config;
  const Edit e = some_edit(c);
  ts_test::TempDir tmp;
  write_edited_checkpoint(src, tmp.path() / "edited", make_edit(src, c, e, false), "out");
  const CheckpointFiles b = checkpoint_open(tmp.path() / "edited");
  ASSERT_EQ(a.shards.size(), b.shards.size());
  for (size_t s = 0; s < a.shards.size(); ++s) EXPECT_EQ(a.shards[s].path().filename(), b.shards[s].path().filename());
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (const auto& [name, entry] : a.tensors) {
    ASSERT_TRUE(b.has(name)) << name;
    EXPECT_EQ(a.info(name).dtype, b.info(name).dtype) << name;
    const auto x = a.bytes(name), y = b.bytes(name);
    ASSERT_EQ(x.size(), y.size()) << name;
    const bool edited = name.find("o_proj") != std::string::npos &&
                        std::any_of(e.heads.begin(), e.heads.end(), [&](const auto& h) { return name == o_proj(h.layer); });
    if (!edited) {
      EXPECT_EQ(0, std::memcmp(x.data(), y.data(), x.size())) << name << " changed";
      continue;
    }
    const int64_t l = std::stoll(name.substr(13));
    const at::Tensor before = checkpoint_tensor_f32(src, name), after = checkpoint_tensor_f32(tmp.path() / "edited", name);
    std::vector<int64_t> hs;
    for (const auto& h : e.heads)
      if (h.layer == l) hs.push_back(h.head);
    const at::Tensor expect = thinkedit::project_out_heads(before, e.directions[l], hs, c.d_head, 1.0).to(at::ScalarType(after.scalar_type()));
    for (int64_t h = 0; h < c.n_head; ++h) {
      const bool mine = std::find(hs.begin(), hs.end(), h) != hs.end();
      const at::Tensor got = after.narrow(1, h * c.d_head, c.d_head);
      // Stored in the source dtype: the fp32 edit rounded once (exact for F32 sources).
      const at::Tensor want = mine ? expect.narrow(1, h * c.d_head, c.d_head).to(a.info(name).dtype == DType::BF16 ? at::kBFloat16 : at::kFloat).to(at::kFloat)
                                   : before.narrow(1, h * c.d_head, c.d_head);
      EXPECT_TRUE(at::equal(got, want)) << name << " head " << h << (mine ? " (edited)" : " (not edited)");
    }
  }
  // config.json: the source's; every other file copied.
  EXPECT_EQ(json_read_file(src / "config.json"), json_read_file(tmp.path() / "edited" / "config.json"));
  EXPECT_TRUE(fs::exists(tmp.path() / "edited" / "edit.json"));
}

INSTANTIATE_TEST_SUITE_P(Reference, EditedCheckpoint, ::testing::Values("qwen2_gqa_tied", "qwen2_untied_sharded", "llama3_rope_untied", "llama_bf16"));

TEST(EditedCheckpointWriter, RefusesAForeignDirectoryAndBadEdits) {
  const fs::path src = reference("qwen2_gqa_tied");
  const ModelConfig c = checkpoint_open(src).config;
  ts_test::TempDir tmp;
  fs::create_directories(tmp.path() / "mine");
  CheckpointEdit e = make_edit(src, c, some_edit(c), false);
  EXPECT_THROW(write_edited_checkpoint(src, tmp.path() / "mine", e, "out"), InputError);  // not written by this writer
  EXPECT_THROW(write_edited_checkpoint(src, src, e, "out"), InputError);                // the source itself
  CheckpointEdit bad = e;
  bad.replace[o_proj(0)] = at::zeros({3, 3});
  EXPECT_THROW(write_edited_checkpoint(src, tmp.path() / "x", bad, "out"), InputError);
  bad = e;
  bad.replace["model.layers.0.nonexistent.weight"] = at::zeros({3, 3});
  EXPECT_THROW(write_edited_checkpoint(src, tmp.path() / "x", bad, "out"), InputError);
  EXPECT_FALSE(fs::exists(tmp.path() / "x"));
  // Rewriting its own output is allowed.
  write_edited_checkpoint(src, tmp.path() / "x", e, "out");
  write_edited_checkpoint(src, tmp.path() / "x", e, "out");
  EXPECT_TRUE(fs::exists(tmp.path() / "x" / "model.safetensors"));
}

TEST(HeadScores, EqualTheMeanContributionAgainstTheShortDirection) {
  at::manual_seed(3);
  const int64_t L = 3, H = 4, E = 5, D = 16, T = 7;
  std::vector<at::Tensor> w;
  for (int64_t l = 0; l < L; ++l) w.push_back(at::randn({D, H * E}, at::kDouble));
  const at::Tensor dir = at::randn({L, D}, at::kDouble);
  const at::Tensor z = at::randn({L, T, H, E}, at::kDouble);  // one trace's window
  const at::Tensor zbar = z.mean(1);
  const at::Tensor s = thinkedit::head_scores(zbar, w, dir);
  for (int64_t l = 0; l < L; ++l)
    for (int64_t h = 0; h < H; ++h) {
      double expect = 0;  // mean over positions of < W_O,h z_{h,t}, -u >
      const at::Tensor u = dir[l] / dir[l].norm();
      for (int64_t t = 0; t < T; ++t) expect += -at::dot(at::matmul(w[static_cast<size_t>(l)].narrow(1, h * E, E), z[l][t][h]), u).item<double>() / T;
      EXPECT_NEAR(s[l][h].item<double>(), expect, 1e-9);
    }
  const auto ranking = thinkedit::head_ranking(s);
  ASSERT_EQ(ranking.size(), static_cast<size_t>(L * H));
  for (size_t i = 1; i < ranking.size(); ++i)
    EXPECT_GE(s[ranking[i - 1].layer][ranking[i - 1].head].item<double>(), s[ranking[i].layer][ranking[i].head].item<double>());
}

TEST(LengthSplit, PercentilesAreNumpysAndTheTokenRuleIsStrict) {
  EXPECT_DOUBLE_EQ(thinkedit::percentile({1, 2, 3, 4, 10}, 80), 5.2);  // numpy.percentile([1,2,3,4,10], 80)
  EXPECT_DOUBLE_EQ(thinkedit::percentile({10, 1, 4, 3, 2}, 20), 1.8);
  EXPECT_DOUBLE_EQ(thinkedit::percentile({7}, 50), 7);
  const auto tokens = thinkedit::length_split(ThinkEditSplit::tokens, 1000, 100, {50, 2000});
  EXPECT_EQ(tokens.of(1000, true), thinkedit::LengthSet::mid);
  EXPECT_EQ(tokens.of(1001, true), thinkedit::LengthSet::long_);
  EXPECT_EQ(tokens.of(100, true), thinkedit::LengthSet::mid);
  EXPECT_EQ(tokens.of(99, true), thinkedit::LengthSet::short_);
  EXPECT_EQ(tokens.of(5000, false), thinkedit::LengthSet::invalid);
  const auto pct = thinkedit::length_split(ThinkEditSplit::percentile, 80, 20, {1, 2, 3, 4, 10});
  EXPECT_DOUBLE_EQ(pct.long_above, 5.2);
  EXPECT_EQ(pct.of(10, true), thinkedit::LengthSet::long_);
  EXPECT_EQ(pct.of(1, true), thinkedit::LengthSet::short_);
  EXPECT_EQ(pct.of(2, true), thinkedit::LengthSet::mid);
}

}  // namespace
