// The correction trainer (docs/algorithms.md §B.10 "Correction-vector training"): V [C, d] and the
// optional coefficient MLP, trained jointly on the base model's disagreement positions of the training
// rollouts (≤ basevec.positions_per_category per rollout and category, re-sampled each epoch; batches of
// rollouts bucketed by length), Adam with L2 weight decay (torch.optim.Adam's), the MLP's gradient
// clipped; the holdout rollouts' top-k KL is evaluated basevec.evals_per_epoch times per epoch and the
// best state is kept; the run stops after basevec.patience evaluations without a better one. The final
// evaluation compares, on the holdout and selection rollouts, the unsteered base, the trained set and
// basevec.random_controls sets of same-norm random vectors (with the same MLP).
#include <algorithm>
#include <chrono>
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

struct Split {
  std::vector<int64_t> examples;           // with at least one record
};

struct Plan {                               // one epoch: batches of items, each item's records
  std::vector<std::vector<TrainItem>> batches;
  std::vector<std::vector<std::vector<int64_t>>> recs;
};

struct Correction {
  const Config& cfg;
  Runtime& rt;
  const BasevecPoint& p;
  const BasevecData& data;
  const artifacts::BasevecRecords& r;
  std::vector<std::vector<int64_t>> by_example;  // record ids per example
  std::vector<int64_t> train, holdout, selection;
  int64_t C = 0, d = 0, ktrain = 0;

  Correction(const Config& c, Runtime& rt_, const BasevecPoint& p_, const BasevecData& data_)
      : cfg(c), rt(rt_), p(p_), data(data_), r(data_.records), C(r.n_categories), d(data_.base.config.d_model),
        ktrain(std::min(c.basevec.train_topk, r.k)) {
    by_example.resize(static_cast<size_t>(r.n_examples()));
    for (int64_t i = 0; i < r.n_corrections(); ++i) by_example[static_cast<size_t>(r.c_example[static_cast<size_t>(i)])].push_back(i);
    for (int64_t e = 0; e < r.n_examples(); ++e) {
      if (by_example[static_cast<size_t>(e)].empty()) continue;
      const int64_t s = r.split[static_cast<size_t>(e)];
      (s == 0 ? train : s == 1 ? holdout : selection).push_back(e);
    }
  }

  TrainItem item_of(int64_t e, const std::vector<int64_t>& recs) const {
    TrainItem it;
    it.example = e;
    for (int64_t i : recs) {
      const auto u = static_cast<size_t>(i);
      it.shift_pos.push_back(r.c_position[u]), it.shift_cat.push_back(r.c_category[u]), it.loss_pos.push_back(r.c_position[u]);
      it.len = std::max(it.len, r.c_position[u] + 1);
    }
    return it;
  }

  // Batches of items (length-sorted chunks) over examples; `sample`: at most P records per category.
  Plan plan(const std::vector<int64_t>& examples, int64_t epoch, bool sample) const {
    std::vector<std::pair<TrainItem, std::vector<int64_t>>> items;
    for (int64_t e : examples) {
      std::vector<int64_t> recs = by_example[static_cast<size_t>(e)];
      if (sample) {
        std::map<int64_t, std::vector<int64_t>> per_cat;
        for (int64_t i : recs) per_cat[r.c_category[static_cast<size_t>(i)]].push_back(i);
        recs.clear();
        for (auto& [c, v] : per_cat) {
          std::mt19937_64 g(stream_seed(p.seed, "sample", epoch, e * 1009 + c));
          if (static_cast<int64_t>(v.size()) > cfg.basevec.positions_per_category) {
            std::shuffle(v.begin(), v.end(), g);
            v.resize(static_cast<size_t>(cfg.basevec.positions_per_category));
          }
          recs.insert(recs.end(), v.begin(), v.end());
        }
        std::sort(recs.begin(), recs.end());
      }
      items.emplace_back(item_of(e, recs), recs);
    }
    std::stable_sort(items.begin(), items.end(), [](const auto& a, const auto& b) { return a.first.len > b.first.len; });
    Plan out;
    const auto bs = static_cast<size_t>(cfg.basevec.batch_size);
    for (size_t i = 0; i < items.size(); i += bs) {
      out.batches.emplace_back(), out.recs.emplace_back();
      for (size_t j = i; j < std::min(items.size(), i + bs); ++j) out.batches.back().push_back(items[j].first), out.recs.back().push_back(items[j].second);
    }
    if (sample) {
      std::vector<size_t> order(out.batches.size());
      std::iota(order.begin(), order.end(), size_t{0});
      std::mt19937_64 g(stream_seed(p.seed, "order", epoch));
      std::shuffle(order.begin(), order.end(), g);
      Plan shuffled;
      for (size_t o : order) shuffled.batches.push_back(out.batches[o]), shuffled.recs.push_back(out.recs[o]);
      return shuffled;
    }
    return out;
  }

