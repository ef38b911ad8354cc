// Stage `generate`: thinking traces from a prompt dataset.
//   in : model.path (checkpoint + tokenizer.json), data.prompts (JSONL)
//   out: <run.dir>/generate/generations.jsonl (+ .done marker with the config hash), provenance.json
// Prompts are batched by token length (results do not depend on the batch; see model/generate.h).
// A rerun whose marker matches the config hash skips the work.
#include <ATen/ATen.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "core/provenance.h"
#include "core/sha256.h"
#include "io/prompts.h"
#include "model/generate.h"
#include "stages/stages.h"
#include "tokenizer/chat_format.h"
#include "tokenizer/tokenizer.h"

namespace ts::stages::generate {
namespace fs = std::filesystem;

namespace {

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

}  // namespace

void run(const Config& cfg, Runtime& rt) {
  if (cfg.model.path.empty()) throw InputError("<config>", "model.path", "no checkpoint directory given");
  if (cfg.data.prompts.empty()) throw InputError("<config>", "data.prompts", "no prompts file given");
  const fs::path out_dir = fs::path(cfg.run.dir) / "generate";
  const fs::path out_file = out_dir / "generations.jsonl";

  const std::string prompts_sha256 = sha256_file(cfg.data.prompts);
  const std::string config_hash = sha256_hex(config_to_ini(cfg, {"model", "data", "generate"}) + prompts_sha256 + git_commit());
  if (done_marker_matches(out_file, config_hash)) {
    spdlog::info("generate: {} is complete for this config ({}), skipping", out_file.string(), config_hash.substr(0, 12));
    return;
  }
  if (std::filesystem::exists(done_marker_path(out_file))) spdlog::info("generate: existing output has another config hash; regenerating");

  // Inputs first: every input error surfaces before any work or output.
  const std::vector<Prompt> prompts =
      prompts_read_jsonl(cfg.data.prompts, cfg.data.prompt_field, cfg.data.id_field, cfg.data.answer_field, cfg.data.limit);
  const fs::path model_dir = cfg.model.path;
  const Tokenizer tokenizer = Tokenizer::from_file(model_dir / "tokenizer.json");
  const ChatFormat format = chat_format_from_name(cfg.generate.chat_format);
  CheckpointFiles ck = checkpoint_open(model_dir);
  for (const auto& name : ck.unexpected) spdlog::warn("checkpoint tensor {} is not used by the model", name);
  LoadOptions load;
  load.device = rt.device;
  load.dtype = dtype_resolve(cfg.model.dtype, ck.config, rt.device);
  Transformer model(weights_load(ck, load));
  spdlog::info("model {}: {} layers, d_model {}, {} heads ({} kv), vocab {}, {} MB of parameters as {} on {}", model_dir.string(),
               ck.config.n_layer, ck.config.d_model, ck.config.n_head, ck.config.n_kv_head, ck.config.n_vocab,
               model.weights().parameter_bytes >> 20, c10::toString(load.dtype), rt.device.str());

  GenerateOptions gen;
  gen.max_new_tokens = cfg.generate.max_new_tokens;
  gen.sampling = {cfg.generate.temperature, cfg.generate.top_p, cfg.generate.top_k};
  gen.seed = cfg.generate.seed;
  gen.eos_ids = ck.config.eos_token_ids;
  const fs::path gen_config = model_dir / "generation_config.json";
  if (fs::exists(gen_config)) {
    json g = json_read_file(gen_config);
    if (g.contains("eos_token_id") && !g["eos_token_id"].is_null()) gen.eos_ids = json_token_ids(g, "eos_token_id", gen_config.string());
  }
  gen.stop_strings = cfg.generate.stop;
  gen.decode = [&tokenizer](std::span<const int32_t> ids) { return tokenizer.decode(ids); };
  gen.pad_id = ck.config.pad_token_id >= 0 ? ck.config.pad_token_id : (gen.eos_ids.empty() ? 0 : gen.eos_ids[0]);
  const auto think_close = tokenizer.token_to_id("</think>");

  std::vector<std::string> prompt_texts;
  std::vector<std::vector<int32_t>> prompt_ids;
  for (const auto& p : prompts) {
    prompt_texts.push_back(chat_format_apply(format, p.text, cfg.generate.system));
    prompt_ids.push_back(tokenizer.encode_ids(prompt_texts.back()));
    if (prompt_ids.back().empty()) throw InputError(cfg.data.prompts, "prompt " + p.id, "prompt encodes to no tokens");
  }
  // Longest first, so batches hold prompts of similar length (less padding).
  std::vector<size_t> order(prompts.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return prompt_ids[a].size() > prompt_ids[b].size(); });

