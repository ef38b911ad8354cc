// The taxonomy algorithms (docs/algorithms.md §B.4, §B.6) against their references:
//   - clustering scores against scikit-learn (NMI, ARI) and scipy's linear_sum_assignment, |diff| <= 1e-9;
//   - the TopK SAE's optimizer steps against the PyTorch loop of make_taxonomy_reference.py, the same
//     initial parameters and minibatches: losses and parameters within 1e-5 (absolute), clusters identical;
//   - two data-parallel replicas (threads summing through a barrier) against one, within 1e-5;
//   - resuming from state_tensors gives the uninterrupted run bit for bit; early stopping keeps the best epoch;
//   - spherical k-means recovers planted clusters.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <barrier>
#include <filesystem>
#include <map>
#include <limits>
#include <thread>

#include "core/json.h"
#include "model/safetensors.h"
#include "model/weights.h"
#include "taxonomy/scores.h"
#include "taxonomy/spherical_kmeans.h"
#include "taxonomy/topk_sae.h"

namespace fs = std::filesystem;
using namespace ts;
using namespace ts::taxonomy;

namespace {

const fs::path kDir = fs::path(THINKSTEER_TEST_DATA) / "taxonomy";
constexpr double kTol = 1e-5;

struct Case {
  SafetensorsFile file{kDir / "sae_case.safetensors"};
  at::Tensor get(const std::string& name) const {
    const TensorInfo* info = file.find(name);
    if (!info) throw std::runtime_error("reference tensor missing: " + name);
    return tensor_from_safetensors(*info, file.bytes(*info));
  }
};

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) { return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>(); }

RowFetcher fetch_from(const at::Tensor& x) {
  return [x](std::span<const int64_t> rows) {
    return x.index_select(0, at::tensor(std::vector<int64_t>(rows.begin(), rows.end()), at::kLong));
  };
}

// Unit vectors around k planted directions (the shape of §B.3's centred, normalised sentence vectors).
std::pair<at::Tensor, std::vector<int64_t>> planted(int64_t n, int64_t d, int64_t k, double noise, uint64_t seed) {
  at::manual_seed(seed);
  const at::Tensor centres = at::randn({k, d});
  const at::Tensor labels = at::randint(k, {n}, at::kLong);
  at::Tensor x = centres.index_select(0, labels) / centres.norm(2, 1, true).index_select(0, labels) + noise * at::randn({n, d});
  x = x / x.norm(2, 1, true);
  return {x, std::vector<int64_t>(labels.data_ptr<int64_t>(), labels.data_ptr<int64_t>() + n)};
}

std::vector<int64_t> to_vector(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kLong).contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

}  // namespace

TEST(ClusterScores, MatchScikitLearnAndScipy) {
  const json cases = json_read_file(kDir / "scores.json");
  ASSERT_GE(cases.size(), 10u);
  for (const auto& c : cases) {
    const auto clusters = c.at("clusters").get<std::vector<int64_t>>(), labels = c.at("labels").get<std::vector<int64_t>>();
    const Contingency t = contingency(clusters, labels);
    EXPECT_NEAR(normalized_mutual_info(t), c.at("nmi").get<double>(), 1e-9);
    EXPECT_NEAR(adjusted_rand_index(t), c.at("ari").get<double>(), 1e-9);
    EXPECT_NEAR(majority_accuracy(t), c.at("majority").get<double>(), 1e-12);
    EXPECT_NEAR(matched_accuracy(t), c.at("matched").get<double>(), 1e-12);
  }
}

TEST(ClusterScores, IdenticalPartitionsAndBadInput) {
  const std::vector<int64_t> a = {0, 0, 1, 1, 2, 2}, renamed = {2, 2, 0, 0, 1, 1};
  const Contingency t = contingency(a, renamed);
  EXPECT_NEAR(normalized_mutual_info(t), 1.0, 1e-12);
  EXPECT_NEAR(adjusted_rand_index(t), 1.0, 1e-12);
  EXPECT_EQ(matched_accuracy(t), 1.0);
  EXPECT_EQ(hungarian_match(t), (std::vector<int64_t>{2, 0, 1}));
  EXPECT_THROW(contingency(a, std::vector<int64_t>{0, 1}), std::invalid_argument);
  EXPECT_THROW(contingency(std::vector<int64_t>{-1}, std::vector<int64_t>{0}), std::invalid_argument);
}

