// The hybrid's lockstep (hybrid/lockstep.h) against the v1 loop it replaces (docs/algorithms.md §B.9 with a
// window of one position): for each prompt alone, both models rerun on their whole sequence at every
// token without a KV cache, the steering added only at the last position. On the shipped toy pair
// (models/toy-thinker, models/toy-base), with seeded vectors, a seeded coefficient MLP and a simple
// classifier, the batched KV-cached lockstep (prompts of different lengths, left-padded, rows finishing
// at different steps) must emit the same tokens, kinds, categories and coefficients (1e-4 relative) for
// every coefficient rule and ablation, with the steered step as a rerun and fused (Options::fused). Greedy tokens are compared exactly: the two loops compute the same
// functions in float32 with different shapes, and the toy models' margins are far above that noise.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "hybrid/lockstep.h"
#include "model/sampling.h"
#include "tokenizer/chat_format.h"
#include "tokenizer/tokenizer.h"

namespace ts::hybrid {
namespace {
namespace fs = std::filesystem;

const fs::path ROOT = THINKSTEER_SOURCE_DIR;

struct Pair {
  Transformer thinking = Transformer::load(ROOT / "models/toy-thinker", {});
  Transformer base = Transformer::load(ROOT / "models/toy-base", {});
  Tokenizer tok = Tokenizer::from_file(ROOT / "models/toy-thinker/tokenizer.json");
};
Pair& pair() {
  static Pair p;
  return p;
}

constexpr int64_t C = 4;
at::Tensor classify(const at::Tensor& x) { return x.to(at::kFloat).narrow(1, 0, C).argmax(1); }

SteeringSet make_set(int64_t d) {
  at::manual_seed(7);
  SteeringSet s;
  s.vectors = at::randn({C, d}) * 0.6;
  s.vectors[2].zero_();  // a category without a vector
  s.mlp = basevec::CoefMlp::init(d, 16, C, 11);
  return s;
}

// The v1 loop for one request (no cache; the whole sequence at every token).
Result reference(const SteeringSet& set, const Options& o, const Request& r) {
  Pair& p = pair();
  std::vector<int32_t> ts = r.thinking_prompt, bs = r.base_prompt;
  Result out;
  bool thinking = true;
  size_t forced = 0;
  auto run = [](const Transformer& m, const std::vector<int32_t>& seq, HookSet* hooks) {
    ForwardArgs a;
    const auto T = static_cast<int64_t>(seq.size());
    a.tokens = at::tensor(std::vector<int64_t>(seq.begin(), seq.end()), at::kLong).unsqueeze(0);
    a.positions = at::arange(T, at::kLong).unsqueeze(0);
    a.hooks = hooks;
    a.logits = LogitsMode::LAST;
    return m.forward(a).select(1, 0)[0];
  };
  for (int64_t step = 0; step < o.max_new_tokens; ++step) {
    at::Tensor s, h;
    HookSet th(p.thinking.config().n_layer), bh(p.base.config().n_layer);
    th.add_fn({HookSite::RESID_POST, o.sae_layer}, [&](const at::Tensor& x, const HookContext&) { s = x.select(1, x.size(1) - 1); return x; });
    bh.add_fn({HookSite::RESID_POST, o.layer}, [&](const at::Tensor& x, const HookContext&) { h = x.select(1, x.size(1) - 1); return x; });
    const at::Tensor lt = run(p.thinking, ts, &th), lb = run(p.base, bs, &bh);
    const int64_t yt = lt.argmax().item<int64_t>(), yb = lb.argmax().item<int64_t>();
    out.base_token.push_back(static_cast<int32_t>(yb));
    out.thinking_token.push_back(static_cast<int32_t>(yt));
    out.category.push_back(-1);
    out.coef.push_back(0);
    int64_t tok = yb;
    TokenKind kind = TokenKind::agree;
    const size_t pos = out.kind.size();
    if (forced > 0 && forced < o.answer_prefix.size()) {
      tok = o.answer_prefix[forced++], kind = TokenKind::forced;
    } else if (!thinking) {
      kind = TokenKind::answer;
    } else if (yt == o.think_close) {
      thinking = false;
      tok = o.answer_prefix[0], kind = TokenKind::forced, forced = 1;
    } else {
      bool steer = yb != yt;
      if (o.ablation == Ablation::randpos) steer = stream_uniform(o.seed, r.stream, 2 * pos) < o.randpos_fraction;
      if (!steer) {
        kind = yb != yt ? TokenKind::skipped : (o.ablation == Ablation::randpos ? TokenKind::unsteered : TokenKind::agree);
        if (yb == o.think_close) thinking = false;
      } else {
        const std::vector<int64_t> av = set.available();
        int64_t cat = classify(s).item<int64_t>();
        if (o.ablation == Ablation::randcat || o.ablation == Ablation::randvec_randcat) {
          const double u = stream_uniform(o.seed, r.stream, 2 * pos + 1);
          cat = av[std::min(av.size() - 1, static_cast<size_t>(u * static_cast<double>(av.size())))];
        }
        at::Tensor dir = set.vectors[cat];
        std::vector<double> coefs = o.rule == CoefRule::fixed ? std::vector<double>{o.coef} : o.guardrail;
        if (o.rule == CoefRule::mlp) coefs = {set.mlp(h.to(at::kFloat), at::tensor({cat}, at::kLong))[0].item<double>()};
        double best = -1e300;
        const at::Tensor logp = at::log_softmax(lt, -1);
        for (double c : coefs) {
          HookSet steer_hooks(p.base.config().n_layer);
          steer_hooks.add_fn({HookSite::RESID_POST, o.layer}, [&](const at::Tensor& x, const HookContext&) {
            at::Tensor y = x.clone();
            y.select(1, y.size(1) - 1)[0] += (c * dir).to(y.scalar_type());
            return y;
          });
          const int64_t cand = run(p.base, bs, &steer_hooks).argmax().item<int64_t>();
          const double score = coefs.size() == 1 ? 0.0 : logp[cand].item<double>();
          if (score > best) best = score, tok = cand, out.coef.back() = static_cast<float>(c);
        }
        out.category.back() = static_cast<int16_t>(cat);
        kind = TokenKind::steered;
        if (tok == o.think_close) thinking = false;
      }
    }
    out.kind.push_back(static_cast<int8_t>(kind));
    out.tokens.push_back(static_cast<int32_t>(tok));
    ts.push_back(static_cast<int32_t>(tok)), bs.push_back(static_cast<int32_t>(tok));
    if (std::find(o.eos_ids.begin(), o.eos_ids.end(), tok) != o.eos_ids.end()) {
      out.finish = FinishReason::EOS;
      break;
    }
  }
  return out;
}

struct Case {
  CoefRule rule;
  Ablation ablation;
  bool fused;
};
class LockstepTest : public ::testing::TestWithParam<Case> {};

TEST_P(LockstepTest, EqualsTheFullPrefixLoopPromptByPrompt) {
  c10::InferenceMode guard;
  Pair& p = pair();
  const Case c = GetParam();
  const SteeringSet set = make_set(p.base.config().d_model).ablated(c.ablation, 5);
  Options o;
  o.layer = 3, o.sae_layer = 1, o.rule = c.rule, o.ablation = c.ablation, o.fused = c.fused, o.seed = 3, o.randpos_fraction = 0.3;
  o.coef = 2.0, o.guardrail = {0.5, 2.0, 6.0};
  o.max_new_tokens = 48;
  o.think_close = *p.tok.token_to_id("</think>");
  o.eos_ids = {*p.tok.token_to_id("<｜end▁of▁sentence｜>")};
  o.answer_prefix = p.tok.encode_ids("</think>\n\n");
  std::vector<Request> reqs;
  for (const char* q : {"Omar reads 15 pages a day for 2 days. How many pages does he read?", "What is 4 + 5?",
                        "A box holds 12 apples. Sam eats 3 and buys 7 more. How many apples are in the box now?"}) {
    const std::vector<int32_t> ids = p.tok.encode_ids(chat_format_apply(ChatFormat::deepseek_r1, q, ""));
    reqs.push_back({ids, ids, stream_id_of(q)});
  }
  reqs[1].base_prompt.erase(reqs[1].base_prompt.begin());  // the base's prompt differs from the thinking model's
  const std::vector<Result> got = generate(p.thinking, p.base, classify, set, o, reqs);
  int64_t steered = 0;
  for (size_t i = 0; i < reqs.size(); ++i) {
    const Result want = reference(set, o, reqs[i]);
    EXPECT_EQ(got[i].tokens, want.tokens) << "prompt " << i;
    EXPECT_EQ(got[i].kind, want.kind) << "prompt " << i;
    EXPECT_EQ(got[i].category, want.category) << "prompt " << i;
    EXPECT_EQ(got[i].base_token, want.base_token) << "prompt " << i;
    EXPECT_EQ(got[i].thinking_token, want.thinking_token) << "prompt " << i;
    ASSERT_EQ(got[i].coef.size(), want.coef.size());
    for (size_t k = 0; k < want.coef.size(); ++k) EXPECT_NEAR(got[i].coef[k], want.coef[k], 1e-4 * (1 + std::abs(want.coef[k]))) << "prompt " << i << " token " << k;
    for (int8_t k : want.kind) steered += k == static_cast<int8_t>(TokenKind::steered);
  }
  EXPECT_GT(steered, 0) << "the case steers nothing: it would not test the steered step";
  EXPECT_TRUE(std::any_of(got.begin(), got.end(), [](const Result& r) { return r.finish == FinishReason::EOS; }))
      << "no row ends early: the case would not test dropping finished rows (and their shadow rows) from the caches";
}

INSTANTIATE_TEST_SUITE_P(RulesAndAblations, LockstepTest,
                         ::testing::Values(Case{CoefRule::fixed, Ablation::none, true}, Case{CoefRule::fixed, Ablation::none, false},
                                           Case{CoefRule::mlp, Ablation::none, true}, Case{CoefRule::mlp, Ablation::none, false},
                                           Case{CoefRule::guardrail, Ablation::none, false}, Case{CoefRule::mlp, Ablation::randcat, true},
                                           Case{CoefRule::fixed, Ablation::randvec_randcat, true}, Case{CoefRule::fixed, Ablation::only_bias, false},
                                           Case{CoefRule::mlp, Ablation::randpos, true}, Case{CoefRule::mlp, Ablation::randpos, false}));

TEST(Lockstep, TheOracleWithTheSamePromptsIsTheThinkingModelsGreedyText) {
  c10::InferenceMode guard;
  Pair& p = pair();
  Options o;
  o.layer = 3, o.sae_layer = 1, o.rule = CoefRule::oracle, o.max_new_tokens = 200;
  o.think_close = *p.tok.token_to_id("</think>");
  o.eos_ids = {*p.tok.token_to_id("<｜end▁of▁sentence｜>")};
  const std::vector<int32_t> ids = p.tok.encode_ids(chat_format_apply(ChatFormat::deepseek_r1, "Omar reads 15 pages a day for 2 days. How many pages does he read?", ""));
  o.answer_prefix = {static_cast<int32_t>(o.think_close)};
  const Result h = generate(p.thinking, p.base, classify, make_set(p.base.config().d_model), o, {{ids, ids, 1}}).front();
  GenerateOptions g;
  g.max_new_tokens = 200, g.eos_ids = o.eos_ids;
  const GenerateResult t = generate_batch(p.thinking, {{ids, 1}}, g).front();
  // Up to the thinking model's </think> the texts are the same; after it the base writes the answer.
  const auto close = std::find(t.tokens.begin(), t.tokens.end(), o.think_close);
  ASSERT_NE(close, t.tokens.end());
  const size_t n = static_cast<size_t>(close - t.tokens.begin()) + 1;
  ASSERT_GE(h.tokens.size(), n);
  EXPECT_EQ(std::vector<int32_t>(h.tokens.begin(), h.tokens.begin() + static_cast<int64_t>(n)), std::vector<int32_t>(t.tokens.begin(), close + 1));
  EXPECT_TRUE(h.forced);
}

}  // namespace
}  // namespace ts::hybrid