  // The teacher's cached top-K (ids, log-probs) and the rollout token of records, in order.
  void teacher(const std::vector<int64_t>& recs, at::Tensor& ids, at::Tensor& logp, at::Tensor& target) const {
    const auto n = static_cast<int64_t>(recs.size());
    std::vector<int32_t> vi;
    std::vector<float> vl;
    std::vector<int64_t> vt;
    for (int64_t i : recs) {
      const auto u = static_cast<size_t>(i * r.k);
      vi.insert(vi.end(), r.topk_ids.begin() + static_cast<std::ptrdiff_t>(u), r.topk_ids.begin() + static_cast<std::ptrdiff_t>(u + static_cast<size_t>(r.k)));
      vl.insert(vl.end(), r.topk_logp.begin() + static_cast<std::ptrdiff_t>(u), r.topk_logp.begin() + static_cast<std::ptrdiff_t>(u + static_cast<size_t>(r.k)));
      vt.push_back(r.c_target[static_cast<size_t>(i)]);
    }
    ids = at::tensor(vi, at::kInt).reshape({n, r.k}), logp = at::tensor(vl, at::kFloat).reshape({n, r.k}), target = at::tensor(vt, at::kLong);
  }

  // This rank's part of a batch (rank_slice): its items and their records, in order.
  std::pair<std::vector<TrainItem>, std::vector<int64_t>> share(const std::vector<TrainItem>& items, const std::vector<std::vector<int64_t>>& recs) const {
    const auto [b0, b1] = rank_slice(items.size(), rt);
    std::pair<std::vector<TrainItem>, std::vector<int64_t>> out;
    out.first.assign(items.begin() + static_cast<std::ptrdiff_t>(b0), items.begin() + static_cast<std::ptrdiff_t>(b1));
    for (size_t i = b0; i < b1; ++i) out.second.insert(out.second.end(), recs[i].begin(), recs[i].end());
    return out;
  }

  // Loss rows of this rank's part of a batch: (sum, count).
  std::pair<at::Tensor, int64_t> batch_loss(const std::vector<TrainItem>& items, const std::vector<std::vector<int64_t>>& recs, const at::Tensor& V,
                                            const basevec::CoefMlp& mlp) const {
    const auto [mine, flat] = share(items, recs);
    if (mine.empty()) return {at::zeros({}, at::kFloat), 0};
    at::Tensor ids, logp, target;
    teacher(flat, ids, logp, target);
    const at::Tensor logits = batch_logits(data.base, rt, r, mine, cfg.basevec.layer, V, {}, mlp);
    const BasevecLoss kind = cfg.basevec.loss;
    const at::Tensor l = kind == BasevecLoss::topk ? basevec::topk_ce(logits, ids, logp, ktrain)
                         : kind == BasevecLoss::full ? basevec::full_ce(logits, ids, logp)
                                                     : basevec::hard_ce(logits, target);
    return {l.sum(), static_cast<int64_t>(flat.size())};
  }

