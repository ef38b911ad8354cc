// One task of a taxonomy sweep (stages/taxonomy_sweep.h): a TopK SAE (docs/algorithms.md §B.4) or
// spherical k-means on one layer's sentence vectors, with the scores `reduce` summarises.
//   in : the sentences file (artifacts/sentences.h), the point (layer, K, method, seed), [taxonomy]
//   out: <run.dir>/taxonomy/tasks/<key>.h5 (+ .done; artifacts/taxonomy_task.h)
// SAE: every rank takes an even slice of each minibatch and the gradients are allreduced
// (taxonomy/topk_sae.h), so 1 and N ranks agree up to the order of sums. A progress line per epoch.
// After every epoch rank 0 saves the trainer's state (<key>.state.safetensors beside the task file);
// a stop request (SIGUSR1/SIGTERM/STOP) ends the task at the next epoch boundary with exit 75, and the
// rerun continues from the saved epoch with the same result as an uninterrupted run.
// k-means holds the layer's vectors in memory (taxonomy.memory_mb must allow it) and runs on rank 0.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <optional>

#include "artifacts/sentences.h"
#include "core/done_marker.h"
#include "core/error.h"
#include "core/log.h"
#include "dist/batch_loop.h"
#include "dist/stop.h"
#include "model/safetensors.h"
#include "model/weights.h"
#include "stages/stage.h"
#include "stages/taxonomy_sweep.h"
#include "taxonomy/scores.h"
#include "taxonomy/spherical_kmeans.h"
#include "taxonomy/topk_sae.h"

