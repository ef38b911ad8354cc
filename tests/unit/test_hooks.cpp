// Hook names follow TransformerLens and parse back; hook operations do what they say.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "core/error.h"
#include "model/hooks.h"

using namespace ts;

TEST(Hooks, NamesRoundTrip) {
  for (int s = 0; s < HOOK_SITE_COUNT; ++s) {
    HookPoint p{static_cast<HookSite>(s), static_cast<HookSite>(s) == HookSite::LN_FINAL ? 0 : 11};
    EXPECT_EQ(hook_parse(hook_name(p), 12), p) << hook_name(p);
  }
  EXPECT_EQ(hook_name({HookSite::RESID_POST, 3}), "blocks.3.hook_resid_post");
  EXPECT_EQ(hook_name({HookSite::ATTN_Z, 0}), "blocks.0.attn.hook_z");
  EXPECT_EQ(hook_name({HookSite::LN_FINAL, 0}), "ln_final.hook_normalized");
  EXPECT_THROW(hook_parse("blocks.12.hook_resid_post", 12), InputError);
  EXPECT_THROW(hook_parse("blocks.x.hook_resid_post", 12), InputError);
  EXPECT_THROW(hook_parse("blocks.1.hook_resid", 12), InputError);
  EXPECT_THROW(hook_parse("resid_post", 12), InputError);
}

TEST(Hooks, AddProjectReplaceWithPositionScopes) {
  HookSet hooks(2);
  const HookPoint p{HookSite::RESID_POST, 1};
  at::Tensor x = at::randn({2, 4, 3}, at::kDouble);  // [B, T, D], slots 6..9, prompt ends at slot 8
  HookContext ctx{p, 6, 4, 8};
  at::Tensor v = at::tensor({1.0, 2.0, 3.0}, at::kDouble);

  hooks.add_vector(p, v, 0.5, PositionScope::GENERATED);
  at::Tensor y = hooks.run(p.site, p.layer, x, ctx);
  EXPECT_TRUE(at::allclose(y.narrow(1, 0, 2), x.narrow(1, 0, 2)));             // prompt slots untouched
  EXPECT_TRUE(at::allclose(y.narrow(1, 2, 2), x.narrow(1, 2, 2) + 0.5 * v));    // generated slots steered

  hooks.clear();
  hooks.project_out(p, v);
  at::Tensor z = hooks.run(p.site, p.layer, x, ctx);
  EXPECT_LT((z * v).sum(-1).abs().max().item<double>(), 1e-12);                 // no component along v left

  hooks.clear();
  at::Tensor mask = at::zeros({2, 16}, at::kDouble);
  mask.index_put_({1, 7}, 2.0);  // row 1, slot 7 only, coefficient 2
  hooks.add_vector(p, v, 1.0, PositionScope::ALL, mask);
  at::Tensor w = hooks.run(p.site, p.layer, x, ctx);
  at::Tensor expect = x.clone();
  expect.index({1, 1}).add_(2.0 * v);
  EXPECT_TRUE(at::allclose(w, expect));

  hooks.clear();
  at::Tensor value = at::arange(2 * 16 * 3, at::kDouble).reshape({2, 16, 3});
  hooks.replace(p, value);
  EXPECT_TRUE(at::equal(hooks.run(p.site, p.layer, x, ctx), value.narrow(1, 6, 4)));
  EXPECT_FALSE(hooks.active(HookSite::RESID_POST, 0));
  EXPECT_TRUE(hooks.active(HookSite::RESID_POST, 1));
}

TEST(Hooks, RecordConcatenatesCallsAlongPositions) {
  HookSet hooks(1);
  const HookPoint p{HookSite::RESID_PRE, 0};
  hooks.record(p);
  at::Tensor a = at::randn({2, 3, 4}), b = at::randn({2, 1, 4});
  hooks.run(p.site, 0, a, {p, 0, 3, 3});
  hooks.run(p.site, 0, b, {p, 3, 1, 3});
  EXPECT_TRUE(at::equal(hooks.recorded(p), at::cat({a, b}, 1)));
}