  // COLLECTIVE: mean top-k KL, the share of rows whose argmax is the teacher's top-1, and the KL per category.
  json evaluate(const std::vector<int64_t>& examples, const at::Tensor& V, const basevec::CoefMlp& mlp) const {
    at::NoGradGuard no_grad;
    const Plan pl = plan(examples, 0, false);
    std::vector<double> sums(static_cast<size_t>(2 + 2 * C), 0.0);  // kl, hits, per category (kl, n)
    for (size_t b = 0; b < pl.batches.size(); ++b) {
      const auto [mine, flat] = share(pl.batches[b], pl.recs[b]);
      if (mine.empty()) continue;
      at::Tensor ids, logp, target;
      teacher(flat, ids, logp, target);
      const at::Tensor logits = batch_logits(data.base, rt, r, mine, cfg.basevec.layer, V, {}, mlp);
      const at::Tensor kl = basevec::topk_kl(logits, ids, logp, ktrain).to(at::kDouble).cpu();
      const at::Tensor hit = logits.argmax(1).cpu().eq(ids.select(1, 0).to(at::kLong));
      sums[0] += kl.sum().item<double>(), sums[1] += hit.sum().item<double>();
      for (size_t i = 0; i < flat.size(); ++i) {
        const auto c = static_cast<size_t>(r.c_category[static_cast<size_t>(flat[i])]);
        sums[2 + 2 * c] += kl[static_cast<int64_t>(i)].item<double>(), sums[3 + 2 * c] += 1;
      }
    }
    if (rt.world > 1) rt.world_comm.allreduce_sum(std::span<double>(sums));
    int64_t n = 0;
    json per = json::array();
    for (int64_t c = 0; c < C; ++c) {
      const double k = sums[static_cast<size_t>(3 + 2 * c)];
      n += static_cast<int64_t>(k);
      per.push_back(k > 0 ? json(sums[static_cast<size_t>(2 + 2 * c)] / k) : json(nullptr));
    }
    return {{"kl", n > 0 ? json(sums[0] / static_cast<double>(n)) : json(nullptr)}, {"top1", n > 0 ? json(sums[1] / static_cast<double>(n)) : json(nullptr)},
            {"positions", n}, {"kl_per_category", per}};
  }

  // COLLECTIVE: per reference label (records of basevec.reference_spans), the mean log-probability of the
  // rollout's next token under the base model at those disagreement positions: unsteered, with each
  // position's own category (α·V[c]), with category k's vector forced at every position (α of k), and
  // with a same-norm random vector forced; and the share of the positions the SAE gave each category.
  json by_label(const std::vector<int64_t>& examples, const at::Tensor& V, const basevec::CoefMlp& mlp) const {
    at::NoGradGuard no_grad;
    const auto L = static_cast<int64_t>(r.labels.size());
    const int64_t nv = 2 + 2 * C, W = nv + 1 + C;  // per label: nv sums, the count, counts per category
    std::vector<double> sums(static_cast<size_t>(L * W), 0.0);
    const at::Tensor rnd = basevec::same_norm_random(V, stream_seed(p.seed, "random forced")).to(V.device());
    const Plan pl = plan(examples, 0, false);
    for (size_t b = 0; b < pl.batches.size(); ++b) {
      const auto [items, flat] = share(pl.batches[b], pl.recs[b]);
      if (items.empty()) continue;
      std::vector<int64_t> tg;
      for (int64_t i : flat) tg.push_back(r.c_target[static_cast<size_t>(i)]);
      const at::Tensor target = at::tensor(tg, at::kLong).unsqueeze(1);
      for (int64_t v = 0; v < nv; ++v) {
        std::vector<TrainItem> mine = items;
        if (v >= 2)
          for (TrainItem& it : mine) std::fill(it.shift_cat.begin(), it.shift_cat.end(), (v - 2) % C);
        const at::Tensor vec = v == 0 ? at::Tensor() : v < 2 + C ? V : rnd;
        const at::Tensor lp = batch_logits(data.base, rt, r, mine, cfg.basevec.layer, vec, {}, mlp).to(at::kFloat).log_softmax(1).cpu().gather(1, target).squeeze(1);
        for (size_t i = 0; i < flat.size(); ++i) {
          const int64_t lab = r.c_label[static_cast<size_t>(flat[i])];
          if (lab >= 0) sums[static_cast<size_t>(lab * W + v)] += lp[static_cast<int64_t>(i)].item<double>();
        }
      }
      for (int64_t i : flat) {
        const int64_t lab = r.c_label[static_cast<size_t>(i)];
        if (lab < 0) continue;
        sums[static_cast<size_t>(lab * W + nv)] += 1;
        sums[static_cast<size_t>(lab * W + nv + 1 + r.c_category[static_cast<size_t>(i)])] += 1;
      }
    }
    if (rt.world > 1) rt.world_comm.allreduce_sum(std::span<double>(sums));
    json out = json::object();
    for (int64_t l = 0; l < L; ++l) {
      const double n = sums[static_cast<size_t>(l * W + nv)];
      if (n == 0) continue;
      const auto at = [&](int64_t j) { return sums[static_cast<size_t>(l * W + j)] / n; };
      json forced = json::array(), random = json::array(), share = json::array();
      for (int64_t k = 0; k < C; ++k) forced.push_back(at(2 + k)), random.push_back(at(2 + C + k)), share.push_back(at(nv + 1 + k));
      out[r.labels[static_cast<size_t>(l)]] = {{"positions", static_cast<int64_t>(n)}, {"unsteered", at(0)}, {"own", at(1)}, {"forced", forced},
                                                {"random_forced", random}, {"category_share", share}};
    }
    return out;
  }
};

