// Steering sweeps without a model: answer checking (§J), behaviour fractions (§A.6 S1/S2), the
// bootstrap, the sweep plan (order, keys, dedupe, manifest round trip), and the per-layer edits
// (random controls keep the vector's norm; empty vectors are refused).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "io/vectors.h"
#include "steer/answer.h"
#include "steer/behaviour.h"
#include "steer/intervention.h"
#include "steer/sweep_plan.h"

using namespace ts;
namespace fs = std::filesystem;

TEST(Answer, ExtractsLastBoxedElseLastNumber) {
  EXPECT_EQ(extract_answer("so \\boxed{12} ... finally \\boxed{\\frac{3}{4}}."), "\\frac{3}{4}");
  EXPECT_EQ(extract_answer("\\boxed{x^{2}+1}"), "x^{2}+1");
  EXPECT_EQ(extract_answer("The total is 1,234 apples, then -7."), "-7");
  EXPECT_EQ(extract_answer("about 3.25 metres"), "3.25");
  EXPECT_EQ(extract_answer("it is 1,234"), "1,234");
  EXPECT_EQ(extract_answer("ratio 3/4"), "3/4");
  EXPECT_EQ(extract_answer("no digits here"), std::nullopt);
  EXPECT_EQ(extract_answer("unclosed \\boxed{12 and 5"), "5");
}

TEST(Answer, NumericEqualityWithFractionsSignsSeparators) {
  EXPECT_TRUE(answers_equal("1,234", "1234"));
  EXPECT_TRUE(answers_equal("\\frac{3}{4}", "0.75"));
  EXPECT_TRUE(answers_equal("3/4", "\\dfrac{3}{4}"));
  EXPECT_TRUE(answers_equal("-7", "-7.0"));
  EXPECT_TRUE(answers_equal("$42$", "42"));
  EXPECT_TRUE(answers_equal("50\\%", "50"));
  EXPECT_TRUE(answers_equal("\\text{12}", "12"));
  EXPECT_TRUE(answers_equal("100000", "100000.5"));  // relative 1e-4 (math_grader's isclose)
  EXPECT_FALSE(answers_equal("7", "-7"));
  EXPECT_FALSE(answers_equal("12", "13"));
  EXPECT_FALSE(answers_equal("1,23", "123"));  // not a thousands separator
  EXPECT_TRUE(answers_equal("x^2 + 1", "x^2+1"));  // non-numeric: normalised strings
  EXPECT_FALSE(answers_equal("", ""));
}

TEST(Behaviour, TokenShareAmongSteerableSpanShareAmongAll) {
  const std::vector<std::string> labels = {"initializing", "deduction", "adding-knowledge", "example-testing", "uncertainty-estimation", "backtracking"};
  const auto m = steerable_mask(labels);
  EXPECT_EQ(m, (std::vector<uint8_t>{0, 0, 1, 1, 1, 1}));
  BehaviourCounts c{{10, 50, 5, 0, 10, 5}, {1, 4, 1, 0, 1, 1}};
  const auto t = token_share(c, m);
  EXPECT_TRUE(std::isnan(t[0]) && std::isnan(t[1]));
  EXPECT_DOUBLE_EQ(t[2], 0.25);
  EXPECT_DOUBLE_EQ(t[3], 0.0);
  EXPECT_DOUBLE_EQ(t[4], 0.5);
  EXPECT_DOUBLE_EQ(t[5], 0.25);
  const auto s = span_share(c);
  EXPECT_DOUBLE_EQ(s[1], 0.5);
  EXPECT_DOUBLE_EQ(s[5], 0.125);
  // §A.6: fraction 0 when the denominator is 0
  BehaviourCounts none{{3, 9, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0}};
  EXPECT_DOUBLE_EQ(token_share(none, m)[5], 0.0);
  EXPECT_DOUBLE_EQ(span_share(none)[1], 0.0);
}

TEST(Bootstrap, IntervalOfTheMean) {
  std::vector<double> constant(50, 0.3);
  const Interval c = bootstrap_mean(constant, 500, 0.95, 1);
  EXPECT_NEAR(c.mean, 0.3, 1e-15);
  EXPECT_NEAR(c.lo, 0.3, 1e-15);
  EXPECT_NEAR(c.hi, 0.3, 1e-15);
  // 0/1 values with p = 0.5, n = 400: the normal interval is 0.5 +- 1.96 * 0.025
  std::vector<double> coin;
  for (int i = 0; i < 400; ++i) coin.push_back(i % 2);
  const Interval iv = bootstrap_mean(coin, 4000, 0.95, 7);
  EXPECT_DOUBLE_EQ(iv.mean, 0.5);
  EXPECT_NEAR(iv.lo, 0.5 - 1.96 * 0.025, 0.006);
  EXPECT_NEAR(iv.hi, 0.5 + 1.96 * 0.025, 0.006);
  // deterministic in the seed; NaN left out
  EXPECT_EQ(bootstrap_mean(coin, 300, 0.9, 3).lo, bootstrap_mean(coin, 300, 0.9, 3).lo);
  std::vector<double> with_nan = {1, NAN, 3};
  EXPECT_EQ(bootstrap_mean(with_nan, 100, 0.95, 0).n, 2);
  EXPECT_DOUBLE_EQ(bootstrap_mean(with_nan, 100, 0.95, 0).mean, 2.0);
  EXPECT_TRUE(std::isnan(bootstrap_mean(std::vector<double>{NAN}, 100, 0.95, 0).mean));
}

