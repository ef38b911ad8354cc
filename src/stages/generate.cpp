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
#include "stages/common.h"
#include "stages/stages.h"

namespace ts::stages::generate {
namespace fs = std::filesystem;

namespace {

constexpr const char* FORMAT = "thinksteer.generations";

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

}  // namespace

void run(const Config& cfg, Runtime& rt) {
  const fs::path out_dir = fs::path(cfg.run.dir) / "generate";
  const fs::path out_h5 = out_dir / "generations.h5", out_jsonl = out_dir / "generations.jsonl";
  const fs::path progress_file = out_dir / "generations.progress.jsonl";
  const std::string config_hash = output_config_hash(cfg, {"model", "data", "generate"}, prompts_identity(cfg) + "\n" + checkpoint_identity(cfg.model.path));
  const bool complete = rt.rank == 0 && done_marker_matches(out_h5, config_hash) && fs::exists(out_jsonl);
  if (rt.world_comm.allreduce_max(complete ? 1 : 0)) {
    spdlog::info("generate: {} is complete for this config ({}), skipping", out_h5.string(), config_hash.substr(0, 12));
    return;
  }

  // Inputs first: every input error surfaces before any work or output.
  const std::vector<Prompt> prompts = load_prompts(cfg);
  const int64_t n = static_cast<int64_t>(prompts.size());
  StageModel m = load_stage_model(cfg, rt);
  const GenerateOptions gen = generate_options(cfg, m);
  const ChatFormat format = chat_format_from_name(cfg.generate.chat_format);
  std::vector<std::string> prompt_texts(static_cast<size_t>(n));
  std::vector<std::vector<int32_t>> prompt_ids(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    prompt_texts[static_cast<size_t>(i)] = chat_format_apply(format, prompts[static_cast<size_t>(i)].text, cfg.generate.system);
    prompt_ids[static_cast<size_t>(i)] = m.tokenizer->encode_ids(prompt_texts[static_cast<size_t>(i)]);
    if (prompt_ids[static_cast<size_t>(i)].empty())
      throw InputError(cfg.data.prompts, "prompt " + prompts[static_cast<size_t>(i)].id, "prompt encodes to no tokens");
  }

  // Progress of an interrupted run with the same config: rank 0 reads it, every rank parses it.
  std::vector<std::optional<GenerateResult>> results(static_cast<size_t>(n));
  std::vector<char> restored(static_cast<size_t>(n), 0);
  std::string progress_text;
  if (rt.rank == 0 && fs::exists(progress_file)) {
    std::ifstream in(progress_file);
    progress_text.assign(std::istreambuf_iterator<char>(in), {});
  }
  rt.world_comm.bcast(progress_text, 0);
  if (!progress_text.empty()) {
    // Every rank parses the same text, so all agree; a damaged file (it is written atomically, so
    // only by hand) means starting over, never a crash.
    try {
      const int64_t count = restore_progress(progress_text, progress_file.string(), config_hash, results, restored);
      if (count >= 0) spdlog::info("generate: resuming, {} of {} prompts finished before", count, n);
      else spdlog::info("generate: {} belongs to another config; starting over", progress_file.string());
    } catch (const std::exception& e) {
      spdlog::warn("generate: ignoring unreadable progress file ({}); starting over", error_one_line(e.what()));
      results.assign(results.size(), std::nullopt);
      restored.assign(restored.size(), 0);
    }
  }

  // This replica's share of the remaining prompts, longest first (batches of similar length).
  std::vector<int64_t> remaining, costs;
  for (int64_t i = 0; i < n; ++i)
    if (!restored[static_cast<size_t>(i)]) {
      remaining.push_back(i);
      costs.push_back(static_cast<int64_t>(prompt_ids[static_cast<size_t>(i)].size()) + cfg.generate.max_new_tokens);
    }
  const Range share = partition_contiguous(costs, rt.n_replicas)[static_cast<size_t>(rt.replica)];
  std::vector<int64_t> mine(remaining.begin() + share.begin, remaining.begin() + share.end);
  std::stable_sort(mine.begin(), mine.end(), [&](int64_t a, int64_t b) {
    return prompt_ids[static_cast<size_t>(a)].size() > prompt_ids[static_cast<size_t>(b)].size();
  });
  const int64_t bs = cfg.generate.batch_size;
  const int64_t my_batches = (static_cast<int64_t>(mine.size()) + bs - 1) / bs;
  // Which rank writes a prompt's rows: the first stage of the replica that generated it; rank 0 for
  // prompts restored from the progress file.
  auto holds = [&](int64_t i) {
    return restored[static_cast<size_t>(i)] ? rt.rank == 0 : (rt.first_stage() && results[static_cast<size_t>(i)].has_value());
  };

  Pipeline pipeline(*m.model, rt);
  const int64_t micro = cfg.parallel.micro_batches > 0 ? cfg.parallel.micro_batches : rt.n_stages;
  int64_t new_tokens = 0;
  const auto t0 = std::chrono::steady_clock::now();
  auto work = [&](int64_t b) {
    std::vector<GenerateRequest> batch;
    const size_t begin = static_cast<size_t>(b * bs), end = std::min(mine.size(), begin + static_cast<size_t>(bs));
    for (size_t k = begin; k < end; ++k) batch.push_back({prompt_ids[static_cast<size_t>(mine[k])], stream_id_of(prompts[static_cast<size_t>(mine[k])].id)});
    std::vector<GenerateResult> out =
        rt.n_stages > 1 ? generate_pipelined(pipeline, batch, gen, micro) : generate_batch(*m.model, batch, gen);
    for (size_t k = begin; k < end; ++k) {
      new_tokens += static_cast<int64_t>(out[k - begin].tokens.size());
      results[static_cast<size_t>(mine[k])] = std::move(out[k - begin]);
    }
  };
  auto rate = [&] {
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return fmt::format("{:.1f} new tok/s on this rank", static_cast<double>(new_tokens) / std::max(secs, 1e-9));
  };
  // On a stop request: every finished prompt (held results) to rank 0, which commits the progress file.
  auto save = [&] {
    std::vector<std::string> lines;
    for (int64_t i = 0; i < n; ++i)
      if (holds(i)) lines.push_back(progress_line(i, *results[static_cast<size_t>(i)]));
    std::vector<std::string> all = rt.world_comm.gather_strings(lines, 0);
    if (rt.rank == 0) {
      std::string text = json{{"config_sha256", config_hash}}.dump() + "\n";
      for (const auto& l : all) text += l + "\n";
      fs::create_directories(out_dir);
      write_file_atomic(progress_file, text);
      spdlog::info("generate: saved {} finished prompts of {} to {}", all.size(), n, progress_file.string());
    }
    rt.world_comm.barrier();
  };
  BatchLoop loop;
  loop.work = work;
  loop.save = save;
  loop.what = "generate";
  loop.progress_seconds = cfg.log.progress_seconds;
  loop.detail = rate;
  run_batches(rt, my_batches, loop);

  // ---- Output: numeric datasets written collectively, strings and provenance by rank 0, then commit.
  std::vector<int64_t> n_new(static_cast<size_t>(n), 0);
  for (int64_t i = 0; i < n; ++i)
    if (holds(i)) n_new[static_cast<size_t>(i)] = static_cast<int64_t>(results[static_cast<size_t>(i)]->tokens.size());
  rt.world_comm.allreduce_sum(std::span<int64_t>(n_new));
  std::vector<int64_t> token_offset(static_cast<size_t>(n) + 1, 0), prompt_token_offset(static_cast<size_t>(n) + 1, 0);
  for (int64_t i = 0; i < n; ++i) {
    token_offset[static_cast<size_t>(i) + 1] = token_offset[static_cast<size_t>(i)] + n_new[static_cast<size_t>(i)];
    prompt_token_offset[static_cast<size_t>(i) + 1] =
        prompt_token_offset[static_cast<size_t>(i)] + static_cast<int64_t>(prompt_ids[static_cast<size_t>(i)].size());
  }
  const auto think_close = m.tokenizer->token_to_id("</think>");

  using h5::DType;
  const std::vector<int64_t> per_prompt = {n};
  std::vector<h5::DatasetSpec> specs = {
      {"/prompts/n_prompt_tokens", DType::I64, per_prompt, {"prompt"}, {{"description", "tokens of the formatted prompt"}}},
      {"/prompts/n_new_tokens", DType::I64, per_prompt, {"prompt"}, {{"description", "generated tokens (including EOS)"}}},
      {"/prompts/n_thinking_tokens", DType::I64, per_prompt, {"prompt"}, {{"description", "generated tokens before </think> (all if unclosed)"}}},
      {"/prompts/thinking_closed", DType::U8, per_prompt, {"prompt"}, {{"description", "1 if the trace closed </think>"}}},
      {"/prompts/token_offset", DType::I64, per_prompt, {"prompt"}, {{"description", "first row of this prompt in /tokens"}}},
      {"/prompts/prompt_token_offset", DType::I64, per_prompt, {"prompt"}, {{"description", "first row of this prompt in /prompt_tokens"}}},
      {"/tokens/id", DType::I32, {token_offset.back()}, {"token"}, {{"description", "generated token ids of every prompt, back to back"}}},
      {"/tokens/prompt_index", DType::I64, {token_offset.back()}, {"token"}, {{"description", "row in /prompts"}}},
      {"/prompt_tokens/id", DType::I32, {prompt_token_offset.back()}, {"prompt_token"}, {{"description", "formatted prompt token ids, back to back"}}},
  };
  std::vector<int64_t> rows;
  for (int64_t i = 0; i < n; ++i)
    if (holds(i)) rows.push_back(i);
  std::vector<int64_t> c_prompt, c_new, c_think, c_off, c_poff, tok_index;
  std::vector<uint8_t> c_closed;
  std::vector<int32_t> tok_ids, ptok_ids;
  std::vector<h5::RowRange> tok_ranges, ptok_ranges;
  for (int64_t i : rows) {
    const GenerateResult& r = *results[static_cast<size_t>(i)];
    const auto& p = prompt_ids[static_cast<size_t>(i)];
    const ThinkingLength thinking = thinking_length(r.tokens, think_close);
    c_prompt.push_back(static_cast<int64_t>(p.size()));
    c_new.push_back(static_cast<int64_t>(r.tokens.size()));
    c_think.push_back(thinking.tokens);
    c_closed.push_back(thinking.closed ? 1 : 0);
    c_off.push_back(token_offset[static_cast<size_t>(i)]);
    c_poff.push_back(prompt_token_offset[static_cast<size_t>(i)]);
    tok_ids.insert(tok_ids.end(), r.tokens.begin(), r.tokens.end());
    tok_index.insert(tok_index.end(), r.tokens.size(), i);
    if (!r.tokens.empty()) tok_ranges.push_back({token_offset[static_cast<size_t>(i)], static_cast<int64_t>(r.tokens.size())});
    ptok_ids.insert(ptok_ids.end(), p.begin(), p.end());
    ptok_ranges.push_back({prompt_token_offset[static_cast<size_t>(i)], static_cast<int64_t>(p.size())});
  }
  const fs::path tmp = out_dir / "generations.h5.partial";
  if (rt.rank == 0) fs::create_directories(out_dir);
  rt.world_comm.barrier();
  {
    h5::ParallelFile f(tmp, rt.world_comm.get());
    for (const auto& s : specs) f.create(s);
    const auto prompt_ranges = row_ranges(rows);
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
  std::vector<std::string> lines;
  for (int64_t i : rows) lines.push_back(progress_line(i, *results[static_cast<size_t>(i)]));
  const std::vector<std::string> gathered = rt.world_comm.gather_strings(lines, 0);
  if (rt.rank == 0) {
    std::vector<std::string> text(static_cast<size_t>(n)), thinking(static_cast<size_t>(n)), answer(static_cast<size_t>(n)),
        finish(static_cast<size_t>(n)), ids(static_cast<size_t>(n)), raw(static_cast<size_t>(n)), reference(static_cast<size_t>(n));
    std::vector<std::string> jsonl_rows(static_cast<size_t>(n));
    for (const auto& l : gathered) {
      const json row = json::parse(l);
      const int64_t i = row["index"].get<int64_t>();
      const auto tokens = row["token_ids"].get<std::vector<int32_t>>();
      const size_t k = static_cast<size_t>(i);
      text[k] = m.tokenizer->decode(tokens, /*skip_special_tokens=*/false);
      const ThinkSplit parts = split_thinking(m.tokenizer->decode(tokens, /*skip_special_tokens=*/true));
      thinking[k] = parts.thinking;
      answer[k] = parts.answer;
      finish[k] = row["finish_reason"].get<std::string>();
      const int64_t n_thinking = thinking_length(tokens, think_close).tokens;
      jsonl_rows[k] = json{{"id", prompts[k].id},
                           {"prompt", prompts[k].text},
                           {"prompt_text", prompt_texts[k]},
                           {"prompt_tokens", prompt_ids[k].size()},
                           {"token_ids", tokens},
                           {"text", text[k]},
                           {"thinking", parts.thinking},
                           {"answer_text", parts.answer},
                           {"thinking_closed", parts.closed},
                           {"n_new_tokens", tokens.size()},
                           {"n_thinking_tokens", n_thinking},
                           {"finish_reason", finish[k]},
                           {"reference_answer", prompts[k].answer}}
                          .dump(-1, ' ', false, json::error_handler_t::replace);
    }
    for (int64_t i = 0; i < n; ++i) {
      ids[static_cast<size_t>(i)] = prompts[static_cast<size_t>(i)].id;
      raw[static_cast<size_t>(i)] = prompts[static_cast<size_t>(i)].text;
      reference[static_cast<size_t>(i)] = prompts[static_cast<size_t>(i)].answer;
    }
    const json prov = stage_provenance(cfg, rt, "generate", config_hash, m.dir);
    {
      h5::SerialFile f(tmp, h5::SerialFile::Mode::READ_WRITE);
      f.write_strings("/prompts/id", ids, "prompt");
      f.write_strings("/prompts/user_prompt", raw, "prompt");
      f.write_strings("/prompts/prompt_text", prompt_texts, "prompt");
      f.write_strings("/prompts/reference_answer", reference, "prompt");
      f.write_strings("/prompts/text", text, "prompt");
      f.write_strings("/prompts/thinking", thinking, "prompt");
      f.write_strings("/prompts/answer_text", answer, "prompt");
      f.write_strings("/prompts/finish_reason", finish, "prompt");
      for (const auto& s : specs) f.describe(s);
      write_h5_provenance(f, prov, FORMAT);
    }
    std::string jsonl;
    for (const auto& r : jsonl_rows) jsonl += r + "\n";
    write_file_atomic(fs::path(cfg.run.dir) / "config.resolved.ini", config_to_ini(cfg));
    write_file_atomic(out_dir / "provenance.json", prov.dump(2));
    write_file_atomic(out_jsonl, jsonl);
    h5::commit_h5(tmp, out_h5, FORMAT, specs, config_hash);
    fs::remove(progress_file);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    spdlog::info("generate: wrote {} traces ({} new tokens in {:.1f} s on {} ranks) to {} and {}", n, token_offset.back(), secs, rt.world,
                 out_h5.string(), out_jsonl.filename().string());
  }
  rt.world_comm.barrier();
}

}  // namespace ts::stages::generate