at::Tensor random_init(const Correction& k, int64_t C, int64_t d) {
  // A random direction per category, scaled to the mean residual norm at the steering layer over the
  // first training rollout's positions.
  at::NoGradGuard no_grad;
  const TrainItem it = k.item_of(k.train.front(), k.by_example[static_cast<size_t>(k.train.front())]);
  HookSet hooks(k.data.base.config.n_layer);
  hooks.record({HookSite::RESID_POST, k.cfg.basevec.layer});
  ForwardArgs a;
  const int64_t off = k.r.token_offset[static_cast<size_t>(it.example)];
  a.tokens = at::tensor(std::vector<int64_t>(k.r.tokens.begin() + off, k.r.tokens.begin() + off + it.len), at::kLong).unsqueeze(0).to(k.rt.device);
  a.positions = at::arange(it.len, at::kLong).unsqueeze(0).to(k.rt.device);
  a.hooks = &hooks;
  a.logits = LogitsMode::NONE;
  k.data.base.model->forward(a);
  const double norm = hooks.recorded({HookSite::RESID_POST, k.cfg.basevec.layer}).to(at::kFloat).norm(2, -1).mean().item<double>();
  return basevec::same_norm_random(at::full({C, d}, 1.0, at::kFloat), stream_seed(k.p.seed, "init")) * (norm / std::sqrt(static_cast<double>(d)));
}

}  // namespace

namespace {

// One correction training: the parameters, their optimizers, the best state and the progress (what the
// resumable state holds), and the steps of the loop.
struct CorrectionRun {
  const Correction& k;
  const std::filesystem::path& state;
  const std::string& hash;
  const Config::Basevec& o;
  at::Tensor V, bestV;
  basevec::CoefMlp mlp, best;
  AdamW vopt, mopt;
  json prog = {{"epoch", 0}, {"step", 0}, {"global", 0}, {"best", nullptr}, {"best_eval", -1}, {"bad", 0}, {"evals", 0}, {"finished", false},
               {"train_sum", 0.0}, {"train_n", 0}, {"curves", json::array()}};
  double train_seconds = 0;  // this process's optimizer loop, evaluations excluded (bench/bench_basevec.py reads it)
  int64_t train_positions = 0;

  CorrectionRun(const Correction& k_, const fs::path& state_, const std::string& hash_)
      : k(k_), state(state_), hash(hash_), o(k_.cfg.basevec), V(init_vectors()), mlp(init_mlp()), vopt({{"V", V}}), mopt(mlp.defined() ? mlp.named() : std::vector<std::pair<std::string, at::Tensor>>{}) {
    bestV = V.detach().clone();
    best = clone(mlp);
  }
  at::Tensor init_vectors() const {
    return (o.init == BasevecInit::random ? random_init(k, k.C, k.d) : at::zeros({k.C, k.d}, at::kFloat)).to(k.rt.device).set_requires_grad(true);
  }
  basevec::CoefMlp init_mlp() const {
    basevec::CoefMlp m;
    if (!o.mlp) return m;
    m = basevec::CoefMlp::init(k.d, o.mlp_hidden, k.C, stream_seed(k.p.seed, "mlp"));
    for (at::Tensor* x : {&m.w1, &m.b1, &m.w2, &m.b2}) *x = x->to(k.rt.device).set_requires_grad(true);
    return m;
  }
  static basevec::CoefMlp clone(const basevec::CoefMlp& m) {
    if (!m.defined()) return {};
    return {m.w1.detach().clone(), m.b1.detach().clone(), m.w2.detach().clone(), m.b2.detach().clone()};
  }