  std::vector<GenerateResult> results(prompts.size());
  Progress progress("generate", static_cast<int64_t>(prompts.size()), cfg.log.progress_seconds);
  int64_t done = 0, new_tokens = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t start = 0; start < order.size(); start += static_cast<size_t>(cfg.generate.batch_size)) {
    const size_t end = std::min(order.size(), start + static_cast<size_t>(cfg.generate.batch_size));
    std::vector<GenerateRequest> batch;
    for (size_t i = start; i < end; ++i) batch.push_back({prompt_ids[order[i]], stream_id_of(prompts[order[i]].id)});
    std::vector<GenerateResult> out = generate_batch(model, batch, gen);
    for (size_t i = start; i < end; ++i) {
      new_tokens += static_cast<int64_t>(out[i - start].tokens.size());
      results[order[i]] = std::move(out[i - start]);
    }
    done += static_cast<int64_t>(end - start);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    progress.update(done, fmt::format("{:.1f} new tok/s", static_cast<double>(new_tokens) / secs));
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  progress.finish(fmt::format("{:.1f} new tok/s", static_cast<double>(new_tokens) / secs));

  std::string jsonl;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const GenerateResult& r = results[i];
    const std::string text = tokenizer.decode(r.tokens, /*skip_special_tokens=*/false);
    const ThinkSplit parts = split_thinking(tokenizer.decode(r.tokens, /*skip_special_tokens=*/true));
    int64_t thinking_tokens = static_cast<int64_t>(r.tokens.size());
    if (think_close) {
      auto it = std::find(r.tokens.begin(), r.tokens.end(), *think_close);
      if (it != r.tokens.end()) thinking_tokens = it - r.tokens.begin();
    }
    json row = {{"id", prompts[i].id},
                {"prompt", prompts[i].text},
                {"prompt_text", prompt_texts[i]},
                {"prompt_tokens", prompt_ids[i].size()},
                {"token_ids", r.tokens},
                {"text", text},
                {"thinking", parts.thinking},
                {"answer_text", parts.answer},
                {"thinking_closed", parts.closed},
                {"n_new_tokens", r.tokens.size()},
                {"n_thinking_tokens", thinking_tokens},
                {"finish_reason", finish_reason_name(r.finish)},
                {"reference_answer", prompts[i].answer}};
    jsonl += row.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  }
  fs::create_directories(out_dir);
  write_file_atomic(fs::path(cfg.run.dir) / "config.resolved.ini", config_to_ini(cfg));
  json prov = provenance_json(cfg, config_hash);
  prov["stage"] = "generate";
  prov["model_config_sha256"] = sha256_file(model_dir / "config.json");
  prov["tokenizer_sha256"] = sha256_file(model_dir / "tokenizer.json");
  prov["prompts_sha256"] = prompts_sha256;
  prov["compute_dtype"] = c10::toString(load.dtype);
  prov["device"] = rt.device.str();
  write_file_atomic(out_dir / "provenance.json", prov.dump(2));
  write_file_atomic(out_file, jsonl);
  done_marker_write(out_file, config_hash);
  spdlog::info("generate: wrote {} traces ({} new tokens, {:.1f} tok/s) to {}", prompts.size(), new_tokens,
               static_cast<double>(new_tokens) / secs, out_file.string());
}

}  // namespace ts::stages::generate