TEST(TopkSae, StepsMatchThePyTorchLoop) {
  const Case ref;
  const at::Tensor x = ref.get("x");
  const int64_t k = ref.get("init.w_enc").size(0), d = x.size(1);
  TopkSae init{ref.get("init.w_enc"), at::zeros({k}), ref.get("init.w_dec"), at::zeros({d}), 3};
  SaeTrainOptions opt;
  opt.lr = ref.get("lr").item<double>();
  SaeTrainer trainer(init, x.size(0), opt, fetch_from(x));
  const at::Tensor batches = ref.get("batches"), losses = ref.get("losses");
  for (int64_t s = 0; s < batches.size(0); ++s) {
    const auto rows = to_vector(batches[s]);
    EXPECT_NEAR(trainer.step(rows), losses[s].item<double>(), kTol) << "step " << s;
  }
  const TopkSae& sae = trainer.current();
  EXPECT_LE(max_abs_diff(sae.w_enc, ref.get("final.w_enc")), kTol);
  EXPECT_LE(max_abs_diff(sae.b_enc, ref.get("final.b_enc")), kTol);
  EXPECT_LE(max_abs_diff(sae.w_dec, ref.get("final.w_dec")), kTol);
  EXPECT_LE(max_abs_diff(sae.b_dec, ref.get("final.b_dec")), kTol);
  EXPECT_TRUE(sae.assign(x).equal(ref.get("final.clusters").to(at::kLong)));
}

TEST(TopkSae, InitIsNnLinearShapedAndSeeded) {
  const TopkSae a = topk_sae_init(16, 6, 3, 1), b = topk_sae_init(16, 6, 3, 1), c = topk_sae_init(16, 6, 3, 2);
  EXPECT_TRUE(a.w_enc.equal(b.w_enc));
  EXPECT_FALSE(a.w_enc.equal(c.w_enc));
  EXPECT_LE(a.w_enc.abs().max().item<double>(), 0.25);  // 1 / sqrt(16)
  EXPECT_LE(max_abs_diff(a.w_dec.norm(2, 1), at::ones({6})), 1e-4);
  EXPECT_NEAR(topk_sae_default_lr(10), 8.1e-3, 1e-4);  // §B.4: K = 10 -> 8.1e-3
  EXPECT_THROW(topk_sae_init(16, 2, 3, 0), std::invalid_argument);
  const auto o1 = epoch_order(100, 5, 0), o2 = epoch_order(100, 5, 1);
  EXPECT_NE(o1, o2);
  auto sorted = o1;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 100; ++i) EXPECT_EQ(sorted[static_cast<size_t>(i)], i);
}

TEST(TopkSae, TwoReplicasAgreeWithOne) {
  const auto [x, labels] = planted(400, 16, 6, 0.4, 3);
  SaeTrainOptions opt;
  opt.batch_size = 64;
  opt.seed = 9;
  const TopkSae init = topk_sae_init(16, 6, 3, 4);
  SaeTrainer one(init, x.size(0), opt, fetch_from(x));
  for (int e = 0; e < 3; ++e) one.run_epoch();

  // Two replicas in two threads; the allreduce is a barrier-synchronised sum of their buffers.
  std::vector<float> slots[2];
  std::barrier sync(2);
  auto sum_for = [&](int r) {
    return [&, r](std::span<float> buf) {
      slots[r].assign(buf.begin(), buf.end());
      sync.arrive_and_wait();
      for (size_t i = 0; i < buf.size(); ++i) buf[i] = slots[0][i] + slots[1][i];
      sync.arrive_and_wait();
    };
  };
  std::unique_ptr<SaeTrainer> replicas[2];
  for (int r = 0; r < 2; ++r) replicas[r] = std::make_unique<SaeTrainer>(init, x.size(0), opt, fetch_from(x), r, 2, sum_for(r));
  std::thread t1([&] { for (int e = 0; e < 3; ++e) replicas[1]->run_epoch(); });
  for (int e = 0; e < 3; ++e) replicas[0]->run_epoch();
  t1.join();
  for (const auto& rep : replicas) {
    EXPECT_LE(max_abs_diff(rep->current().w_enc, one.current().w_enc), kTol);
    EXPECT_LE(max_abs_diff(rep->current().w_dec, one.current().w_dec), kTol);
    EXPECT_LE(max_abs_diff(rep->current().b_dec, one.current().b_dec), kTol);
    EXPECT_TRUE(rep->best().assign(x).equal(one.best().assign(x)));
    for (size_t e = 0; e < 3; ++e) EXPECT_NEAR(rep->epoch_losses()[e], one.epoch_losses()[e], kTol);
  }
}