  // COLLECTIVE: continues from the saved state of this task, when there is one.
  void resume() {
    std::optional<TrainState> s = load_train_state(state, hash, k.rt);
    if (!s) return;
    prog = s->progress;
    std::map<std::string, at::Tensor> m(s->tensors.begin(), s->tensors.end());
    at::NoGradGuard ng;
    V.copy_(m.at("V")), bestV.copy_(m.at("best.V")), vopt.m[0].copy_(m.at("m.V")), vopt.v[0].copy_(m.at("v.V"));
    for (size_t i = 0; i < mopt.params.size(); ++i) {
      const std::string& n = mopt.params[i].first;
      mopt.params[i].second.copy_(m.at(n)), mopt.m[i].copy_(m.at("m." + n)), mopt.v[i].copy_(m.at("v." + n));
    }
    if (mlp.defined())
      best = {m.at("best.mlp.w1").to(k.rt.device), m.at("best.mlp.b1").to(k.rt.device), m.at("best.mlp.w2").to(k.rt.device), m.at("best.mlp.b2").to(k.rt.device)};
    if (k.rt.rank == 0)
      spdlog::info("basevec: task {} (correction seed {}) resumes at epoch {}, step {}", k.p.task, k.p.seed, prog["epoch"].get<int64_t>() + 1, prog["step"].get<int64_t>());
  }
  void save() const {
    if (k.rt.rank != 0) return;
    TrainState s;
    s.progress = prog;
    s.tensors = {{"V", V}, {"best.V", bestV}, {"m.V", vopt.m[0]}, {"v.V", vopt.v[0]}};
    for (size_t i = 0; i < mopt.params.size(); ++i)
      s.tensors.insert(s.tensors.end(), {{mopt.params[i].first, mopt.params[i].second}, {"m." + mopt.params[i].first, mopt.m[i]}, {"v." + mopt.params[i].first, mopt.v[i]}});
    for (const auto& [n, x] : best.named()) s.tensors.emplace_back("best." + n, x);
    save_train_state(state, s, hash);
  }

  // COLLECTIVE: one optimizer step on a batch (Adam's L2 weight decay, the MLP's gradient clipped).
  void step(const std::vector<TrainItem>& items, const std::vector<std::vector<int64_t>>& recs) {
    const auto started = std::chrono::steady_clock::now();
    auto [loss, n] = k.batch_loss(items, recs, V, mlp);
    if (n > 0) loss.backward();
    const std::vector<double> sums = allreduce_grads(k.rt, {&vopt, &mopt}, {loss.item<double>(), static_cast<double>(n)}, 1);
    {
      at::NoGradGuard ng;
      double sq = 0;  // clip_grad_norm_ on the MLP's gradient, then the optimizer's L2 term (torch.optim.Adam's order)
      for (auto& [name, x] : mopt.params) sq += x.grad().pow(2).sum().item<double>();
      if (o.grad_clip > 0 && std::sqrt(sq) > o.grad_clip)
        for (auto& [name, x] : mopt.params) x.mutable_grad().mul_(o.grad_clip / (std::sqrt(sq) + 1e-6));
      for (AdamW* opt : {&vopt, &mopt})
        for (auto& [name, x] : opt->params) x.mutable_grad().add_(x.detach(), o.weight_decay);  // torch.optim.Adam's weight_decay (L2)
    }
    const int64_t global = prog["global"];
    vopt.step({}, global, o.lr);
    if (!mopt.params.empty()) mopt.step({}, global, o.mlp_lr);
    vopt.zero_grad(), mopt.zero_grad();
    prog["global"] = global + 1;
    prog["train_sum"] = prog["train_sum"].get<double>() + sums[0], prog["train_n"] = prog["train_n"].get<int64_t>() + static_cast<int64_t>(sums[1]);
    train_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    train_positions += static_cast<int64_t>(sums[1]);
  }
  double train_mean() const { return prog["train_sum"].get<double>() / static_cast<double>(std::max<int64_t>(1, prog["train_n"].get<int64_t>())); }