namespace {
SweepAxes small_axes() {
  SweepAxes a;
  a.datasets = {"builtin:toy-test"};
  a.vectors = {"backtracking", "example-testing"};
  a.layers = {"auto", "1+2"};
  a.coefficients = {1, -1};
  a.hooks = {"hook_resid_post"};
  a.ops = {"add"};
  a.positions = {"all"};
  a.controls = {"none", "random"};
  a.seeds = {0, 1};
  return a;
}
std::vector<std::vector<int64_t>> resolve(const std::string& vector, const std::string& spec) {
  if (spec == "auto") return {{vector == "backtracking" ? 3 : 2}};
  if (spec == "selected") return {{2}, {3}};
  return {parse_layer_group(spec, "test", "sweep.layers")};
}
}  // namespace

TEST(SweepPlan, OrderCountsAndKeys) {
  const auto pts = sweep_expand(small_axes(), resolve, false);
  // 1 baseline + 2 vectors x 2 layer specs x 2 coefs x (1 vector + 2 random seeds)
  ASSERT_EQ(pts.size(), 1u + 2 * 2 * 2 * 3);
  EXPECT_EQ(pts[0].kind, "baseline");
  EXPECT_EQ(pts[1].kind, "vector");
  EXPECT_EQ(pts[1].layers, (std::vector<int64_t>{3}));
  EXPECT_EQ(pts[2].kind, "random");
  EXPECT_EQ(pts[2].seed, 0);
  EXPECT_EQ(pts[3].seed, 1);
  EXPECT_EQ(pts[4].coef, -1);
  EXPECT_EQ(pts[7].layers_text(), "1+2");
  for (size_t i = 0; i < pts.size(); ++i) EXPECT_EQ(pts[i].task, static_cast<int64_t>(i));
  // keys depend on the parameters only: the same point keeps its key when rows shift
  SweepAxes more = small_axes();
  more.coefficients = {2, 1, -1};
  const auto pts2 = sweep_expand(more, resolve, false);
  std::set<std::string> keys2;
  for (const auto& p : pts2) keys2.insert(p.key);
  for (const auto& p : pts) EXPECT_TRUE(keys2.count(p.key)) << p.to_json().dump();
  // divide_by_layers scales a group of n layers by 1/n
  const auto scaled = sweep_expand(small_axes(), resolve, true);
  EXPECT_DOUBLE_EQ(scaled[7].layer_scale, 0.5);
  EXPECT_DOUBLE_EQ(scaled[1].layer_scale, 1.0);
  EXPECT_NE(scaled[7].key, pts[7].key);
}

TEST(SweepPlan, RandomDirectionsPerSeed) {
  SweepAxes a = small_axes();
  a.vectors = {"backtracking"};
  a.layers = {"auto"};
  a.coefficients = {1};
  a.seeds = {11};
  a.random_directions = 5;
  const auto pts = sweep_expand(a, resolve, false);
  // baseline, the vector, then five directions 1100..1104; greedy baseline and vector points have seed
  // 0 whatever the control seed, so other control seeds reuse their tasks
  ASSERT_EQ(pts.size(), 7u);
  EXPECT_EQ(pts[1].kind, "vector");
  EXPECT_EQ(pts[0].seed, 0);
  EXPECT_EQ(pts[1].seed, 0);
  for (int64_t j = 0; j < 5; ++j) {
    EXPECT_EQ(pts[2 + j].kind, "random");
    EXPECT_EQ(pts[2 + j].seed, 1100 + j);
  }
  // Sampled: baseline, vector and the five directions all draw their tokens with the control seed 11,
  // so every steered point pairs with the baseline draw for draw.
  a.sampled = true;
  const auto sampled = sweep_expand(a, resolve, false);
  ASSERT_EQ(sampled.size(), 7u);
  for (const auto& p : sampled) EXPECT_EQ(p.sample_seed, 11) << p.kind << " " << p.seed;
  EXPECT_EQ(sampled[1].seed, 11);
  EXPECT_EQ(sampled[6].seed, 1104);
  EXPECT_EQ(SweepPoint::from_json(sampled[6].to_json(), "row").sample_seed, 11);
  EXPECT_EQ(pts[2].to_json().count("sample_seed"), 0u);  // greedy rows keep their keys
  a.sampled = false;
  a.random_directions = 1;  // the seed itself: manifests planned before the option keep their keys
  const auto one = sweep_expand(a, resolve, false);
  ASSERT_EQ(one.size(), 3u);
  EXPECT_EQ(one[2].seed, 11);
}