TEST(TopkSae, ResumeEqualsUninterruptedAndBestEpochIsKept) {
  const auto [x, labels] = planted(300, 12, 5, 0.5, 5);
  SaeTrainOptions opt;
  opt.batch_size = 50;
  opt.patience = 2;
  opt.max_epochs = 60;
  opt.lr = 0.05;  // large enough that the loss stops improving and early stopping ends the run
  const TopkSae init = topk_sae_init(12, 5, 3, 6);
  SaeTrainer whole(init, x.size(0), opt, fetch_from(x));
  std::vector<TopkSae> after_epoch;
  while (!whole.done()) {
    whole.run_epoch();
    after_epoch.push_back(whole.current().clone());
  }
  ASSERT_LT(whole.epoch(), opt.max_epochs) << "early stopping never triggered";
  const auto& losses = whole.epoch_losses();
  const auto best = std::min_element(losses.begin(), losses.end()) - losses.begin();
  EXPECT_EQ(whole.best_epoch(), best);
  EXPECT_TRUE(whole.best().w_enc.equal(after_epoch[static_cast<size_t>(best)].w_enc));

  SaeTrainer first(init, x.size(0), opt, fetch_from(x));
  for (int e = 0; e < 3; ++e) first.run_epoch();
  std::map<std::string, at::Tensor> saved;
  for (const auto& [name, t] : first.state_tensors()) saved[name] = t.clone();
  SaeTrainer resumed(topk_sae_init(12, 5, 3, 99), x.size(0), opt, fetch_from(x));
  resumed.load_state_tensors([&](const std::string& name) { return saved.at(name); });
  while (!resumed.done()) resumed.run_epoch();
  EXPECT_EQ(resumed.epoch(), whole.epoch());
  EXPECT_EQ(resumed.best_epoch(), whole.best_epoch());
  EXPECT_TRUE(resumed.current().w_enc.equal(whole.current().w_enc));
  EXPECT_TRUE(resumed.best().w_dec.equal(whole.best().w_dec));
  EXPECT_EQ(resumed.epoch_losses(), whole.epoch_losses());
}

TEST(TopkSae, BadInputIsNamedAndDeadLatentsAreCounted) {
  const auto [x, labels] = planted(50, 8, 3, 0.3, 11);
  SaeTrainOptions opt;
  opt.batch_size = 16;
  EXPECT_THROW(SaeTrainer(topk_sae_init(8, 60, 3, 0), x.size(0), opt, fetch_from(x)), std::invalid_argument);  // K > N
  at::Tensor bad = x.clone();
  bad[7][2] = std::numeric_limits<float>::quiet_NaN();
  SaeTrainer nan_trainer(topk_sae_init(8, 4, 3, 0), bad.size(0), opt, fetch_from(bad));
  try {
    nan_trainer.run_epoch();
    FAIL() << "a NaN vector trained without an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("not finite"), std::string::npos) << e.what();
  }
  TopkSae sae = topk_sae_init(8, 4, 3, 0);
  sae.b_enc = at::tensor({100.0f, 0.0f, 0.0f, 0.0f});  // latent 0 wins every argmax: 1, 2 and 3 are dead
  const auto sizes = sae.cluster_sizes(x);
  EXPECT_EQ(sizes, (std::vector<int64_t>{50, 0, 0, 0}));
}

TEST(SphericalKMeans, RecoversPlantedClustersDeterministically) {
  const auto [x, labels] = planted(600, 24, 6, 0.15, 7);
  const KMeansResult a = spherical_kmeans(x, 6, 1), b = spherical_kmeans(x, 6, 1);
  EXPECT_TRUE(a.labels.equal(b.labels));
  EXPECT_TRUE(a.converged);
  const Contingency t = contingency(to_vector(a.labels), labels);
  EXPECT_GE(normalized_mutual_info(t), 0.99);
  EXPECT_LE(max_abs_diff(a.centres.norm(2, 1), at::ones({6})), 1e-5);
  EXPECT_THROW(spherical_kmeans(x.narrow(0, 0, 4), 5, 0), std::invalid_argument);
  const KMeansResult every = spherical_kmeans(x.narrow(0, 0, 12), 12, 0);  // k = n: no cluster left empty
  EXPECT_GT(at::bincount(every.labels, {}, 12).min().item<int64_t>(), 0);
}