  // COLLECTIVE: the holdout evaluation after step s (0-based) of n_steps in `epoch`: curve point, best state,
  // early stop, saved state. True when training is finished.
  bool evaluate_point(int64_t epoch, int64_t s, int64_t n_steps) {
    const json ev = k.evaluate(k.holdout.empty() ? k.train : k.holdout, V.detach(), mlp);
    const double kl = ev["kl"].is_null() ? NAN : ev["kl"].get<double>();
    const double train = train_mean();
    prog["curves"].push_back({prog["global"], static_cast<double>(epoch) + static_cast<double>(s + 1) / static_cast<double>(n_steps), train, kl});
    prog["train_sum"] = 0.0, prog["train_n"] = 0;
    const int64_t evals = prog["evals"].get<int64_t>() + 1;
    prog["evals"] = evals;
    if (prog["best"].is_null() || kl < prog["best"].get<double>()) {
      prog["best"] = kl, prog["best_eval"] = evals, prog["bad"] = 0;
      at::NoGradGuard ng;
      bestV = V.detach().clone();
      best = clone(mlp);
    } else {
      prog["bad"] = prog["bad"].get<int64_t>() + 1;
    }
    if (k.rt.rank == 0)
      spdlog::info("basevec: task {} (correction seed {}) epoch {:.2f} train {:.4f} holdout KL {:.4f} (best {:.4f} at evaluation {})", k.p.task, k.p.seed,
                   prog["curves"].back()[1].get<double>(), train, kl, prog["best"].get<double>(), prog["best_eval"].get<int64_t>());
    if (prog["bad"].get<int64_t>() >= o.patience || (s + 1 == n_steps && epoch + 1 >= o.epochs)) prog["finished"] = true;
    else if (s + 1 == n_steps) prog["epoch"] = epoch + 1, prog["step"] = 0;
    save();
    return prog["finished"].get<bool>();
  }

