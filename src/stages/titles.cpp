// Stage `titles`: names the clusters of finished taxonomy tasks (docs/algorithms.md §B.5, "Offline
// titles") and exports each SAE SAELens-style (artifacts/taxonomy_export.h).
//   in : the taxonomy sweep's manifest and finished task files; its summary when taxonomy.titles =
//        selected (every seed of the (layer, K, method) reduce chose); the sentences file
//   out: <run.dir>/titles/<key>/ per task (titles.json; for an SAE cfg.json, sae_weights.safetensors,
//        centering.safetensors) and <run.dir>/titles/index.json, certified by its .done marker
// Rank 0 does the work (a pass over one layer's vectors per task, streamed in blocks); the other ranks
// wait. A rerun with the same tasks and options does nothing.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

#include "artifacts/taxonomy_export.h"
#include "artifacts/taxonomy_judge.h"
#include "artifacts/taxonomy_summary.h"
#include "core/done_marker.h"
#include "core/sha256.h"
#include "core/error.h"
#include "core/atomic_file.h"
#include "dist/batch_loop.h"
#include "io/vectors.h"  // hook_at
#include "stages/stage.h"
#include "stages/taxonomy_judge.h"
#include "stages/taxonomy_sweep.h"
#include "taxonomy/titles.h"