namespace ts::stages {
namespace fs = std::filesystem;
using taxonomy::TaxonomyPoint;

// --- the sentence vectors ------------------------------------------------------------------------

SentenceSet open_sentence_set(const Config& cfg) {
  SentenceSet s;
  s.file = cfg.taxonomy.sentences.empty() ? artifacts::SENTENCES_H5.in(cfg) : fs::path(cfg.taxonomy.sentences);
  const artifacts::SentencesMeta m = artifacts::read_sentences_meta(s.file, "taxonomy.sentences");
  s.layers = m.layers;
  s.n = m.n_sentences;
  s.d = m.d_model;
  s.hash = certified_content_hash(s.file);
  if (!m.labels.empty()) {
    std::map<std::string, int64_t> id;
    for (const std::string& l : m.labels) {
      if (l.empty()) {
        s.reference.push_back(-1);
        continue;
      }
      auto [it, fresh] = id.emplace(l, static_cast<int64_t>(s.reference_labels.size()));
      if (fresh) s.reference_labels.push_back(l);
      s.reference.push_back(it->second);
    }
  }
  return s;
}

LayerRows::LayerRows(const SentenceSet& set, int64_t layer, int64_t budget_bytes) : reader_(set.file, layer), n_(set.n), d_(set.d) {
  if (n_ * d_ * static_cast<int64_t>(sizeof(float)) <= budget_bytes) all_ = block(0, n_);
}

at::Tensor LayerRows::block(int64_t begin, int64_t count) const {
  if (all_.defined()) return all_.narrow(0, begin, count);
  std::vector<float> v = reader_.read(begin, count);
  return at::from_blob(v.data(), {count, d_}, at::kFloat).clone();
}

at::Tensor LayerRows::fetch(std::span<const int64_t> rows) const {
  const auto n = static_cast<int64_t>(rows.size());
  if (all_.defined()) return all_.index_select(0, at::from_blob(const_cast<int64_t*>(rows.data()), {n}, at::kLong));
  at::Tensor out = at::empty({n, d_}, at::kFloat);
  const std::vector<int64_t> sorted(rows.begin(), rows.end());
  int64_t at = 0;
  for (const h5::RowRange& r : artifacts::row_ranges(sorted)) {
    out.narrow(0, at, r.count).copy_(block(r.begin, r.count));
    at += r.count;
  }
  return out;
}

std::string taxonomy_task_hash(const Config& cfg, const TaxonomyPoint& p, const SentenceSet& set) {
  Config c = cfg;  // the axes, the budget and the options of `titles` do not decide a task's result
  c.taxonomy.layers.clear(), c.taxonomy.clusters.clear(), c.taxonomy.methods.clear(), c.taxonomy.seeds.clear();
  c.taxonomy.memory_mb = 0;
  c.taxonomy.titles.clear(), c.taxonomy.title_examples = 0, c.taxonomy.title_words = 0;
  c.taxonomy.sentences.clear();
  json point = p.to_json();
  point.erase("task");
  return artifacts::output_config_hash(c, {"taxonomy"}, point.dump() + "\nsentences=" + set.hash);
}

namespace {

// --- scores --------------------------------------------------------------------------------------

// Centroid orthogonality (§B.6): mean over pairs i < j of 1 − |cos(c_i, c_j)| of unit rows.
double orthogonality(const at::Tensor& centres) {
  const at::Tensor c = centres / centres.norm(2, 1, true).clamp_min(1e-12);
  const at::Tensor cos = c.matmul(c.t()).abs();
  const int64_t k = c.size(0);
  return k < 2 ? 1.0 : 1.0 - (cos.sum().item<double>() - cos.diagonal().sum().item<double>()) / static_cast<double>(k * (k - 1));
}

// What a task records besides its parameters: assignments, sizes, FVU over all rows, orthogonality and
// the agreement with the reference labels. `recon_sq(x, assign)` gives each row's squared
// reconstruction error.
void score(artifacts::TaxonomyTask& t, const LayerRows& rows, const SentenceSet& set, const at::Tensor& centres,
           const std::function<at::Tensor(const at::Tensor&)>& assign_of, const std::function<at::Tensor(const at::Tensor&, const at::Tensor&)>& err_of) {
  constexpr int64_t kChunk = 8192;
  t.assign.assign(static_cast<size_t>(rows.n()), 0);
  at::Tensor sum = at::zeros({rows.d()}, at::kDouble);
  double sq = 0, err = 0;
  for (int64_t b = 0; b < rows.n(); b += kChunk) {
    const at::Tensor x = rows.block(b, std::min(kChunk, rows.n() - b));
    const at::Tensor a = assign_of(x).to(at::kLong).contiguous();
    std::copy_n(a.data_ptr<int64_t>(), a.numel(), t.assign.begin() + b);
    err += err_of(x, a).to(at::kDouble).sum().item<double>();
    sum += x.to(at::kDouble).sum(0);
    sq += x.to(at::kDouble).pow(2).sum().item<double>();
  }
  const double total = sq - sum.pow(2).sum().item<double>() / static_cast<double>(rows.n());  // Σ‖x − mean‖²
  t.sizes.assign(static_cast<size_t>(t.k), 0);
  for (int64_t a : t.assign) ++t.sizes[static_cast<size_t>(a)];
  const at::Tensor c = centres.contiguous();
  t.centres.assign(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  t.metrics["fvu"] = total > 0 ? err / total : NAN;
  t.metrics["orthogonality"] = orthogonality(centres);
  t.metrics["dead"] = static_cast<int64_t>(std::count(t.sizes.begin(), t.sizes.end(), 0));
  if (t.metrics["dead"].get<int64_t>() > 0)
    spdlog::warn("taxonomy: {} of {} clusters are empty (dead: no sentence's argmax); kept as they are: metrics.dead counts them, `titles` "
                 "names them \"dead latent j\" (docs/algorithms.md §B.4)",
                 t.metrics["dead"].get<int64_t>(), t.k);
  if (set.reference.empty()) return;
  std::vector<int64_t> clusters, labels;
  for (size_t i = 0; i < set.reference.size(); ++i)
    if (set.reference[i] >= 0) clusters.push_back(t.assign[i]), labels.push_back(set.reference[i]);
  if (labels.empty()) return;
  const taxonomy::Contingency table = taxonomy::contingency(clusters, labels);
  t.metrics["nmi"] = taxonomy::normalized_mutual_info(table);
  t.metrics["ari"] = taxonomy::adjusted_rand_index(table);
  t.metrics["majority"] = taxonomy::majority_accuracy(table);
  t.metrics["matched"] = taxonomy::matched_accuracy(table);
}

std::vector<float> values(const at::Tensor& t) {
  const at::Tensor c = t.detach().to(at::kFloat).contiguous();
  return {c.data_ptr<float>(), c.data_ptr<float>() + c.numel()};
}

// --- the SAE -------------------------------------------------------------------------------------

DType st_dtype(const at::Tensor& t) {
  return t.scalar_type() == at::kLong ? DType::I64 : t.scalar_type() == at::kDouble ? DType::F64 : DType::F32;
}

void save_state(const fs::path& file, const taxonomy::SaeTrainer& tr, const std::string& hash) {
  std::vector<at::Tensor> keep;
  std::vector<TensorBytes> tensors;
  const auto named = tr.state_tensors();
  keep.reserve(named.size());
  for (const auto& [name, t] : named) {
    keep.push_back(t.detach().contiguous());
    tensors.push_back({name, st_dtype(keep.back()), keep.back().sizes().vec(),
                       {reinterpret_cast<const std::byte*>(keep.back().data_ptr()), static_cast<size_t>(keep.back().nbytes())}});
  }
  const fs::path tmp = file.string() + ".tmp";
  safetensors_write(tmp, tensors, {{"config_sha256", hash}});
  fs::rename(tmp, file);
}

// Restores a state saved for this task; false (and a warning) when there is none usable.
bool load_state(const fs::path& file, taxonomy::SaeTrainer& tr, const std::string& hash) {
  if (!fs::exists(file)) return false;
  try {
    SafetensorsFile f(file);
    const auto& meta = f.header().metadata;
    if (!meta.count("config_sha256") || meta.at("config_sha256") != hash) {
      spdlog::warn("taxonomy: {} was saved for another task or config; starting over", file.string());
      return false;
    }
    tr.load_state_tensors([&](const std::string& name) {
      const TensorInfo* info = f.find(name);
      if (info == nullptr) throw InputError(file.string(), name, "missing");
      return tensor_from_safetensors(*info, f.bytes(*info));
    });
    return true;
  } catch (const std::exception& e) {
    spdlog::warn("taxonomy: cannot resume from {} ({}); starting over", file.string(), e.what());
    return false;
  }
}

// COLLECTIVE: the SAE's training (resumable), its epoch losses and parameters into t; the best state.
taxonomy::TopkSae train_sae(const Config& cfg, Runtime& rt, const TaxonomyPoint& p, const LayerRows& rows, const fs::path& state, const std::string& hash,
                            artifacts::TaxonomyTask& t) {
  const Config::Taxonomy& o = cfg.taxonomy;
  if (o.topk > p.k) throw InputError("[taxonomy]", "taxonomy.topk", std::to_string(o.topk) + " exceeds K = " + std::to_string(p.k));
  const taxonomy::SaeTrainOptions opt{o.batch_size, o.max_epochs, o.patience, o.lr, static_cast<uint64_t>(p.seed)};
  taxonomy::AllreduceSum sum;
  if (rt.world > 1) sum = [&rt](std::span<float> v) { rt.world_comm.allreduce_sum(v); };
  taxonomy::SaeTrainer tr(taxonomy::topk_sae_init(rows.d(), p.k, o.topk, static_cast<uint64_t>(p.seed)), rows.n(), opt,
                          [&rows](std::span<const int64_t> r) { return rows.fetch(r); }, rt.rank, rt.world, sum);
  // Every rank reads the same file; agree anyway (a rank that could not read it would diverge).
  const int64_t resumed = load_state(state, tr, hash) ? tr.epoch() : 0;
  if (rt.world_comm.allreduce_min(resumed) != rt.world_comm.allreduce_max(resumed))
    throw std::runtime_error("taxonomy: ranks disagree about the resumable state in " + state.string());
  if (resumed > 0 && rt.rank == 0) spdlog::info("taxonomy: task {} ({}) resumes after epoch {}", p.task, p.label(), resumed);
  while (!tr.done()) {
    const auto start = std::chrono::steady_clock::now();
    const taxonomy::SaeEpoch e = tr.run_epoch();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (rt.rank == 0) {
      spdlog::info("taxonomy: task {} ({}) epoch {}/{} loss {:.5f} best {:.5f} (epoch {}) | {:.2f} s/epoch, {} rows{}", p.task, p.label(), e.epoch + 1,
                   o.max_epochs, e.loss, e.best_loss, tr.best_epoch() + 1, s, rows.n(), rows.in_memory() ? "" : " streamed from the file");
      save_state(state, tr, hash);
    }
    if (stop_agree(rt.world_comm) != 0 && !tr.done())
      throw StopRequested("the SAE state after epoch " + std::to_string(e.epoch + 1) + " in " + state.filename().string());
  }
  const taxonomy::TopkSae& best = tr.best();
  t.loss = tr.epoch_losses();
  t.w_enc = values(best.w_enc), t.b_enc = values(best.b_enc), t.w_dec = values(best.w_dec), t.b_dec = values(best.b_dec);
  t.metrics["epochs"] = tr.epoch();
  t.metrics["best_epoch"] = tr.best_epoch();
  t.metrics["steps"] = tr.steps();
  return best.clone();
}

// The SAE's scores: clusters by the argmax of the encoder output, the reconstruction from the top-k latents.
void score_sae(artifacts::TaxonomyTask& t, const taxonomy::TopkSae& best, const SentenceSet& set, const LayerRows& rows) {
  at::NoGradGuard no_grad;
  const at::Tensor centres = best.w_dec / best.w_dec.norm(2, 1, true).clamp_min(1e-12);
  score(t, rows, set, centres, [&](const at::Tensor& x) { return best.assign(x); },
        [&](const at::Tensor& x, const at::Tensor&) {
          const at::Tensor a = best.encode(x);
          const auto [v, idx] = a.topk(best.top_k, 1);
          const at::Tensor xhat = at::zeros_like(a).scatter(1, idx, v).matmul(best.w_dec) + best.b_dec;
          return (xhat - x).pow(2).sum(1);
        });
}

// --- k-means -------------------------------------------------------------------------------------

void run_kmeans(const Config& cfg, const TaxonomyPoint& p, const SentenceSet& set, const LayerRows& rows, artifacts::TaxonomyTask& t) {
  if (!rows.in_memory())
    throw InputError("[taxonomy]", "taxonomy.memory_mb",
                     "k-means holds the layer's vectors in memory: " + std::to_string(rows.n() * rows.d() * 4 >> 20) + " MB do not fit " +
                         std::to_string(cfg.taxonomy.memory_mb) + " MB (raise it, or use method sae, which streams)");
  const at::Tensor x = rows.block(0, rows.n());
  const taxonomy::KMeansResult r = taxonomy::spherical_kmeans(x, p.k, static_cast<uint64_t>(p.seed), cfg.taxonomy.kmeans_inits, cfg.taxonomy.kmeans_iters);
  t.loss = {r.objective / static_cast<double>(rows.n())};
  score(t, rows, set, r.centres, [&](const at::Tensor& xb) { return xb.matmul(r.centres.t()).argmax(1); },
        [&](const at::Tensor& xb, const at::Tensor& a) {  // the projection onto the assigned centre: ‖x‖² − cos²
          const at::Tensor cos = (xb * r.centres.index_select(0, a)).sum(1);
          return xb.pow(2).sum(1) - cos.pow(2);
        });
  t.metrics["objective"] = r.objective;
  t.metrics["iterations"] = r.iterations;
  t.metrics["reseeded"] = r.reseeded;
  t.metrics["converged"] = r.converged;
}

}  // namespace

bool run_taxonomy_task(const Config& cfg, Runtime& rt, const TaxonomyPoint& p, const SentenceSet& set) {
  const fs::path file = artifacts::TAXONOMY_SWEEP.task(cfg, p.key);
  const std::string hash = taxonomy_task_hash(cfg, p, set);
  StageOutput out(cfg, rt, "sweep run", file, hash);
  if (out.complete()) return false;
  if (std::find(set.layers.begin(), set.layers.end(), p.layer) == set.layers.end())
    throw InputError(set.file.string(), "layers", "holds no layer " + std::to_string(p.layer) + " (taxonomy.layers)");
  if (p.k > set.n) throw InputError(set.file.string(), "n_sentences", std::to_string(set.n) + " sentences are fewer than K = " + std::to_string(p.k));
  out.begin();
  const LayerRows rows(set, p.layer, cfg.taxonomy.memory_mb << 20);
  if (rt.rank == 0)
    spdlog::info("taxonomy: task {} ({}): {} sentences x {} of layer {}{}", p.task, p.label(), rows.n(), rows.d(), p.layer,
                 rows.in_memory() ? " in memory" : ", streamed from the file (over taxonomy.memory_mb)");
  artifacts::TaxonomyTask t;
  t.n = rows.n(), t.k = p.k, t.d = rows.d();
  t.sentences_file = set.file.string(), t.sentences_hash = set.hash;
  const fs::path state = file.string() + ".state.safetensors";
  std::optional<taxonomy::TopkSae> sae;
  if (p.method == "sae") {
    ResumablePhase resumable;
    sae = train_sae(cfg, rt, p, rows, state, hash, t);
  }
  on_rank0(rt, [&] {
    if (sae) score_sae(t, *sae, set, rows);
    else run_kmeans(cfg, p, set, rows, t);
    const json prov = artifacts::stage_provenance(cfg, rt, "sweep run", hash, {});
    artifacts::write_taxonomy_task(out.partial(), t, p, prov);
    out.commit_h5(prov, artifacts::TAXONOMY_TASK, artifacts::taxonomy_task_datasets(t.n, t.k, t.d, static_cast<int64_t>(t.loss.size()), p.method == "sae"),
                  {.provenance_json = false, .resolved_config = false, .certified = {}});
    fs::remove(state);
    spdlog::info("taxonomy: task {} ({}) written to {}: {}", p.task, p.label(), file.string(), t.metrics.dump());
  });
  return true;
}

}  // namespace ts::stages
