// Stage `toy eval`: how closely a toy model's traces reproduce the planted behaviours (src/toy/evaluate.h).
//   in : <run.dir>/generate/generations.jsonl (`thinksteer generate` with data.prompts = builtin:toy-test),
//        the [toy] section (the reference corpus is generated from it; its train split gives the rates,
//        so [toy] must be the one the model was trained with, style included)
//   out: <run.dir>/toy/eval.json: closed-think, parseable-answer and accuracy rates, the share of each
//        behaviour among the generated sentences against the corpus's, per-row results, provenance
// Always recomputed (cheap). Exit 0 whatever the numbers: tests and the demo judge them.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "core/provenance.h"
#include "core/sha256.h"
#include "artifacts/prompts.h"
#include "dist/batch_loop.h"
#include "dist/rank_model.h"
#include "stages/stage.h"
#include "toy/corpus.h"
#include "toy/evaluate.h"

namespace ts::stages::toy_eval {
namespace fs = std::filesystem;

namespace {

// The rows of generations.jsonl; every field the evaluation reads must be there with its type.
std::vector<ToyGeneration> parse_generations(const std::string& text, const std::string& file) {
  std::vector<ToyGeneration> rows;
  std::istringstream in(text);
  jsonl_for_each(in, file, [&](const json& row, const std::string& where, int64_t) {
    ToyGeneration g;
    g.id = json_string(row, "id", where);
    g.thinking = json_string(row, "thinking", where);
    g.answer_text = json_string(row, "answer_text", where);
    g.thinking_closed = json_bool(row, "thinking_closed", where);
    g.reference_answer = json_string(row, "reference_answer", where);
    if (!toy_answers_equal(g.reference_answer, g.reference_answer))  // an integer equals itself
      throw InputError(where, "reference_answer", "'" + g.reference_answer + "' is not an integer (were the prompts builtin:toy-test?)");
    rows.push_back(std::move(g));
    return true;
  });
  if (rows.empty()) throw InputError(file, "<file>", "no generations");
  return rows;
}

void log_report(const ToyEvalReport& r) {
  spdlog::info("toy eval: {} traces: {:.1f}% closed </think>, {:.1f}% with a parseable answer, accuracy {:.1f}% (corpus {:.1f}%)", r.n,
               100 * r.closed_rate, 100 * r.parseable_rate, 100 * r.accuracy, 100 * r.corpus_accuracy);
  spdlog::info("toy eval: {:<22} {:>9} {:>9} {:>8}", "label", "generated", "corpus", "diff pp");
  for (const ToyLabelShare& l : r.labels)
    spdlog::info("toy eval: {:<22} {:>8.1f}% {:>8.1f}% {:>+8.1f}", l.label, 100 * l.generated_share, 100 * l.corpus_share, l.diff_pp);
  spdlog::info("toy eval: {:<22} {:>8.1f}%", "unlabelled", 100 * r.unlabelled_share);
  spdlog::info("toy eval: {} generated sentences, {} corpus sentences; largest difference {:.1f} points", r.generated_sentences,
               r.corpus_sentences, r.max_abs_diff_pp);
}

void evaluate(const Config& cfg) {
  const fs::path input = fs::path(cfg.run.dir) / "generate" / "generations.jsonl";
  const fs::path out_file = fs::path(cfg.run.dir) / "toy" / "eval.json";

  // Inputs first: a bad file fails before the corpus is generated.
  const std::string text = read_file(input, " the generations (run `thinksteer generate` with data.prompts = builtin:toy-test first)");
  const std::vector<ToyGeneration> generated = parse_generations(text, input.string());
  std::vector<ToyProblem> corpus = toy_corpus_generate(toy_corpus_options(cfg.toy));
  std::erase_if(corpus, [](const ToyProblem& p) { return p.split != "train"; });

  const ToyEvalReport report = toy_evaluate(generated, corpus);
  const std::string input_sha256 = sha256_hex(text);
  json out = toy_eval_report_json(report);
  out["stage"] = "toy eval";
  out["input"] = input.string();
  out["input_sha256"] = input_sha256;
  out["style"] = option_text(cfg.toy.style);
  out["provenance"] = provenance_json(cfg, sha256_hex(config_to_ini(cfg, {"toy"}) + input_sha256 + git_commit()));
  fs::create_directories(out_file.parent_path());
  write_file_atomic(out_file, out.dump(2) + "\n");
  log_report(report);
  spdlog::info("toy eval: wrote {}", out_file.string());
}

}  // namespace

// One reader and writer: rank 0 works while the other ranks (if any) wait for it.
void run(const Config& cfg, Runtime& rt) {
  on_rank0(rt, [&] { evaluate(cfg); });
}

}  // namespace ts::stages::toy_eval
