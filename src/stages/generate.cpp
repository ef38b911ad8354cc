// Stage `generate`: thinking traces from a prompt dataset, data parallel over replicas and layer
// sharded over pipeline stages (dist/runtime.h).
//   in : model.path (checkpoint + tokenizer.json), data.prompts (JSONL or builtin:...)
//   out: <run.dir>/generate/generations.h5 (format thinksteer.generations, layout in README.md),
//        generations.jsonl (the same for people to read), provenance.json, .done marker with the
//        config hash; <run.dir>/config.resolved.ini
// Each replica takes a contiguous share of the prompts balanced by estimated tokens (prompt +
// max_new_tokens); results do not depend on the rank layout, the batch or the order (per-prompt
// sampling streams). A rerun whose marker matches skips the work. On SIGUSR1/SIGTERM the ranks stop
// at a batch boundary and store finished prompts in generations.progress.jsonl; the rerun goes on
// from there.
#include <ATen/ATen.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <optional>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "dist/pipeline.h"
#include "dist/stop.h"
#include "artifacts/generations.h"
#include "artifacts/prompts.h"
#include "dist/batch_loop.h"
#include "dist/rank_model.h"
#include "model/checkpoint_identity.h"
#include "model/generate_continuous.h"
#include "stages/stage.h"
#include "tokenizer/chat_format.h"

