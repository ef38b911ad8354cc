#include "stages/taxonomy_judge.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "artifacts/sentences.h"
#include "artifacts/taxonomy_judge.h"
#include "core/atomic_file.h"
#include "core/splitmix.h"
#include "taxonomy/judge.h"
#include "taxonomy/titles.h"

namespace ts::stages {
namespace fs = std::filesystem;
using taxonomy::TaxonomyPoint;

JudgeData load_judge_data(const SentenceSet& set) {
  const artifacts::SentenceIndex index = artifacts::read_sentence_index(set.file);
  JudgeData d;
  d.texts = index.text;
  std::map<int64_t, size_t> slot;
  for (int64_t i = 0; i < index.size(); ++i) {
    const auto [it, fresh] = slot.emplace(index.trace[static_cast<size_t>(i)], d.traces.size());
    if (fresh) d.traces.emplace_back();
    std::string& trace = d.traces[it->second];
    trace += (trace.empty() ? "" : " ") + index.text[static_cast<size_t>(i)];
    d.trace.push_back(static_cast<int64_t>(it->second));
  }
  return d;
}

std::vector<double> cluster_distances(const SentenceSet& set, int64_t layer, const artifacts::TaxonomyTask& t, int64_t budget_bytes) {
  const LayerRows rows(set, layer, budget_bytes);
  const at::Tensor centres = at::from_blob(const_cast<float*>(t.centres.data()), {t.k, t.d}, at::kFloat);
  const at::Tensor assign = at::from_blob(const_cast<int64_t*>(t.assign.data()), {t.n}, at::kLong);
  std::vector<double> dist(static_cast<size_t>(t.n));
  for (int64_t b = 0; b < t.n; b += 4096) {
    const int64_t count = std::min<int64_t>(4096, t.n - b);
    const at::Tensor x = rows.block(b, count).to(at::kDouble);
    const at::Tensor c = centres.index_select(0, assign.narrow(0, b, count)).to(at::kDouble);
    const at::Tensor d2 = (x - c).pow(2).sum(1).contiguous();
    std::copy_n(d2.data_ptr<double>(), count, dist.begin() + b);
  }
  return dist;
}

namespace {

std::vector<std::string> texts_of(const JudgeData& d, const std::vector<int64_t>& rows) {
  std::vector<std::string> out;
  for (int64_t r : rows) out.push_back(d.texts[static_cast<size_t>(r)]);
  return out;
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  int64_t n = 0;
  for (double x : v)
    if (std::isfinite(x)) s += x, ++n;
  return n > 0 ? s / static_cast<double>(n) : NAN;
}

json number_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

struct Repetition {
  std::vector<std::optional<taxonomy::TitleReply>> titles;
  std::vector<double> f1;
  double avg_f1 = NAN, avg_confidence = NAN;
  int64_t failed = 0;
};

// §B.5: one title prompt per live cluster.
void ask_titles(const Config& cfg, const LlmBackend& backend, const JudgeData& d, const artifacts::TaxonomyTask& t, const std::vector<double>& dist,
                uint64_t seed, Repetition& rep) {
  std::vector<std::string> prompts;
  std::vector<int64_t> asked;
  std::vector<int64_t> all_traces(d.traces.size());
  for (size_t i = 0; i < all_traces.size(); ++i) all_traces[i] = static_cast<int64_t>(i);
  for (int64_t c = 0; c < t.k; ++c) {
    if (t.sizes[static_cast<size_t>(c)] == 0) continue;
    const uint64_t s = splitmix64(seed ^ splitmix64(static_cast<uint64_t>(c) + 1));
    const auto r = taxonomy::representative_rows(dist, t.assign, c, (cfg.taxonomy.title_examples + 1) / 2, cfg.taxonomy.title_examples / 2, s);
    std::vector<int64_t> rows = r.closest;
    rows.insert(rows.end(), r.random.begin(), r.random.end());
    rows = taxonomy::seeded_sample(rows, rows.size(), s + 1);  // shuffled, as §B.5 shows them
    std::vector<std::string> traces;
    for (int64_t tr : taxonomy::seeded_sample(all_traces, static_cast<size_t>(cfg.taxonomy.judge_traces), s + 2)) traces.push_back(d.traces[static_cast<size_t>(tr)]);
    prompts.push_back(taxonomy::title_prompt(texts_of(d, rows), traces));
    asked.push_back(c);
  }
  rep.titles.assign(static_cast<size_t>(t.k), std::nullopt);
  const std::vector<LlmReply> replies = backend.complete(prompts);
  for (size_t i = 0; i < asked.size(); ++i) {
    rep.titles[static_cast<size_t>(asked[i])] = replies[i].ok ? taxonomy::parse_title_reply(replies[i].text) : std::nullopt;
    rep.failed += !rep.titles[static_cast<size_t>(asked[i])].has_value();
  }
}

// §B.6 accuracy autograder: per titled cluster 20% of judge_autograder sentences from it, the rest from
// the others, in chunks of at most 50; F1 of the verdicts against membership.
void grade(const Config& cfg, const LlmBackend& backend, const JudgeData& d, const artifacts::TaxonomyTask& t, uint64_t seed, Repetition& rep) {
  struct Chunk {
    int64_t cluster;
    std::vector<int64_t> rows;
  };
  std::vector<Chunk> chunks;
  std::vector<std::string> prompts;
  const auto n = static_cast<size_t>(cfg.taxonomy.judge_autograder);
  for (int64_t c = 0; c < t.k; ++c) {
    const auto& title = rep.titles[static_cast<size_t>(c)];
    if (!title) continue;
    std::vector<int64_t> in, out;
    for (int64_t i = 0; i < t.n; ++i) (t.assign[static_cast<size_t>(i)] == c ? in : out).push_back(i);
    const uint64_t s = splitmix64(seed ^ splitmix64(static_cast<uint64_t>(c) + 101));
    std::vector<int64_t> rows = taxonomy::seeded_sample(in, (n + 4) / 5, s);
    const std::vector<int64_t> others = taxonomy::seeded_sample(out, n - rows.size(), s + 1);
    rows.insert(rows.end(), others.begin(), others.end());
    rows = taxonomy::seeded_sample(rows, rows.size(), s + 2);
    for (size_t b = 0; b < rows.size(); b += 50) {
      Chunk ch{c, std::vector<int64_t>(rows.begin() + static_cast<std::ptrdiff_t>(b), rows.begin() + static_cast<std::ptrdiff_t>(std::min(rows.size(), b + 50)))};
      prompts.push_back(taxonomy::autograder_prompt(title->title, title->description, texts_of(d, ch.rows)));
      chunks.push_back(std::move(ch));
    }
  }
  const std::vector<LlmReply> replies = backend.complete(prompts);
  std::map<int64_t, std::pair<std::vector<bool>, std::vector<bool>>> graded;  // cluster -> (truth, verdict)
  std::map<int64_t, bool> broken;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const auto v = replies[i].ok ? taxonomy::parse_autograder_reply(replies[i].text, chunks[i].rows.size()) : std::nullopt;
    if (!v) {
      broken[chunks[i].cluster] = true, ++rep.failed;
      continue;
    }
    auto& [truth, verdict] = graded[chunks[i].cluster];
    for (size_t j = 0; j < chunks[i].rows.size(); ++j)
      truth.push_back(t.assign[static_cast<size_t>(chunks[i].rows[j])] == chunks[i].cluster), verdict.push_back((*v)[j]);
  }
  rep.f1.assign(static_cast<size_t>(t.k), NAN);
  for (const auto& [c, tv] : graded)
    if (!broken.count(c)) rep.f1[static_cast<size_t>(c)] = taxonomy::f1_score(tv.first, tv.second);
  rep.avg_f1 = mean_of(rep.f1);
}

// §B.6 completeness: judge_completeness sentences of titled clusters, each rated 0-10 against its own.
void rate(const Config& cfg, const LlmBackend& backend, const JudgeData& d, const artifacts::TaxonomyTask& t, uint64_t seed, Repetition& rep) {
  std::vector<int64_t> pool;
  for (int64_t i = 0; i < t.n; ++i)
    if (rep.titles[static_cast<size_t>(t.assign[static_cast<size_t>(i)])]) pool.push_back(i);
  const std::vector<int64_t> rows = taxonomy::seeded_sample(pool, static_cast<size_t>(cfg.taxonomy.judge_completeness), splitmix64(seed ^ 0x636f6d70ull));
  std::vector<std::string> prompts;
  for (int64_t r : rows) {
    const auto& title = *rep.titles[static_cast<size_t>(t.assign[static_cast<size_t>(r)])];
    prompts.push_back(taxonomy::completeness_prompt(title.title, title.description, d.texts[static_cast<size_t>(r)]));
  }
  std::vector<double> scores;
  for (const LlmReply& reply : backend.complete(prompts)) {
    const auto v = reply.ok ? taxonomy::parse_completeness_reply(reply.text) : std::nullopt;
    if (v) scores.push_back(*v / 10.0);
    else ++rep.failed;
  }
  rep.avg_confidence = mean_of(scores);
}

json options_of(const Config& cfg) {
  return {{"repetitions", cfg.taxonomy.judge_repetitions}, {"autograder", cfg.taxonomy.judge_autograder},
          {"completeness", cfg.taxonomy.judge_completeness}, {"traces", cfg.taxonomy.judge_traces}, {"title_examples", cfg.taxonomy.title_examples}};
}

json repetition_json(const Repetition& r) {
  json titles = json::array(), f1 = json::array();
  for (const auto& t : r.titles) titles.push_back(t ? json{{"title", t->title}, {"description", t->description}} : json(nullptr));
  for (double x : r.f1) f1.push_back(number_or_null(x));
  const double final = std::isfinite(r.avg_f1) && std::isfinite(r.avg_confidence) ? 0.5 * (r.avg_f1 + r.avg_confidence) : NAN;
  return {{"titles", titles}, {"f1", f1}, {"avg_f1", number_or_null(r.avg_f1)}, {"avg_confidence", number_or_null(r.avg_confidence)},
          {"final", number_or_null(final)}, {"failed", r.failed}};
}

}  // namespace