namespace ts::stages::titles {
namespace fs = std::filesystem;
using taxonomy::TaxonomyPoint;

namespace {

// The finished tasks taxonomy.titles names, in manifest order, with their task hashes.
std::vector<std::pair<TaxonomyPoint, std::string>> chosen_tasks(const Config& cfg, const SentenceSet& set) {
  const artifacts::SweepLayout& layout = artifacts::TAXONOMY_SWEEP;
  const std::vector<json> rows = artifacts::read_sweep_manifest_rows(cfg, layout);
  const std::vector<std::string>& want = cfg.taxonomy.titles;
  const bool selected = want.size() == 1 && want.front() == "selected", all = want.size() == 1 && want.front() == "all";
  int64_t layer = -1, k = -1;
  std::string method;
  if (selected) {
    const artifacts::TaxonomySummary s = artifacts::read_taxonomy_summary(layout.root(cfg) / "summary.h5");
    if (s.selected < 0) throw InputError((layout.root(cfg) / "summary.h5").string(), "selected_layer", "reduce chose no group; name tasks in taxonomy.titles");
    const auto g = static_cast<size_t>(s.selected);
    layer = s.layer[g], k = s.k[g], method = s.method[g];
  }
  std::vector<std::pair<TaxonomyPoint, std::string>> out;
  std::vector<std::string> found;
  for (size_t i = 0; i < rows.size(); ++i) {
    const TaxonomyPoint p = TaxonomyPoint::from_json(rows[i], layout.manifest(cfg).string() + ":" + std::to_string(i + 1));
    const bool named = std::find(want.begin(), want.end(), p.key) != want.end();
    if (!(all || named || (selected && p.layer == layer && p.k == k && p.method == method))) continue;
    const std::string hash = taxonomy_task_hash(cfg, p, set);
    const fs::path file = layout.task(cfg, p.key);
    if (!done_marker_matches(file, hash)) {
      if (all) continue;  // `all`: the finished ones
      throw InputError(file.string(), "taxonomy.titles", "task " + p.label() + " is not finished: run the taxonomy sweep first");
    }
    out.emplace_back(p, hash);
    found.push_back(p.key);
  }
  for (const std::string& w : want)
    if (w != "selected" && w != "all" && std::find(found.begin(), found.end(), w) == found.end())
      throw InputError("[taxonomy]", "taxonomy.titles", "'" + w + "' is not a task key of " + layout.manifest(cfg).string());
  if (out.empty()) throw InputError(layout.manifest(cfg).string(), "taxonomy.titles", "no finished task to title");
  return out;
}

std::string describe(int64_t size, int64_t n, const std::vector<taxonomy::Term>& terms) {
  char head[96];
  std::snprintf(head, sizeof head, "%lld sentences (%.1f%%)", static_cast<long long>(size), n > 0 ? 100.0 * static_cast<double>(size) / static_cast<double>(n) : 0.0);
  if (size == 0) return std::string(head) + "; a dead latent: no sentence's largest activation (docs/algorithms.md §B.4)";
  if (terms.empty()) return std::string(head) + "; no word sets them apart from the other clusters";
  std::string s = std::string(head) + "; most distinctive against the other clusters (log-odds z):";
  for (size_t i = 0; i < terms.size(); ++i) {
    char z[32];
    std::snprintf(z, sizeof z, " (%.1f)", terms[i].z);
    s += (i ? ", " : " ") + terms[i].text + z;
  }
  return s;
}

// The LLM judge's titles of the task's first repetition (stages/taxonomy_judge.h), where `reduce` judged
// it: they replace the offline title and description of each cluster the judge titled.
void use_judge_titles(const Config& cfg, const TaxonomyPoint& p, const std::string& task_hash, artifacts::TitleSet& ts) {
  if (cfg.taxonomy.judge != TaxonomyJudge::llm) return;
  const fs::path file = artifacts::judge_record_path(cfg, p.key);
  const std::optional<json> record = artifacts::read_judge_record(file, task_hash);
  if (!record) return;
  const auto titles = artifacts::judge_record_titles(*record, file.string());
  for (size_t c = 0; c < ts.clusters.size() && c < titles.size(); ++c) {
    if (!titles[c]) continue;
    ts.clusters[c].title = titles[c]->title;
    ts.clusters[c].description = titles[c]->description;
  }
  ts.source = "llm";
}

artifacts::TitleSet title_task(const Config& cfg, const SentenceSet& set, const std::vector<std::string>& texts, const TaxonomyPoint& p,
                               const artifacts::TaxonomyTask& t, const std::string& hook, const std::string& task_hash) {
  const std::vector<double> dist = cluster_distances(set, p.layer, t, cfg.taxonomy.memory_mb << 20);
  const auto terms = taxonomy::distinctive_terms(texts, t.assign, t.k, cfg.taxonomy.title_words);
  artifacts::TitleSet ts{p.key, p.method, "offline", hook, p.layer, p.k, p.seed, {}};
  const int64_t n_close = (cfg.taxonomy.title_examples + 1) / 2, n_random = cfg.taxonomy.title_examples / 2;
  for (int64_t c = 0; c < t.k; ++c) {
    const auto& tc = terms[static_cast<size_t>(c)];
    artifacts::ClusterTitle ct;
    ct.index = c;
    ct.size = t.sizes[static_cast<size_t>(c)];
    ct.title = ct.size == 0 ? "dead latent " + std::to_string(c) : taxonomy::offline_title(tc, "cluster " + std::to_string(c));
    ct.description = describe(ct.size, t.n, tc);
    for (const taxonomy::Term& term : tc) ct.words.push_back(term.text);
    const taxonomy::Representatives r = taxonomy::representative_rows(dist, t.assign, c, n_close, n_random, static_cast<uint64_t>(p.seed) * 1000003u + static_cast<uint64_t>(c));
    for (int64_t i : r.closest) ct.examples.push_back(texts[static_cast<size_t>(i)]);
    for (int64_t i : r.random) ct.random.push_back(texts[static_cast<size_t>(i)]);
    ts.clusters.push_back(std::move(ct));
  }
  use_judge_titles(cfg, p, task_hash, ts);
  return ts;
}

artifacts::SaeExport sae_export(const SentenceSet& set, const artifacts::SentencesMeta& meta, const TaxonomyPoint& p, const artifacts::TaxonomyTask& t,
                                const std::string& hook, int64_t top_k) {
  artifacts::SaeExport e;
  e.d_in = t.d, e.d_sae = t.k, e.top_k = top_k, e.layer = p.layer;
  e.hook_name = hook, e.model_name = fs::path(meta.model_path).filename().string(), e.key = p.key;
  e.w_enc = t.w_enc, e.b_enc = t.b_enc, e.w_dec = t.w_dec, e.b_dec = t.b_dec;
  e.mean = artifacts::read_sentence_mean(set.file, p.layer);
  e.provenance = {{"seed", p.seed}, {"model_path", meta.model_path}, {"sentences_file", set.file.string()}, {"sentences_hash", set.hash},
                  {"task_config_sha256", t.config_sha256}, {"metrics", t.metrics}};
  return e;
}

}  // namespace

void run(const Config& cfg, Runtime& rt) {
  SentenceSet set;
  std::vector<std::pair<TaxonomyPoint, std::string>> tasks;
  std::string hash, keys;
  on_rank0(rt, [&] {
    set = open_sentence_set(cfg);
    tasks = chosen_tasks(cfg, set);
    std::string inputs = set.hash;
    for (const auto& [p, task_hash] : tasks) {
      inputs += "\n" + p.key + " " + task_hash, keys += p.key + "\n";
      const fs::path judged = artifacts::judge_record_path(cfg, p.key);
      if (cfg.taxonomy.judge == TaxonomyJudge::llm && fs::exists(judged)) inputs += " judge " + sha256_hex(read_file(judged));
    }
    hash = artifacts::output_config_hash(cfg, {"taxonomy"}, inputs);
  });
  rt.world_comm.bcast(hash, 0);
  rt.world_comm.bcast(keys, 0);
  std::vector<fs::path> dirs;
  for (size_t at = 0, next; (next = keys.find('\n', at)) != std::string::npos; at = next + 1)
    dirs.push_back(artifacts::export_dir(cfg.run.dir, keys.substr(at, next - at)));
  StageOutput out(cfg, rt, "titles", artifacts::titles_root(cfg.run.dir) / "index.json", hash);
  if (out.complete(dirs)) return;
  out.begin();
  on_rank0(rt, [&] {
    const artifacts::SentencesMeta meta = artifacts::read_sentences_meta(set.file, "taxonomy.sentences");
    const std::vector<std::string> texts = artifacts::read_sentence_texts(set.file);
    json index = json::array();
    for (const auto& [p, task_hash] : tasks) {
      const fs::path file = artifacts::TAXONOMY_SWEEP.task(cfg, p.key);
      const artifacts::TaxonomyTask t = artifacts::read_taxonomy_task(file);
      artifacts::check_taxonomy_task(file, t, p, task_hash);
      const std::string hook = hook_at(meta.hook, p.layer);
      const artifacts::TitleSet ts = title_task(cfg, set, texts, p, t, hook, task_hash);
      const bool sae = !t.w_enc.empty();
      const artifacts::SaeExport e = sae ? sae_export(set, meta, p, t, hook, cfg.taxonomy.topk) : artifacts::SaeExport{};
      artifacts::write_export_dir(artifacts::export_dir(cfg.run.dir, p.key), ts, sae ? &e : nullptr);
      index.push_back({{"key", p.key}, {"dir", p.key}, {"layer", p.layer}, {"k", p.k}, {"method", p.method}, {"seed", p.seed}, {"saelens", sae}});
      spdlog::info("titles: {} ({} sentences) -> {}", p.label(), t.n, artifacts::export_dir(cfg.run.dir, p.key).string());
      for (const artifacts::ClusterTitle& c : ts.clusters) spdlog::info("  cluster {:>2} {:>7}  {}", c.index, c.size, c.title);
    }
    write_file_atomic(out.path(), json{{"format", artifacts::TITLES_INDEX_FORMAT}, {"version", 1}, {"tasks", index}}.dump(2) + "\n");
    out.commit_file(out.provenance(), {.provenance_json = true, .resolved_config = false, .certified = {}});
  });
}

}  // namespace ts::stages::titles
