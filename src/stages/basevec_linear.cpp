// The linear trainer (docs/algorithms.md §B.8): a bias vector on whole thinking texts, then one vector
// per category on that category's sentences with the bias added (not trained) at the same tokens; each
// a phase of its own: random init of norm 1, Adam with a cosine schedule to 0 over linear_epochs ×
// ceil(N / linear_batch_size) steps, early stopping on the epoch's training loss (linear_patience
// epochs without a gain of 1e-3), the best epoch kept. Loss: cross-entropy of the sentence's tokens with
// the logits × coldness, in log10 units; the vector is added at the sentence's tokens at
// blocks.{layer}.hook_resid_post (where it is applied: no off-by-one). Resumable at every epoch.
#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>

#include "core/error.h"
#include "core/log.h"
#include "dist/stop.h"
#include "stages/basevec_train.h"

namespace ts::stages {
namespace fs = std::filesystem;

namespace {

struct Linear {
  const Config& cfg;
  Runtime& rt;
  const BasevecPoint& p;
  const BasevecData& data;
  const artifacts::BasevecRecords& r;

  TrainItem item(int64_t s) const {
    const auto u = static_cast<size_t>(s);
    TrainItem it;
    it.example = r.s_example[u], it.len = r.s_end[u];
    for (int64_t t = r.s_begin[u]; t < r.s_end[u]; ++t) it.shift_pos.push_back(t), it.shift_cat.push_back(0), it.loss_pos.push_back(t - 1);
    return it;
  }
  std::vector<int64_t> targets(const std::vector<int64_t>& rows) const {
    std::vector<int64_t> out;
    for (int64_t s : rows) {
      const auto u = static_cast<size_t>(s);
      const int64_t off = r.token_offset[static_cast<size_t>(r.s_example[u])];
      for (int64_t t = r.s_begin[u]; t < r.s_end[u]; ++t) out.push_back(r.tokens[static_cast<size_t>(off + t)]);
    }
    return out;
  }
  // The sentence rows of a phase (category; -1 the bias) in the given splits, at most `cap` (seeded choice).
  std::vector<int64_t> rows(int64_t category, std::vector<int64_t> splits, int64_t cap) const {
    std::vector<int64_t> out;
    for (int64_t s = 0; s < r.n_sentences(); ++s)
      if (r.s_category[static_cast<size_t>(s)] == category &&
          std::count(splits.begin(), splits.end(), r.split[static_cast<size_t>(r.s_example[static_cast<size_t>(s)])]))
        out.push_back(s);
    if (cap > 0 && static_cast<int64_t>(out.size()) > cap) {
      std::mt19937_64 g(stream_seed(p.seed, "linear subset", category));
      std::shuffle(out.begin(), out.end(), g);
      out.resize(static_cast<size_t>(cap));
      std::sort(out.begin(), out.end());
    }
    return out;
  }
  // This rank's part of a minibatch: (sum of the log10 CE over target tokens, tokens).
  std::pair<at::Tensor, int64_t> loss(const std::vector<int64_t>& batch, const at::Tensor& v, const at::Tensor& bias) const {
    const auto [b0, b1] = rank_slice(batch.size(), rt);
    if (b0 == b1) return {at::zeros({}, at::kFloat), 0};
    const std::vector<int64_t> mine(batch.begin() + static_cast<std::ptrdiff_t>(b0), batch.begin() + static_cast<std::ptrdiff_t>(b1));
    std::vector<TrainItem> items;
    for (int64_t s : mine) items.push_back(item(s));
    const at::Tensor logits = batch_logits(data.base, rt, r, items, cfg.basevec.layer, v, bias, {});
    const std::vector<int64_t> tg = targets(mine);
    const at::Tensor l = basevec::hard_ce(logits * cfg.basevec.coldness, at::tensor(tg, at::kLong)) / std::log(10.0);
    return {l.sum(), static_cast<int64_t>(tg.size())};
  }
  // COLLECTIVE: mean log10 CE over the rows' target tokens.
  double evaluate(const std::vector<int64_t>& rows, const at::Tensor& v, const at::Tensor& bias) const {
    at::NoGradGuard no_grad;
    std::vector<double> sums = {0, 0};
    const auto bs = static_cast<size_t>(cfg.basevec.linear_batch_size);
    for (size_t i = 0; i < rows.size(); i += bs) {
      const std::vector<int64_t> batch(rows.begin() + static_cast<std::ptrdiff_t>(i), rows.begin() + static_cast<std::ptrdiff_t>(std::min(rows.size(), i + bs)));
      const auto [s, n] = loss(batch, v, bias);
      sums[0] += s.item<double>(), sums[1] += static_cast<double>(n);
    }
    if (rt.world > 1) rt.world_comm.allreduce_sum(std::span<double>(sums));
    return sums[1] > 0 ? sums[0] / sums[1] : NAN;
  }
};

// Held-out sentences per category (holdout and selection splits): the log10 CE unsteered, with bias + vector,
// and with same-norm random ones; averaged over the categories' sentences.
json linear_metrics(const Linear& k, const at::Tensor& done, const std::vector<int64_t>& counts, const Runtime& rt) {
  const int64_t C = static_cast<int64_t>(counts.size());
  json m_ = {{"method", "linear"}};
  const at::Tensor all = done.to(rt.device);
  for (const auto& [name, split] : {std::pair<const char*, int64_t>{"holdout", 1}, {"selection", 2}}) {
    json per = json::array();
    double su = 0, ss = 0, sr = 0, n = 0;
    for (int64_t c = 0; c < C; ++c) {
      const std::vector<int64_t> rows = k.rows(c, {split}, 0);
      if (rows.empty() || counts[static_cast<size_t>(c)] == 0) {
        per.push_back(nullptr);
        continue;
      }
      const at::Tensor rnd = basevec::same_norm_random(all, stream_seed(k.p.seed, "random", c)).to(rt.device);
      const double u = k.evaluate(rows, {}, {}), s = k.evaluate(rows, all[c + 1].unsqueeze(0), all[0]), rr = k.evaluate(rows, rnd[c + 1].unsqueeze(0), rnd[0]);
      per.push_back({{"unsteered", u}, {"steered", s}, {"random", rr}, {"sentences", static_cast<int64_t>(rows.size())}});
      const auto w = static_cast<double>(rows.size());
      su += u * w, ss += s * w, sr += rr * w, n += w;
    }
    if (n > 0) m_[name] = {{"unsteered", su / n}, {"steered", ss / n}, {"random", sr / n}, {"per_category", per}};
  }
  return m_;
}

}  // namespace

void train_linear(const Config& cfg, Runtime& rt, const BasevecPoint& p, const BasevecData& data, const fs::path& state, const std::string& hash,
                  artifacts::BasevecTask& t) {
  const Config::Basevec& o = cfg.basevec;
  const Linear k{cfg, rt, p, data, data.records};
  const int64_t C = data.records.n_categories, d = data.base.config.d_model;
  at::Tensor done = at::zeros({C + 1, d}, at::kFloat);  // row 0: the bias, row 1 + c: category c
  json prog = {{"phase", -1}, {"epoch", 0}, {"global", 0}, {"best", nullptr}, {"bad", 0}, {"curves", json::array()}, {"counts", json::array()}};
  at::Tensor v, best_v, m, s2;
  std::optional<TrainState> saved = load_train_state(state, hash, rt);
  if (saved) {
    prog = saved->progress;
    std::map<std::string, at::Tensor> mp(saved->tensors.begin(), saved->tensors.end());
    done = mp.at("done"), v = mp.at("v"), best_v = mp.at("best"), m = mp.at("m"), s2 = mp.at("s");
    if (rt.rank == 0) spdlog::info("basevec: task {} (linear seed {}) resumes at phase {}, epoch {}", p.task, p.seed, prog["phase"].get<int64_t>(), prog["epoch"].get<int64_t>() + 1);
  }
  for (int64_t phase = prog["phase"]; phase < C; ++phase) {
    const std::vector<int64_t> rows = k.rows(phase, {0}, o.linear_examples);
    if (!saved || prog["epoch"].get<int64_t>() == 0) {
      at::Generator g = at::detail::createCPUGenerator(stream_seed(p.seed, "linear init", phase));
      v = at::empty({1, d}, at::kFloat).normal_(0, 1, g);
      v = v / v.norm();
      best_v = v.clone(), m = at::zeros_like(v), s2 = at::zeros_like(v);
      prog["phase"] = phase, prog["epoch"] = 0, prog["best"] = nullptr, prog["bad"] = 0;
    }
    saved.reset();
    if (prog["counts"].size() < static_cast<size_t>(phase + 2)) prog["counts"].push_back(static_cast<int64_t>(rows.size()));
    if (rows.empty()) {
      if (rt.rank == 0) spdlog::warn("basevec: task {} (linear seed {}): no training sentence for {}; its vector is recorded as skipped (zero)", p.task, p.seed,
                                     phase < 0 ? std::string("the bias") : "idx" + std::to_string(phase));
      continue;
    }
    const at::Tensor bias = phase < 0 ? at::Tensor() : done[0].to(rt.device);
    const auto bs = static_cast<size_t>(o.linear_batch_size);
    const int64_t steps_per_epoch = static_cast<int64_t>((rows.size() + bs - 1) / bs), total = o.linear_epochs * steps_per_epoch;
    at::Tensor param = v.to(rt.device).set_requires_grad(true);
    AdamW opt({{"v", param}});
    opt.m[0].copy_(m), opt.v[0].copy_(s2);
    for (int64_t epoch = prog["epoch"]; epoch < o.linear_epochs; ++epoch) {
      std::vector<int64_t> order = rows;
      std::mt19937_64 g(stream_seed(p.seed, "linear order", phase, epoch));
      std::shuffle(order.begin(), order.end(), g);
      double sum = 0, n = 0;
      for (size_t i = 0; i < order.size(); i += bs) {
        const std::vector<int64_t> batch(order.begin() + static_cast<std::ptrdiff_t>(i), order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), i + bs)));
        auto [l, cnt] = k.loss(batch, param, bias);
        if (cnt > 0) l.backward();
        const std::vector<double> sums = allreduce_grads(rt, {&opt}, {l.item<double>(), static_cast<double>(cnt)}, 1);
        sum += sums[0], n += sums[1];
        const int64_t step = epoch * steps_per_epoch + static_cast<int64_t>(i / bs);
        opt.step({}, step, o.linear_lr * 0.5 * (1 + std::cos(M_PI * static_cast<double>(step) / static_cast<double>(total))));
        opt.zero_grad();
        prog["global"] = prog["global"].get<int64_t>() + 1;
      }
      const double loss = sum / std::max(1.0, n);
      prog["curves"].push_back({prog["global"], static_cast<double>(epoch + 1), phase, loss});
      if (prog["best"].is_null() || loss < prog["best"].get<double>() - 1e-3) {
        prog["best"] = loss, prog["bad"] = 0;
        best_v = param.detach().cpu().clone();
      } else {
        prog["bad"] = prog["bad"].get<int64_t>() + 1;
      }
      prog["epoch"] = epoch + 1;
      const bool finished = prog["bad"].get<int64_t>() >= o.linear_patience || epoch + 1 >= o.linear_epochs;
      if (finished) done[phase + 1].copy_(best_v[0]);
      if (rt.rank == 0) {
        spdlog::info("basevec: task {} (linear seed {}) {} epoch {} loss {:.4f} (log10) best {:.4f}", p.task, p.seed,
                     phase < 0 ? std::string("bias") : "idx" + std::to_string(phase), epoch + 1, loss, prog["best"].get<double>());
        json pr = prog;
        if (finished) pr["phase"] = phase + 1, pr["epoch"] = 0, pr["best"] = nullptr, pr["bad"] = 0;
        save_train_state(state, {{{"done", done}, {"v", param.detach()}, {"best", best_v}, {"m", opt.m[0]}, {"s", opt.v[0]}}, pr}, hash);
      }
      if (finished) break;
      if (stop_agree(rt.world_comm) != 0)
        throw StopRequested("the linear training after epoch " + std::to_string(epoch + 1) + " of phase " + std::to_string(phase) + " in " + state.filename().string());
    }
    prog["epoch"] = 0;
  }
  t.bias = tensor_values(done[0]);
  t.vectors = tensor_values(done.narrow(0, 1, C));
  const json counts = prog["counts"];  // phase -1 first
  t.counts.clear();
  json skipped = json::array();
  for (int64_t c = 0; c < C; ++c) {
    const int64_t n = counts.size() > static_cast<size_t>(c + 1) ? counts[static_cast<size_t>(c + 1)].get<int64_t>() : 0;
    t.counts.push_back(n);
    if (n == 0) skipped.push_back("idx" + std::to_string(c));
  }
  json m_ = linear_metrics(k, done, t.counts, rt);
  m_["steps"] = prog["global"], m_["skipped"] = skipped, m_["bias_examples"] = counts.empty() ? 0 : counts[0].get<int64_t>();
  const char* sel = m_.contains("selection") ? "selection" : "holdout";
  m_["selection_metric"] = m_.contains(sel) ? m_[sel]["steered"] : json(nullptr);
  m_["selection_split"] = sel;
  t.metrics = m_;
  for (const json& c : prog["curves"]) {
    t.curve_step.push_back(c[0]), t.curve_epoch.push_back(c[1]), t.curve_phase.push_back(c[2]), t.curve_train.push_back(c[3]), t.curve_holdout.push_back(NAN);
  }
}

}  // namespace ts::stages