namespace ts::stages::generate {
namespace fs = std::filesystem;

namespace {

using artifacts::thinking_length;
using artifacts::ThinkingLength;

// Splits "thinking</think>answer". Without a closing tag the whole text is (unfinished) thinking.
struct ThinkSplit {
  std::string thinking, answer;
  bool closed = false;
};
ThinkSplit split_thinking(const std::string& text) {
  ThinkSplit s;
  std::string body = text;
  if (body.rfind("<think>", 0) == 0) body = body.substr(7);
  const size_t close = body.find("</think>");
  if (close == std::string::npos) {
    s.thinking = body;
    return s;
  }
  s.closed = true;
  s.thinking = body.substr(0, close);
  s.answer = body.substr(close + 8);
  return s;
}

FinishReason finish_from_name(const std::string& name, const std::string& file) {
  for (FinishReason r : {FinishReason::EOS, FinishReason::STOP_STRING, FinishReason::LENGTH})
    if (name == finish_reason_name(r)) return r;
  throw InputError(file, "finish_reason", "unknown finish reason '" + name + "'");
}

// Restores the finished prompts of a progress file (first line {"config_sha256"}, then one
// progress_line per prompt). Returns how many, or -1 when the file belongs to another config.
int64_t restore_progress(const std::string& text, const std::string& file, const std::string& config_hash,
                         std::vector<std::optional<GenerateResult>>& results, std::vector<char>& restored) {
  std::istringstream in(text);
  std::string line;
  std::getline(in, line);
  if (json_parse_strict(line, file).value("config_sha256", "") != config_hash) return -1;
  int64_t count = 0;
  while (std::getline(in, line)) {
    const json row = json_parse_strict(line, file);
    const int64_t i = json_int(row, "index", file);
    if (i < 0 || i >= static_cast<int64_t>(results.size())) throw InputError(file, "index", "prompt index out of range");
    GenerateResult r;
    r.tokens = row.at("token_ids").get<std::vector<int32_t>>();
    r.finish = finish_from_name(json_string(row, "finish_reason", file), file);
    results[static_cast<size_t>(i)] = std::move(r);
    restored[static_cast<size_t>(i)] = 1;
    ++count;
  }
  return count;
}

// One finished prompt as a progress line: {"index", "token_ids", "finish_reason"}.
std::string progress_line(int64_t index, const GenerateResult& r) {
  return json{{"index", index}, {"token_ids", r.tokens}, {"finish_reason", finish_reason_name(r.finish)}}.dump();
}

// The prompts as the model sees them (every rank alike).
struct Inputs {
  std::vector<Prompt> prompts;
  std::vector<std::string> texts;             // chat-formatted
  std::vector<std::vector<int32_t>> ids;      // their tokens
  int64_t size() const { return static_cast<int64_t>(prompts.size()); }
};

Inputs read_inputs(const Config& cfg, const StageModel& m) {
  Inputs in;
  in.prompts = artifacts::load_prompts(cfg);
  const ChatFormat format = cfg.generate.chat_format;
  for (const Prompt& p : in.prompts) {
    in.texts.push_back(chat_format_apply(format, p.text, cfg.generate.system));
    in.ids.push_back(m.tokenizer->encode_ids(in.texts.back()));
    if (in.ids.back().empty()) throw InputError(cfg.data.prompts, "prompt " + p.id, "prompt encodes to no tokens");
    check_context(cfg, m.config, p.id, static_cast<int64_t>(in.ids.back().size()));
  }
  return in;
}

// Every prompt's result as far as this rank knows it; `restored` marks those from the progress file.
struct Results {
  std::vector<std::optional<GenerateResult>> of;
  std::vector<char> restored;
};

// Progress of an interrupted run with the same config: rank 0 reads it, every rank parses it, so all
// agree; a damaged file (it is written atomically, so only by hand) means starting over, never a crash.
Results restore(Runtime& rt, const fs::path& progress_file, const std::string& config_hash, int64_t n) {
  Results r{std::vector<std::optional<GenerateResult>>(static_cast<size_t>(n)), std::vector<char>(static_cast<size_t>(n), 0)};
  std::string text;
  if (rt.rank == 0 && fs::exists(progress_file)) {
    std::ifstream in(progress_file);
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  rt.world_comm.bcast(text, 0);
  if (text.empty()) return r;
  try {
    const int64_t count = restore_progress(text, progress_file.string(), config_hash, r.of, r.restored);
    if (count >= 0) spdlog::info("generate: resuming, {} of {} prompts finished before", count, n);
    else spdlog::info("generate: {} belongs to another config; starting over", progress_file.string());
  } catch (const std::exception& e) {
    spdlog::warn("generate: ignoring unreadable progress file ({}); starting over", error_one_line(e.what()));
    r.of.assign(r.of.size(), std::nullopt);
    r.restored.assign(r.restored.size(), 0);
  }
  return r;
}

// Which rank writes a prompt's rows: the first stage of the replica that generated it; rank 0 for
// prompts restored from the progress file.
bool holds(const Runtime& rt, const Results& r, int64_t i) {
  return r.restored[static_cast<size_t>(i)] ? rt.rank == 0 : (rt.first_stage() && r.of[static_cast<size_t>(i)].has_value());
}

// This replica's share of the remaining prompts, longest first (batches of similar length).
std::vector<int64_t> my_prompts(const Config& cfg, const Runtime& rt, const Inputs& in, const Results& r) {
  std::vector<int64_t> remaining, costs;
  for (int64_t i = 0; i < in.size(); ++i)
    if (!r.restored[static_cast<size_t>(i)]) {
      remaining.push_back(i);
      costs.push_back(static_cast<int64_t>(in.ids[static_cast<size_t>(i)].size()) + cfg.generate.max_new_tokens);
    }
  const Range share = partition_contiguous(costs, rt.n_replicas)[static_cast<size_t>(rt.replica)];
  std::vector<int64_t> mine(remaining.begin() + share.begin, remaining.begin() + share.end);
  std::stable_sort(mine.begin(), mine.end(), [&](int64_t a, int64_t b) { return in.ids[static_cast<size_t>(a)].size() > in.ids[static_cast<size_t>(b)].size(); });
  return mine;
}

// On a stop request: every finished prompt (held results) to rank 0, which commits the progress file.
// COLLECTIVE.
std::string save_progress(Runtime& rt, const Results& r, int64_t n, const fs::path& progress_file, const std::string& config_hash) {
  std::vector<std::string> lines;
  for (int64_t i = 0; i < n; ++i)
    if (holds(rt, r, i)) lines.push_back(progress_line(i, *r.of[static_cast<size_t>(i)]));
  const std::vector<std::string> all = rt.world_comm.gather_strings(lines, 0);
  if (rt.rank == 0) {
    std::string text = json{{"config_sha256", config_hash}}.dump() + "\n";
    for (const auto& l : all) text += l + "\n";
    fs::create_directories(progress_file.parent_path());
    write_file_atomic(progress_file, text);
    spdlog::info("generate: saved {} finished prompts of {} to {}", all.size(), n, progress_file.string());
  }
  int64_t saved = static_cast<int64_t>(all.size());
  rt.world_comm.bcast(std::span<int64_t>(&saved, 1), 0);
  return std::to_string(saved) + " of " + std::to_string(n) + " prompts in " + progress_file.filename().string();
}

// The generation itself: this replica's prompts in batches (pipelined over the stages when P > 1).
// COLLECTIVE (run_batches).
void generate_all(const Config& cfg, Runtime& rt, const StageModel& m, const Inputs& in, Results& r, const fs::path& progress_file,
                  const std::string& config_hash) {
  const GenerateOptions gen = generate_options(cfg, m);
  const std::vector<int64_t> mine = my_prompts(cfg, rt, in, r);
  // One stage: continuous batching (model/generate_continuous.h), batch_size rows refilled as traces finish, over
  // rounds of up to BATCHES_PER_ROUND batches' worth of prompts (fewer while that leaves a rank fewer than
  // BATCHES_PER_ROUND rounds). A stop request ends the admissions of the round, so the stop waits for the traces in
  // the rows, at most one batch, and the prompts not begun are left to the rerun; never in this rank's last round,
  // which may be the loop's last (the stage then commits: every prompt must be done). Pipelined (P > 1): one batch
  // per round.
  const int64_t bs = cfg.generate.batch_size, n_mine = static_cast<int64_t>(mine.size());
  const int64_t per_round = rt.n_stages > 1 ? bs : std::clamp((n_mine + BATCHES_PER_ROUND - 1) / BATCHES_PER_ROUND, bs, bs * BATCHES_PER_ROUND);
  const int64_t rounds = (n_mine + per_round - 1) / per_round;
  Pipeline pipeline(*m.model, rt);
  const int64_t micro = cfg.parallel.micro_batches > 0 ? cfg.parallel.micro_batches : rt.n_stages;
  int64_t new_tokens = 0;
  const auto t0 = std::chrono::steady_clock::now();
  BatchLoop loop;
  std::vector<int64_t> waiting;  // prompts of a round cut short by a stop request that did not stop (a STOP file gone again)
  loop.work = [&](int64_t b) {
    const size_t begin = static_cast<size_t>(b * per_round), end = std::min(mine.size(), begin + static_cast<size_t>(per_round));
    std::vector<int64_t> round = std::move(waiting);
    round.insert(round.end(), mine.begin() + static_cast<std::ptrdiff_t>(begin), mine.begin() + static_cast<std::ptrdiff_t>(end));
    waiting.clear();
    std::vector<GenerateRequest> batch;
    for (int64_t i : round) batch.push_back({in.ids[static_cast<size_t>(i)], stream_id_of(in.prompts[static_cast<size_t>(i)].id)});
    const ContinuousOptions batching{.max_rows = bs, .on_done = {}, .admit = [&] { return b + 1 >= rounds || stop_local() == 0; }};
    std::vector<GenerateResult> out =
        rt.n_stages > 1 ? generate_pipelined(pipeline, batch, gen, micro) : generate_continuous(*m.model, batch, gen, nullptr, batching);
    for (size_t k = 0; k < round.size(); ++k) {
      if (k >= out.size()) {
        waiting.push_back(round[k]);
        continue;
      }
      new_tokens += static_cast<int64_t>(out[k].tokens.size());
      r.of[static_cast<size_t>(round[k])] = std::move(out[k]);
    }
  };
  loop.save = [&] { return save_progress(rt, r, in.size(), progress_file, config_hash); };
  loop.what = "generate";
  loop.progress_seconds = cfg.log.progress_seconds;
  loop.detail = [&] {
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return fmt::format("{:.1f} new tok/s on this rank", static_cast<double>(new_tokens) / std::max(secs, 1e-9));
  };
  run_batches(rt, rounds, loop);
}

// Where each prompt's rows start in /tokens and /prompt_tokens (n + 1 entries each). COLLECTIVE.
struct Offsets {
  std::vector<int64_t> tokens, prompt_tokens;
};
Offsets row_offsets(Runtime& rt, const Inputs& in, const Results& r) {
  const int64_t n = in.size();
  std::vector<int64_t> n_new(static_cast<size_t>(n), 0);
  for (int64_t i = 0; i < n; ++i)
    if (holds(rt, r, i)) n_new[static_cast<size_t>(i)] = static_cast<int64_t>(r.of[static_cast<size_t>(i)]->tokens.size());
  rt.world_comm.allreduce_sum(std::span<int64_t>(n_new));
  Offsets o{std::vector<int64_t>(static_cast<size_t>(n) + 1, 0), std::vector<int64_t>(static_cast<size_t>(n) + 1, 0)};
  for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
    o.tokens[i + 1] = o.tokens[i] + n_new[i];
    o.prompt_tokens[i + 1] = o.prompt_tokens[i] + static_cast<int64_t>(in.ids[i].size());
  }
  return o;
}

// Phase 1: the numeric datasets, each rank writing the rows of the prompts it holds. COLLECTIVE.
void write_rows(Runtime& rt, const StageOutput& out, const std::vector<h5::DatasetSpec>& specs, const Inputs& in, const Results& r,
                const Offsets& o, std::optional<int32_t> think_close) {
  std::vector<int64_t> rows;
  for (int64_t i = 0; i < in.size(); ++i)
    if (holds(rt, r, i)) rows.push_back(i);
  std::vector<int64_t> c_prompt, c_new, c_think, c_off, c_poff, tok_index;
  std::vector<uint8_t> c_closed;
  std::vector<int32_t> tok_ids, ptok_ids;
  std::vector<h5::RowRange> tok_ranges, ptok_ranges;
  for (int64_t i : rows) {
    const GenerateResult& g = *r.of[static_cast<size_t>(i)];
    const auto& p = in.ids[static_cast<size_t>(i)];
    const ThinkingLength thinking = thinking_length(g.tokens, think_close);
    c_prompt.push_back(static_cast<int64_t>(p.size()));
    c_new.push_back(static_cast<int64_t>(g.tokens.size()));
    c_think.push_back(thinking.tokens);
    c_closed.push_back(thinking.closed ? 1 : 0);
    c_off.push_back(o.tokens[static_cast<size_t>(i)]);
    c_poff.push_back(o.prompt_tokens[static_cast<size_t>(i)]);
    tok_ids.insert(tok_ids.end(), g.tokens.begin(), g.tokens.end());
    tok_index.insert(tok_index.end(), g.tokens.size(), i);
    if (!g.tokens.empty()) tok_ranges.push_back({o.tokens[static_cast<size_t>(i)], static_cast<int64_t>(g.tokens.size())});
    ptok_ids.insert(ptok_ids.end(), p.begin(), p.end());
    ptok_ranges.push_back({o.prompt_tokens[static_cast<size_t>(i)], static_cast<int64_t>(p.size())});
  }
  h5::ParallelFile f(out.partial(), rt.world_comm.get());
  for (const auto& s : specs) f.create(s);
  const auto prompt_ranges = artifacts::row_ranges(rows);
  f.write_rows("/prompts/n_prompt_tokens", prompt_ranges, c_prompt.data());
  f.write_rows("/prompts/n_new_tokens", prompt_ranges, c_new.data());
  f.write_rows("/prompts/n_thinking_tokens", prompt_ranges, c_think.data());
  f.write_rows("/prompts/thinking_closed", prompt_ranges, c_closed.data());
  f.write_rows("/prompts/token_offset", prompt_ranges, c_off.data());
  f.write_rows("/prompts/prompt_token_offset", prompt_ranges, c_poff.data());
  fault_point("write", rt.rank);
  f.write_rows("/tokens/id", tok_ranges, tok_ids.data());
  f.write_rows("/tokens/prompt_index", tok_ranges, tok_index.data());
  f.write_rows("/prompt_tokens/id", ptok_ranges, ptok_ids.data());
  f.close();
}

// Phase 2 (rank 0): the strings of every prompt, from the results gathered as progress lines, into
// the HDF5 file and generations.jsonl.
void write_strings(const StageOutput& out, const std::vector<h5::DatasetSpec>& specs, const StageModel& m, const Inputs& in,
                   const std::vector<std::string>& gathered, const json& prov) {
  const size_t n = in.prompts.size();
  const auto think_close = m.tokenizer->token_to_id("</think>");
  std::vector<std::string> text(n), thinking(n), answer(n), finish(n), ids(n), raw(n), reference(n), jsonl_rows(n);
  for (const auto& l : gathered) {
    const json row = json::parse(l);
    const size_t k = row["index"].get<size_t>();
    const auto tokens = row["token_ids"].get<std::vector<int32_t>>();
    text[k] = m.tokenizer->decode(tokens, /*skip_special_tokens=*/false);
    const ThinkSplit parts = split_thinking(m.tokenizer->decode(tokens, /*skip_special_tokens=*/true));
    thinking[k] = parts.thinking;
    answer[k] = parts.answer;
    finish[k] = row["finish_reason"].get<std::string>();
    jsonl_rows[k] = json{{"id", in.prompts[k].id},
                         {"prompt", in.prompts[k].text},
                         {"prompt_text", in.texts[k]},
                         {"prompt_tokens", in.ids[k].size()},
                         {"token_ids", tokens},
                         {"text", text[k]},
                         {"thinking", parts.thinking},
                         {"answer_text", parts.answer},
                         {"thinking_closed", parts.closed},
                         {"n_new_tokens", tokens.size()},
                         {"n_thinking_tokens", thinking_length(tokens, think_close).tokens},
                         {"finish_reason", finish[k]},
                         {"reference_answer", in.prompts[k].answer}}
                        .dump(-1, ' ', false, json::error_handler_t::replace);
  }
  for (size_t i = 0; i < n; ++i) {
    ids[i] = in.prompts[i].id;
    raw[i] = in.prompts[i].text;
    reference[i] = in.prompts[i].answer;
  }
  h5::SerialFile f(out.partial(), h5::SerialFile::Mode::READ_WRITE);
  const std::pair<const char*, const std::vector<std::string>*> columns[] = {
      {"/prompts/id", &ids},     {"/prompts/user_prompt", &raw}, {"/prompts/prompt_text", &in.texts}, {"/prompts/reference_answer", &reference},
      {"/prompts/text", &text}, {"/prompts/thinking", &thinking}, {"/prompts/answer_text", &answer},  {"/prompts/finish_reason", &finish}};
  for (const auto& [path, values] : columns) f.write_strings(path, *values, "prompt");
  for (const auto& s : specs) f.describe(s);
  artifacts::write_h5_identity(f, prov, artifacts::GENERATIONS);
  std::string jsonl;
  for (const auto& row : jsonl_rows) jsonl += row + "\n";
  write_file_atomic(out.dir() / artifacts::GENERATIONS_JSONL.file, jsonl);
}

}  // namespace

void run(const Config& cfg, Runtime& rt) {
  const fs::path progress_file = artifacts::GENERATIONS_PROGRESS.in(cfg);
  const std::string config_hash =
      artifacts::output_config_hash(cfg, {"model", "data", "generate"}, artifacts::prompts_identity(cfg) + "\n" + checkpoint_identity(cfg.model.path));
  StageOutput out(cfg, rt, "generate", artifacts::GENERATIONS_H5.in(cfg), config_hash);
  if (out.complete({artifacts::GENERATIONS_JSONL.in(cfg)})) return;

  // Inputs first: every input error surfaces before any work or output.
  const StageModel m = load_stage_model(cfg, rt);
  const Inputs in = read_inputs(cfg, m);
  out.begin();  // one writer from here on, the progress file included
  Results r = restore(rt, progress_file, config_hash, in.size());
  const auto t0 = std::chrono::steady_clock::now();
  generate_all(cfg, rt, m, in, r, progress_file, config_hash);

  // Output: numeric datasets written collectively, strings and provenance by rank 0, then commit.
  const Offsets o = row_offsets(rt, in, r);
  const std::vector<h5::DatasetSpec> specs = artifacts::generations_datasets(in.size(), o.tokens.back(), o.prompt_tokens.back());
  write_rows(rt, out, specs, in, r, o, m.tokenizer->token_to_id("</think>"));
  std::vector<std::string> lines;
  for (int64_t i = 0; i < in.size(); ++i)
    if (holds(rt, r, i)) lines.push_back(progress_line(i, *r.of[static_cast<size_t>(i)]));
  const std::vector<std::string> gathered = rt.world_comm.gather_strings(lines, 0);
  if (rt.rank == 0) {
    const json prov = out.provenance(m.dir);
    write_strings(out, specs, m, in, gathered, prov);
    out.commit_h5(prov, artifacts::GENERATIONS, specs, {.certified = {artifacts::GENERATIONS_JSONL.in(cfg)}});
    fs::remove(progress_file);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    spdlog::info("generate: wrote {} traces ({} new tokens in {:.1f} s on {} ranks) to {} and {}", in.size(), o.tokens.back(), secs, rt.world,
                 out.path().string(), artifacts::GENERATIONS_JSONL.file);
  }
  rt.world_comm.barrier();
}

}  // namespace ts::stages::generate
