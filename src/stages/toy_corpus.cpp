// Stage `toy corpus`: the planted-truth reasoning corpus (src/toy/corpus.h).
//   in : the [toy] section only (no model, no data)
//   out: <run.dir>/toy/corpus.jsonl (+ .done marker with the config hash), provenance.json
// One JSON object per problem: question, exact answer, R1-format trace, and the label and code-point
// range of every sentence. A rerun whose marker matches the config hash skips the work.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

#include "core/atomic_file.h"
#include "core/done_marker.h"
#include "core/error.h"
#include "core/log.h"
#include "core/provenance.h"
#include "core/sha256.h"
#include "artifacts/prompts.h"
#include "dist/batch_loop.h"
#include "dist/rank_model.h"
#include "stages/stage.h"
#include "toy/corpus.h"

namespace ts::stages::toy_corpus {
namespace fs = std::filesystem;

namespace {

void write(const Config& cfg) {
  const fs::path out_dir = fs::path(cfg.run.dir) / "toy";
  const fs::path out_file = out_dir / "corpus.jsonl";

  const std::string config_hash = sha256_hex(config_to_ini(cfg, {"toy"}) + git_commit());
  if (done_marker_matches(out_file, config_hash)) {
    spdlog::info("toy corpus: {} is complete for this config ({}), skipping", out_file.string(), config_hash.substr(0, 12));
    return;
  }
  if (std::filesystem::exists(done_marker_path(out_file))) spdlog::info("toy corpus: existing output has another config hash; regenerating");

  const std::vector<ToyProblem> problems = toy_corpus_generate(toy_corpus_options(cfg.toy));

  std::string jsonl;
  std::map<std::string, int64_t> sentences_per_label, problems_per_label, per_split;
  int64_t n_sentences = 0, n_wrong = 0, n_slips = 0;
  for (const auto& p : problems) {
    jsonl += toy_problem_to_json_line(p) + "\n";
    std::map<std::string, bool> seen;
    for (const auto& s : p.sentences) {
      ++sentences_per_label[s.label];
      seen[s.label] = true;
    }
    for (const auto& [label, yes] : seen) problems_per_label[label] += yes;
    n_sentences += static_cast<int64_t>(p.sentences.size());
    ++per_split[p.split];
    n_slips += p.slip;
    n_wrong += p.final_answer != p.answer;
  }

  fs::create_directories(out_dir);
  write_file_atomic(fs::path(cfg.run.dir) / "config.resolved.ini", config_to_ini(cfg));
  json prov = provenance_json(cfg, config_hash);
  prov["stage"] = "toy corpus";
  json counts = json::object();
  for (const auto& label : toy_behaviour_labels())
    counts[label] = {{"sentences", sentences_per_label[label]}, {"problems", problems_per_label[label]}};
  prov["behaviour_counts"] = counts;
  prov["split_counts"] = per_split;
  write_file_atomic(out_dir / "provenance.json", prov.dump(2));
  write_file_atomic(out_file, jsonl);
  done_marker_write(out_file, config_hash);

  const double total = static_cast<double>(std::max<int64_t>(1, n_sentences));
  const double n = static_cast<double>(std::max<size_t>(1, problems.size()));
  for (const auto& label : toy_behaviour_labels())
    spdlog::info("toy corpus: {:<22} {:>6} sentences ({:5.1f}% of sentences), in {:5.1f}% of problems", label,
                 sentences_per_label[label], 100.0 * static_cast<double>(sentences_per_label[label]) / total,
                 100.0 * static_cast<double>(problems_per_label[label]) / n);
  spdlog::info("toy corpus: {} problems ({} train, {} test), style {}, {} slips, {} wrong final answers", problems.size(),
               per_split["train"], per_split["test"], option_name(cfg.toy.style), n_slips, n_wrong);
  spdlog::info("toy corpus: wrote {}", out_file.string());
}

}  // namespace

// One writer: rank 0 writes while the other ranks (if any) wait for it.
void run(const Config& cfg, Runtime& rt) {
  on_rank0(rt, [&] { write(cfg); });
}

}  // namespace ts::stages::toy_corpus
