// Stage `toy tokenizer`: the byte-level BPE tokenizer of the planted-truth toy world (src/toy/bpe_trainer.h).
//   in : <run.dir>/toy/corpus.jsonl when its .done marker matches this config, else the same corpus
//        generated in memory from [toy]
//   out: <run.dir>/toy/tokenizer/tokenizer.json (+ .done marker with the config hash),
//        tokenizer_config.json (bos/eos tokens), provenance.json, sample_encodings.jsonl
// Trained on the train split: every question as an R1 chat prompt (the text the models are given)
// and every trace. sample_encodings.jsonl holds our ids for the first test-split prompts and traces,
// so that other implementations (HF tokenizers in tests/toy/test_toy_tokenizer.py) can be compared.
// A rerun whose marker matches the config hash skips the work.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>

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
#include "tokenizer/chat_format.h"
#include "tokenizer/tokenizer.h"
#include "toy/bpe_trainer.h"
#include "toy/corpus.h"

namespace ts::stages::toy_tokenizer {
namespace fs = std::filesystem;

namespace {

constexpr size_t kSampleProblems = 32;  // test-split problems in sample_encodings.jsonl

struct CorpusText {
  std::string split, prompt, trace;
};

// The corpus written by `toy corpus` (when complete for this config) or generated here.
std::vector<CorpusText> load_corpus(const Config& cfg, const fs::path& corpus_file, const std::string& config_hash) {
  std::vector<CorpusText> out;
  if (done_marker_matches(corpus_file, config_hash)) {
    std::ifstream in(corpus_file);
    if (!in) throw InputError(corpus_file.string(), "<file>", "cannot open the toy corpus");
    jsonl_for_each(in, corpus_file.string(), [&](const json& row, const std::string& where, int64_t) {
      out.push_back({json_string(row, "split", where), json_string(row, "question", where), json_string(row, "text", where)});
      return true;
    });
    spdlog::info("toy tokenizer: read {} problems from {}", out.size(), corpus_file.string());
  } else {
    for (const ToyProblem& p : toy_corpus_generate(toy_corpus_options(cfg.toy))) out.push_back({p.split, p.question, p.text});
    spdlog::info("toy tokenizer: no complete {} for this config; generated the corpus in memory ({} problems)",
                 corpus_file.string(), out.size());
  }
  for (CorpusText& c : out) c.prompt = chat_format_apply(ChatFormat::deepseek_r1, c.prompt);
  return out;
}

void write(const Config& cfg) {
  const fs::path toy_dir = fs::path(cfg.run.dir) / "toy";
  const fs::path out_dir = toy_dir / "tokenizer";
  const fs::path out_file = out_dir / "tokenizer.json";

  // The same hash as `toy corpus` (both depend on [toy] only), so its marker can be checked too.
  const std::string config_hash = sha256_hex(config_to_ini(cfg, {"toy"}) + git_commit());
  if (done_marker_matches(out_file, config_hash)) {
    spdlog::info("toy tokenizer: {} is complete for this config ({}), skipping", out_file.string(), config_hash.substr(0, 12));
    return;
  }
  if (fs::exists(done_marker_path(out_file))) spdlog::info("toy tokenizer: existing output has another config hash; retraining");

  const std::vector<CorpusText> corpus = load_corpus(cfg, toy_dir / "corpus.jsonl", config_hash);
  std::vector<std::string> train;
  bool on_test = false;  // chars per token are measured on the test split (the train split if it is empty)
  for (const CorpusText& c : corpus) {
    if (c.split == "train") {
      train.push_back(c.prompt);
      train.push_back(c.trace);
    } else {
      on_test = true;
    }
  }
  if (train.empty()) throw InputError("[toy]", "toy.n_problems", "the corpus has no train-split problem to train the tokenizer on");

  BpeTrainOptions opt;
  opt.vocab_size = cfg.toy.vocab_size;
  const auto start = std::chrono::steady_clock::now();
  const BpeTrainResult trained = bpe_train(train, opt);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  // Load the result through the tokenizer every model uses; it must reproduce every text.
  const Tokenizer tok = Tokenizer::from_json_text(trained.tokenizer_json, out_file.string());
  int64_t chars = 0, tokens = 0;
  std::string samples;
  size_t n_samples = 0;
  for (const CorpusText& c : corpus) {
    for (const std::string* text : {&c.prompt, &c.trace}) {
      const std::vector<int32_t> ids = tok.encode_ids(*text);
      if (tok.decode(ids) != *text) throw std::logic_error("toy tokenizer: trained tokenizer does not round-trip a corpus text");
      if (c.split != "train" || !on_test) {
        chars += utf8_length(*text);
        tokens += static_cast<int64_t>(ids.size());
      }
      if (c.split != "train" && n_samples < 2 * kSampleProblems) {
        samples += json{{"text", *text}, {"ids", ids}}.dump() + "\n";
        ++n_samples;
      }
    }
  }
  const double chars_per_token = tokens > 0 ? static_cast<double>(chars) / static_cast<double>(tokens) : 0.0;

  fs::create_directories(out_dir);
  write_file_atomic(fs::path(cfg.run.dir) / "config.resolved.ini", config_to_ini(cfg));
  json prov = provenance_json(cfg, config_hash);
  prov["stage"] = "toy tokenizer";
  prov["vocab_size"] = trained.vocab_size;
  prov["merges"] = trained.n_merges;
  prov["distinct_words"] = trained.n_words;
  prov["chars_per_token"] = chars_per_token;
  prov["chars_per_token_split"] = on_test ? "test" : "train";
  write_file_atomic(out_dir / "provenance.json", prov.dump(2));
  write_file_atomic(out_dir / "tokenizer_config.json",
                    json{{"bos_token", opt.special_tokens[0]}, {"eos_token", opt.special_tokens[1]}}.dump(2) + "\n");
  write_file_atomic(out_dir / "sample_encodings.jsonl", samples);
  write_file_atomic(out_file, trained.tokenizer_json);
  done_marker_write(out_file, config_hash);

  if (trained.vocab_size < cfg.toy.vocab_size)
    spdlog::warn("toy tokenizer: the corpus has no more pairs occurring twice; vocabulary {} < toy.vocab_size {}",
                 trained.vocab_size, cfg.toy.vocab_size);
  spdlog::info("toy tokenizer: vocab {} ({} merges, {} distinct words, trained on {} texts in {:.2f} s), "
               "{:.2f} chars per token on the {} split",
               trained.vocab_size, trained.n_merges, trained.n_words, train.size(), seconds, chars_per_token,
               on_test ? "test" : "train");
  spdlog::info("toy tokenizer: wrote {}", out_file.string());
}

}  // namespace

// One writer: rank 0 writes while the other ranks (if any) wait for it.
void run(const Config& cfg, Runtime& rt) {
  on_rank0(rt, [&] { write(cfg); });
}

}  // namespace ts::stages::toy_tokenizer
