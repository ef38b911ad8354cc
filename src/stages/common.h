// What the model stages (generate, collect) share: their inputs, this rank's slice of the model,
// the batch-round loop with the stop agreement, and the provenance every output carries.
#pragma once
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <optional>
#include <string>
#include <vector>

#include "annotate/annotator.h"
#include "core/config.h"
#include "core/json.h"
#include "core/log.h"
#include "dist/runtime.h"
#include "io/h5store.h"
#include "io/prompts.h"
#include "model/generate.h"
#include "model/transformer.h"
#include "tokenizer/chat_format.h"
#include "tokenizer/tokenizer.h"

namespace ts::stages {

// data.prompts: a JSONL file, or a built-in set, each also as "-train" / "-test" split:
//   builtin:toy        the toy world's word problems per [toy] (question + exact answer; category =
//                      template)
//   builtin:reasoning  240 reasoning tasks written for thinksteer, 24 in each of the ten categories
//                      of the steering-vector paper (configs/prompts/reasoning_tasks.jsonl, compiled
//                      in; 4 per category held out as test)
std::vector<Prompt> load_prompts(const Config& cfg, const std::string& spans_field = "");
// What identifies the prompts for config hashes: the file's SHA-256, or the set name + [toy] keys.
std::string prompts_identity(const Config& cfg);

// This rank's part of the model: the layers of its pipeline stage (embeddings on the first stage,
// final norm and lm_head on the last), read from the checkpoint and nothing else.
struct StageModel {
  std::filesystem::path dir;
  std::shared_ptr<const Tokenizer> tokenizer;
  std::unique_ptr<Transformer> model;
  ModelConfig config;
  Range layers;
  c10::ScalarType dtype = c10::ScalarType::Float;
  std::vector<int64_t> eos_ids;  // generation_config.json's, else config.json's
  int64_t pad_id = 0;
};
StageModel load_stage_model(const Config& cfg, const Runtime& rt);

// Generation options from [generate] and the model (EOS, pad, stop strings through the tokenizer).
GenerateOptions generate_options(const Config& cfg, const StageModel& m);

// The token sequence of one generation (a row of generate/generations.jsonl) as `collect` with
// source = generations runs it: prompt_text encoded without added special tokens (the chat format
// already holds them), then the generated ids. `text` = prompt_text + decode(generated); `offsets`
// are code points of `text`, the tokenizer's for the prompt tokens and, for generated tokens, every
// character a token contributes bytes to (generated_token_offsets).
struct TokenSequence {
  std::string text;
  std::vector<int32_t> ids;
  std::vector<std::pair<int64_t, int64_t>> offsets;
  int64_t n_prompt = 0;       // prompt tokens
  int64_t prompt_chars = 0;   // code points of prompt_text: where the generated text starts in `text`
};
TokenSequence generation_sequence(const Tokenizer& tok, const std::string& prompt_text, const std::vector<int32_t>& generated);

// Code-point ranges of generated tokens inside decode(ids), shifted by `base`, with the tokenizer's
// convention for prompt tokens (HF `offsets`): a token covers every character it contributes bytes
// to, so the tokens of a character split across tokens all cover it.
std::vector<std::pair<int64_t, int64_t>> generated_token_offsets(const Tokenizer& tok, const std::vector<int32_t>& ids, int64_t base);

// An input a stage reads: the path the config gives, or, when that is empty, <run.dir>/<stage_dir>/<file>
// (where the stage that makes it writes it).
std::filesystem::path run_input(const std::string& given, const Config& cfg, const char* stage_dir, const char* file);

// Thinking length of generated tokens: the tokens before the first </think>, and whether there is one
// (without a </think> token in the vocabulary, or in the tokens, every token is thinking).
struct ThinkingLength {
  int64_t tokens = 0;
  bool closed = false;
};
ThinkingLength thinking_length(std::span<const int32_t> generated, std::optional<int32_t> think_close);

// The annotator of [annotate]: lexicon, toy, or llm on an endpoint (stages/annotate.cpp; the llm
// annotator on a local checkpoint loads a model and is made by the annotate stage itself).
std::unique_ptr<Annotator> make_annotator(const Config& cfg);

// The config hash of a stage's output: the given sections, the inputs' identity, the code version.
// [parallel] is never part of it: results do not depend on the rank layout.
// What identifies a checkpoint directory in a config hash: config.json and tokenizer.json (SHA-256)
// and each weight file's name, size and modification time, so a retrained model at the same path is
// new work (hashing every weight would cost minutes on large models).
std::string checkpoint_identity(const std::filesystem::path& dir);

std::string output_config_hash(const Config& cfg, const std::vector<std::string>& sections, const std::string& inputs);

// Provenance of an output (DECISIONS.md "Outputs and runs"): resolved config and hash, git commit,
// library versions (torch, MPI, HDF5, NCCL), seeds, rank layout, model path and checkpoint hashes
// (these only when `model_dir` is not empty).
json stage_provenance(const Config& cfg, const Runtime& rt, const std::string& stage, const std::string& config_hash,
                      const std::filesystem::path& model_dir);
// Root attributes of an HDF5 output: format, schema_version, stage, config, config_sha256,
// git_commit, created_utc, world_size, pipeline_stages, seed, model_path, and the full provenance
// JSON as the attribute `provenance`.
void write_h5_provenance(h5::SerialFile& file, const json& prov, const std::string& format);

// The batch loop of a stage: every rank runs `rounds` rounds (the maximum of my_batches over ranks)
// and calls work(b) in round b < my_batches. Ranks do not run in lockstep: at the end of each round
// a rank starts a non-blocking MPI_Iallreduce(MAX) of {stop requested, bytes buffered} and reads the
// previous round's result, so a rank is at most one round ahead of the slowest, and every rank acts on
// the same result in the same round: a stop request (dist/stop.h) makes every rank call save()
// (COLLECTIVE) and throw StopRequested; buffered bytes over flush_bytes on any rank make every rank call
// flush() (COLLECTIVE, e.g. the HDF5 writes). After the last round flush() runs once more.
struct BatchLoop {
  std::function<void(int64_t)> work;      // local
  std::function<int64_t()> pending_bytes;  // local; empty: nothing is buffered
  std::function<void()> flush;            // COLLECTIVE; may be empty
  std::function<void()> save;             // COLLECTIVE: store progress after a stop request
  int64_t flush_bytes = int64_t{256} << 20;
  std::string what;                       // progress label
  double progress_seconds = 30;
  std::function<std::string()> detail;    // progress detail
};
// COLLECTIVE over rt.world_comm.
void run_batches(Runtime& rt, int64_t my_batches, const BatchLoop& loop);

// Single-writer stages: runs `work` on rank 0 while the other ranks wait at a barrier. COLLECTIVE
// over rt.world_comm. If `work` throws, the exception propagates (and main() aborts every rank).
void on_rank0(Runtime& rt, const std::function<void()>& work);

// Row ranges covering sorted, distinct row indices (consecutive rows merged).
std::vector<h5::RowRange> row_ranges(const std::vector<int64_t>& sorted_rows);

}  // namespace ts::stages