json judge_task(const Config& cfg, const LlmBackend& backend, const SentenceSet& set, const JudgeData& data, const TaxonomyPoint& p,
                const artifacts::TaxonomyTask& t, const std::string& task_hash) {
  const fs::path file = artifacts::judge_record_path(cfg, p.key);
  const json options = options_of(cfg);
  const std::string identity = backend.identity();
  if (std::optional<json> cached = artifacts::read_judge_record(file, task_hash, &identity, &options)) return *cached;
  const std::vector<double> dist = cluster_distances(set, p.layer, t, cfg.taxonomy.memory_mb << 20);
  json reps = json::array();
  std::vector<double> f1, conf, final;
  int64_t failed = 0;
  for (int64_t r = 0; r < cfg.taxonomy.judge_repetitions; ++r) {
    const uint64_t seed = splitmix64(static_cast<uint64_t>(p.seed) * 0x9e3779b97f4a7c15ull + static_cast<uint64_t>(r));
    Repetition rep;
    ask_titles(cfg, backend, data, t, dist, seed, rep);
    grade(cfg, backend, data, t, seed, rep);
    rate(cfg, backend, data, t, seed, rep);
    reps.push_back(repetition_json(rep));
    f1.push_back(rep.avg_f1), conf.push_back(rep.avg_confidence);
    final.push_back(reps.back()["final"].is_number() ? reps.back()["final"].get<double>() : NAN);
    failed += rep.failed;
  }
  json j = {{"format", artifacts::TAXONOMY_JUDGE_FORMAT}, {"version", 1}, {"key", p.key}, {"task_hash", task_hash}, {"backend", identity},
            {"options", options}, {"repetitions", reps}, {"avg_f1", number_or_null(mean_of(f1))}, {"avg_confidence", number_or_null(mean_of(conf))},
            {"final", number_or_null(mean_of(final))}, {"failed", failed}};
  artifacts::write_judge_record(file, j);
  spdlog::info("reduce: judged {}: avg_f1 {:.3f}, avg_confidence {:.3f}, final {:.3f} ({} replies unusable)", p.label(), mean_of(f1), mean_of(conf),
               mean_of(final), failed);
  return j;
}

}  // namespace ts::stages