  // COLLECTIVE: epochs until done; a stop request ends it at an evaluation with exit 75.
  void train() {
    const auto started = std::chrono::steady_clock::now();
    auto last_log = started;
    while (!prog["finished"].get<bool>()) {
      const int64_t epoch = prog["epoch"];
      const Plan pl = k.plan(k.train, epoch, true);
      const auto n_steps = static_cast<int64_t>(pl.batches.size());
      for (int64_t s = prog["step"]; s < n_steps; ++s) {
        step(pl.batches[static_cast<size_t>(s)], pl.recs[static_cast<size_t>(s)]);
        prog["step"] = s + 1;
        const auto now = std::chrono::steady_clock::now();
        if (k.rt.rank == 0 && std::chrono::duration<double>(now - last_log).count() >= k.cfg.log.progress_seconds) {
          spdlog::info("basevec: task {} (correction seed {}) epoch {}/{} step {}/{} train loss {:.4f} | {:.1f} s", k.p.task, k.p.seed, epoch + 1, o.epochs, s + 1,
                       n_steps, train_mean(), std::chrono::duration<double>(now - started).count());
          last_log = now;
        }
        if (s + 1 != n_steps && ((s + 1) * o.evals_per_epoch) / n_steps == (s * o.evals_per_epoch) / n_steps) continue;
        if (evaluate_point(epoch, s, n_steps)) break;
        if (stop_agree(k.rt.world_comm) != 0)
          throw StopRequested("the correction training after evaluation " + std::to_string(prog["evals"].get<int64_t>()) + " in " + state.filename().string());
      }
    }
    if (k.rt.rank == 0)
      spdlog::info("basevec: correction training: {} steps in {:.3f} s, {} positions ({:.1f} positions/s; evaluations excluded)", prog["global"].get<int64_t>(),
                   train_seconds, train_positions, static_cast<double>(train_positions) / std::max(1e-9, train_seconds));
  }
};

// The final evaluation of the best state (docs/algorithms.md "thinksteer's base vectors").
json final_metrics(const Correction& k, const CorrectionRun& run, const at::Tensor& Vb, const json& skipped, int64_t positions) {
  const Config::Basevec& o = k.cfg.basevec;
  json m = {{"method", "correction"}, {"epochs", run.prog["epoch"].get<int64_t>() + 1}, {"steps", run.prog["global"]}, {"evaluations", run.prog["evals"]},
            {"best_evaluation", run.prog["best_eval"]}, {"train_positions", positions}, {"skipped", skipped}, {"loss", std::string(option_name(o.loss))},
            {"mlp", o.mlp}};
  for (const auto& [name, ex] : {std::pair<const char*, const std::vector<int64_t>*>{"holdout", &k.holdout}, {"selection", &k.selection}}) {
    if (ex->empty()) continue;
    json e = {{"steered", k.evaluate(*ex, Vb, run.best)}, {"unsteered", k.evaluate(*ex, {}, {})}};
    json randoms = json::array();
    for (int64_t j = 0; j < o.random_controls; ++j)
      randoms.push_back(k.evaluate(*ex, basevec::same_norm_random(Vb, stream_seed(k.p.seed, "random", j)).to(k.rt.device), run.best)["kl"]);
    e["random_kl"] = randoms;
    m[name] = e;
  }
  if (!k.r.labels.empty()) {
    std::vector<int64_t> held = k.holdout;
    held.insert(held.end(), k.selection.begin(), k.selection.end());
    m["by_label"] = k.by_label(held, Vb, run.best);
  }
  const char* sel = k.selection.empty() ? "holdout" : "selection";
  m["selection_metric"] = m.contains(sel) ? m[sel]["steered"]["kl"] : json(nullptr);
  m["selection_split"] = sel;
  return m;
}

}  // namespace

void train_correction(const Config& cfg, Runtime& rt, const BasevecPoint& p, const BasevecData& data, const fs::path& state, const std::string& hash,
                      artifacts::BasevecTask& t) {
  const Correction k(cfg, rt, p, data);
  if (k.train.empty()) throw InputError(data.records_file.string(), "/corrections", "no disagreement position in a training rollout (split 0)");
  const int64_t C = k.C, d = k.d;
  t.counts.assign(static_cast<size_t>(C), 0);
  for (int64_t e : k.train)
    for (int64_t i : k.by_example[static_cast<size_t>(e)]) ++t.counts[static_cast<size_t>(data.records.c_category[static_cast<size_t>(i)])];
  CorrectionRun run(k, state, hash);
  run.resume();
  run.train();
  t.vectors = tensor_values(run.bestV);
  if (run.best.defined()) {
    t.hidden = cfg.basevec.mlp_hidden;
    t.w1 = tensor_values(run.best.w1), t.b1 = tensor_values(run.best.b1), t.w2 = tensor_values(run.best.w2), t.b2 = tensor_values(run.best.b2);
  }
  json skipped = json::array();
  for (int64_t c = 0; c < C; ++c)
    if (t.counts[static_cast<size_t>(c)] == 0) {
      skipped.push_back("idx" + std::to_string(c));
      std::fill_n(t.vectors.begin() + c * d, d, 0.0f);
    }
  const at::Tensor Vb = at::from_blob(t.vectors.data(), {C, d}, at::kFloat).clone().to(rt.device);
  t.metrics = final_metrics(k, run, Vb, skipped, std::accumulate(t.counts.begin(), t.counts.end(), int64_t{0}));
  for (const json& c : run.prog["curves"]) {
    t.curve_step.push_back(c[0]), t.curve_epoch.push_back(c[1]), t.curve_phase.push_back(0), t.curve_train.push_back(c[2]);
    t.curve_holdout.push_back(c[3].is_null() ? NAN : c[3].get<double>());
  }
}

}  // namespace ts::stages