TEST(SweepPlan, ProjectOutCollapsesCoefficientsSampledRepeatsSeeds) {
  SweepAxes a = small_axes();
  a.vectors = {"backtracking"};
  a.layers = {"2"};
  a.ops = {"project-out"};
  a.controls = {"none"};
  EXPECT_EQ(sweep_expand(a, resolve, false).size(), 2u);  // baseline + one projection
  a.sampled = true;
  const auto pts = sweep_expand(a, resolve, false);  // per seed: baseline and point
  ASSERT_EQ(pts.size(), 4u);
  EXPECT_EQ(pts[0].kind, "baseline");
  EXPECT_EQ(pts[1].kind, "baseline");
  EXPECT_EQ(pts[1].seed, 1);
  a.sampled = false;
  a.ops = {"add"};
  a.coefficients = {1};
  a.layers = {"selected", "2"};  // 2 comes out twice: one task
  const auto twice = sweep_expand(a, resolve, false);
  ASSERT_EQ(twice.size(), 3u);
  EXPECT_EQ(twice[1].layers, (std::vector<int64_t>{2}));
  EXPECT_EQ(twice[2].layers, (std::vector<int64_t>{3}));
  EXPECT_EQ(twice[2].task, 2);
}

TEST(SweepPlan, LayerGroupsArraySpecManifest) {
  EXPECT_EQ(parse_layer_group("4", "f", "k"), (std::vector<int64_t>{4}));
  EXPECT_EQ(parse_layer_group("1+3", "f", "k"), (std::vector<int64_t>{1, 3}));
  for (const char* bad : {"", "x", "1+", "1+1", "-1", "auto"}) EXPECT_THROW(parse_layer_group(bad, "f", "k"), InputError) << bad;
  EXPECT_EQ(array_spec({0, 1, 2, 5, 7, 8}), "0-2,5,7-8");
  EXPECT_EQ(array_spec({3}), "3");
  EXPECT_EQ(array_spec({}), "");
  const auto pts = sweep_expand(small_axes(), resolve, false);
  const fs::path f = fs::temp_directory_path() / ("ts_manifest_" + std::to_string(::getpid()) + ".jsonl");
  std::ofstream(f) << manifest_text(pts);
  const auto back = manifest_read(f.string());
  ASSERT_EQ(back.size(), pts.size());
  for (size_t i = 0; i < pts.size(); ++i) EXPECT_EQ(back[i].to_json(), pts[i].to_json());
  // an edited row no longer matches its key
  std::string text = manifest_text(pts);
  text.replace(text.find("\"coef\":1.0"), 10, "\"coef\":3.0");
  std::ofstream(f) << text;
  try {
    manifest_read(f.string());
    FAIL() << "an edited manifest was accepted";
  } catch (const InputError& e) {
    EXPECT_EQ(e.field(), "key");
    EXPECT_NE(std::string(e.what()).find(":2"), std::string::npos) << e.what();
  }
  fs::remove(f);
}

TEST(Intervention, RandomControlKeepsTheNormAndIsSeeded) {
  VectorSet set;
  set.hook_measured = set.hook_applied = "blocks.{l}.hook_resid_post";
  set.layers = {1, 2};
  set.d_model = 64;
  set.names = {"backtracking", "empty"};
  set.values.assign(2 * 2 * 64, 0.0f);
  for (int i = 0; i < 64; ++i) set.vector(0, 0)[i] = 0.5f * static_cast<float>(i % 7), set.vector(0, 1)[i] = static_cast<float>(i % 3) - 1.0f;
  set.counts = {4, 4, 0, 0};
  SweepPoint p;
  p.kind = "random";
  p.vector = "backtracking";
  p.layers = {1, 2};
  p.coef = -2;
  p.layer_scale = 0.5;
  p.seed = 3;
  const auto edits = point_edits(p, set, "v.h5");
  ASSERT_EQ(edits.size(), 2u);
  for (size_t k = 0; k < 2; ++k) {
    double n_real = 0, n_rand = 0, dot = 0;
    const float* v = set.vector(0, k);
    for (int i = 0; i < 64; ++i) n_real += double(v[i]) * v[i], n_rand += double(edits[k].vector[i]) * edits[k].vector[i], dot += double(v[i]) * edits[k].vector[i];
    EXPECT_NEAR(std::sqrt(n_rand), std::sqrt(n_real), 1e-5 * std::sqrt(n_real));
    EXPECT_LT(std::fabs(dot) / n_real, 0.6);  // a different direction
    EXPECT_DOUBLE_EQ(edits[k].coef, -1.0);
  }
  EXPECT_EQ(point_edits(p, set, "v.h5")[0].vector, edits[0].vector);  // a pure function of the point
  p.seed = 4;
  EXPECT_NE(point_edits(p, set, "v.h5")[0].vector, edits[0].vector);
  p.kind = "vector";
  EXPECT_EQ(point_edits(p, set, "v.h5")[1].vector, std::vector<float>(set.vector(0, 1), set.vector(0, 1) + 64));
  p.vector = "empty";
  EXPECT_THROW(point_edits(p, set, "v.h5"), InputError);  // count 0: never a zero vector
  p.vector = "missing";
  EXPECT_THROW(point_edits(p, set, "v.h5"), InputError);
  p.vector = "backtracking";
  p.layers = {5};
  EXPECT_THROW(point_edits(p, set, "v.h5"), InputError);
}
