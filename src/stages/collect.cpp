// Stage `collect`: activations at named hook points (TransformerLens names), written to one parallel
// HDF5 file by every rank of the task.
//   in : model.path; collect.source = prompts (data.prompts, chat-formatted) or generations
//        (collect.input, default <run.dir>/generate/generations.jsonl: prompt + generated tokens)
//   out: <run.dir>/collect/activations.h5 (format thinksteer.activations, layout in README.md),
//        provenance.json, .done marker with the config hash
// Rows: one per stored position (collect.positions = all | last | prompt | generated tokens) or one
// per span (spans: the mean over the tokens that overlap the span, accumulated in fp64). Row order is
// the input order whatever the rank layout: sequence s's rows start at the exclusive scan (prefix sum)
// of the row counts before it. Replicas take contiguous shares of the sequences balanced by token
// count; pipeline stages each write the hooks of the layers they hold. Every round (one batch per
// rank) ends with one collective write per dataset, ranks without rows taking part.
// Resumable: on a stop request the file is closed cleanly and the finished sequences are recorded in
// activations.h5.progress.json; a rerun reopens the partial file and does only the rest. A rank
// killed mid-write leaves only activations.h5.partial without a progress record: the rerun starts over.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "core/sha256.h"
#include "dist/pipeline.h"
#include "dist/stop.h"
#include "io/h5writer.h"
#include "stages/common.h"
#include "stages/stages.h"

namespace ts::stages::collect {
namespace fs = std::filesystem;

namespace {

constexpr const char* FORMAT = "thinksteer.activations";

// One sequence to run: token ids with their code-point ranges in `text`.
struct Sequence {
  std::string id, text;
  std::vector<int32_t> ids;
  std::vector<std::pair<int64_t, int64_t>> offsets;
  int64_t n_prompt = 0;      // tokens of the (formatted) prompt
  std::vector<PromptSpan> spans;  // in code points of text
};

// One stored row: a token (begin + 1 == end) or the mean over tokens [begin, end) of a span.
struct Row {
  int64_t token_begin = 0, token_end = 0;
  std::string label;
};

// Code points of `prefix` in chat_format_apply(format, text): the formats put the user text between a
// prefix and a suffix; a sentinel locates it.
int64_t chat_prefix_code_points(ChatFormat format, const std::string& system) {
  const std::string sentinel = "\x01thinksteer\x01";
  const std::string formatted = chat_format_apply(format, sentinel, system);
  return utf8_length(std::string_view(formatted).substr(0, formatted.find(sentinel)));
}

std::vector<Sequence> load_sequences(const Config& cfg, const Tokenizer& tok) {
  const bool spans = cfg.collect.positions == "spans";
  std::vector<Sequence> out;
  const ChatFormat format = chat_format_from_name(cfg.generate.chat_format);
  if (cfg.collect.source == "prompts") {
    const int64_t prefix = chat_prefix_code_points(format, cfg.generate.system);
    for (const Prompt& p : load_prompts(cfg, spans ? cfg.collect.spans_field : "")) {
      Sequence s;
      s.id = p.id;
      s.text = chat_format_apply(format, p.text, cfg.generate.system);
      Encoding e = tok.encode(s.text);
      s.ids = std::move(e.ids);
      s.offsets = std::move(e.offsets);
      s.n_prompt = static_cast<int64_t>(s.ids.size());
      for (const auto& sp : p.spans) s.spans.push_back({sp.label, prefix + sp.begin, prefix + sp.end});
      if (s.ids.empty()) throw InputError(cfg.data.prompts, "prompt " + p.id, "prompt encodes to no tokens");
      out.push_back(std::move(s));
    }
    return out;
  }
  const fs::path file = cfg.collect.input.empty() ? fs::path(cfg.run.dir) / "generate" / "generations.jsonl" : fs::path(cfg.collect.input);
  std::ifstream in(file);
  if (!in) throw InputError(file.string(), "collect.input", "cannot open generations file (run `thinksteer generate` first)");
  jsonl_for_each(in, file.string(), [&](const json& row, const std::string& where, int64_t) {
    Sequence s;
    s.id = json_string(row, "id", where);
    const std::string prompt_text = json_string(row, "prompt_text", where);
    const json& gen = json_require(row, "token_ids", where);
    if (!gen.is_array()) throw InputError(where, "token_ids", "must be an array of token ids");
    std::vector<int32_t> generated;
    for (const auto& t : gen) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= tok.vocab_size())
        throw InputError(where, "token_ids", "not a token id of this tokenizer: " + t.dump());
      generated.push_back(t.get<int32_t>());
    }
    TokenSequence q = generation_sequence(tok, prompt_text, generated);
    s.ids = std::move(q.ids);
    s.offsets = std::move(q.offsets);
    s.n_prompt = q.n_prompt;
    s.text = std::move(q.text);
    const int64_t base = q.prompt_chars;
    if (spans)  // spans of generations are code points of the generated text ("text")
      for (const PromptSpan& sp : spans_parse(row, cfg.collect.spans_field, utf8_length(s.text) - base, where))
        s.spans.push_back({sp.label, base + sp.begin, base + sp.end});
    if (s.ids.empty()) throw InputError(where, "prompt_text", "sequence has no tokens");
    out.push_back(std::move(s));
    return cfg.data.limit <= 0 || static_cast<int64_t>(out.size()) < cfg.data.limit;
  });
  if (out.empty()) throw InputError(file.string(), "collect.input", "no generations in file");
  return out;
}

std::vector<Row> rows_of(const Sequence& s, const std::string& positions) {
  std::vector<Row> rows;
  const int64_t T = static_cast<int64_t>(s.ids.size());
  if (positions == "all" || positions == "prompt" || positions == "generated") {
    const int64_t b = positions == "generated" ? s.n_prompt : 0, e = positions == "prompt" ? s.n_prompt : T;
    for (int64_t t = b; t < e; ++t) rows.push_back({t, t + 1, ""});
  } else if (positions == "last") {
    rows.push_back({T - 1, T, ""});
  } else {  // spans: the tokens whose character range overlaps the span
    for (const PromptSpan& sp : s.spans) {
      int64_t b = -1, e = -1;
      for (int64_t t = 0; t < T; ++t) {
        const auto [cb, ce] = s.offsets[static_cast<size_t>(t)];
        if (ce > sp.begin && cb < sp.end) {
          if (b < 0) b = t;
          e = t + 1;
        }
      }
      if (b >= 0) rows.push_back({b, e, sp.label});
    }
  }
  return rows;
}

// The hooks to store: names from collect.hooks with blocks.* expanded over collect.layers.
std::vector<HookPoint> resolve_hooks(const Config& cfg, int64_t n_layer) {
  std::vector<int64_t> layers;
  for (const auto& l : cfg.collect.layers) {
    const int64_t v = std::stoll(l);
    if (v >= n_layer) throw InputError("<config>", "collect.layers", "layer " + l + " >= the model's " + std::to_string(n_layer) + " layers");
    layers.push_back(v);
  }
  if (layers.empty()) {
    layers.resize(static_cast<size_t>(n_layer));
    std::iota(layers.begin(), layers.end(), int64_t{0});
  }
  std::vector<HookPoint> out;
  for (const auto& name : cfg.collect.hooks) {
    if (name.rfind("blocks.*.", 0) == 0) {
      for (int64_t l : layers) out.push_back(hook_parse("blocks." + std::to_string(l) + name.substr(8), n_layer));
    } else {
      out.push_back(hook_parse(name, n_layer));
    }
  }
  std::sort(out.begin(), out.end(), [](const HookPoint& a, const HookPoint& b) { return a.layer != b.layer ? a.layer < b.layer : a.site < b.site; });
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

at::Tensor to_storage(const at::Tensor& x, h5::DType dtype) {
  switch (dtype) {
    case h5::DType::F16: return x.to(at::kHalf).contiguous();
    case h5::DType::BF16: return x.to(at::kBFloat16).contiguous().view(at::kShort);  // raw bits, stored as uint16
    default: return x.to(at::kFloat).contiguous();
  }
}

}  // namespace

void run(const Config& cfg, Runtime& rt) {
  const fs::path out_dir = fs::path(cfg.run.dir) / "collect";
  const fs::path out_h5 = out_dir / "activations.h5";
  const fs::path tmp = out_dir / "activations.h5.partial", progress_file = out_dir / "activations.h5.progress.json";
  std::string inputs = cfg.collect.source == "prompts" ? prompts_identity(cfg) : "";
  if (cfg.collect.source == "generations") {
    const fs::path file = cfg.collect.input.empty() ? fs::path(cfg.run.dir) / "generate" / "generations.jsonl" : fs::path(cfg.collect.input);
    if (!fs::exists(file)) throw InputError(file.string(), "collect.input", "no generations file (run `thinksteer generate` first)");
    inputs = sha256_file(file);
  }
  const std::string config_hash =
      output_config_hash(cfg, {"model", "data", "generate", "collect", "output"}, inputs + "\n" + checkpoint_identity(cfg.model.path));
  if (rt.world_comm.allreduce_max(rt.rank == 0 && done_marker_matches(out_h5, config_hash) ? 1 : 0)) {
    spdlog::info("collect: {} is complete for this config ({}), skipping", out_h5.string(), config_hash.substr(0, 12));
    return;
  }
  const h5::DType dtype = cfg.output.dtype == "float16" ? h5::DType::F16 : cfg.output.dtype == "bfloat16" ? h5::DType::BF16 : h5::DType::F32;
  if (cfg.output.compression > 0 && !h5::parallel_compression_supported())
    throw InputError("<config>", "output.compression", "this HDF5 build cannot write compressed datasets in parallel; use 0");

  // Inputs, rows and the model slice of this rank.
  StageModel m = load_stage_model(cfg, rt);
  const std::vector<Sequence> seqs = load_sequences(cfg, *m.tokenizer);
  const int64_t n = static_cast<int64_t>(seqs.size());
  const std::vector<HookPoint> hooks = resolve_hooks(cfg, m.config.n_layer);
  std::vector<std::vector<Row>> rows(static_cast<size_t>(n));
  std::vector<int64_t> row_offset(static_cast<size_t>(n) + 1, 0);
  for (int64_t s = 0; s < n; ++s) {
    rows[static_cast<size_t>(s)] = rows_of(seqs[static_cast<size_t>(s)], cfg.collect.positions);
    row_offset[static_cast<size_t>(s) + 1] = row_offset[static_cast<size_t>(s)] + static_cast<int64_t>(rows[static_cast<size_t>(s)].size());
  }
  const int64_t n_rows = row_offset.back();
  if (n_rows == 0) throw InputError(cfg.data.prompts, "collect.positions", "no rows to store for positions = " + cfg.collect.positions);

  // Datasets: one per hook, the same on every rank (created collectively).
  const ModelConfig& c = m.config;
  std::vector<h5::DatasetSpec> specs;
  for (const HookPoint& h : hooks) {
    h5::DatasetSpec s;
    s.path = "/activations/" + hook_name(h);
    s.dtype = dtype;
    if (h.site == HookSite::ATTN_Z) {
      s.shape = {n_rows, c.n_head, c.d_head};
      s.dims = {"row", "head", "d_head"};
    } else {
      s.shape = {n_rows, c.d_model};
      s.dims = {"row", "d_model"};
    }
    s.attrs = {{"hook", hook_name(h)},
               {"layer", h.site == HookSite::LN_FINAL ? "" : std::to_string(h.layer)},
               {"positions", cfg.collect.positions},
               {"description", cfg.collect.positions == "spans" ? "mean over each span's tokens (fp64 accumulation)" : "activation at the row's token"}};
    specs.push_back(std::move(s));
  }
  auto held = [&](const HookPoint& h) {
    return h.site == HookSite::LN_FINAL ? rt.last_stage() : (h.layer >= m.layers.begin && h.layer < m.layers.end);
  };

  // Resume from a clean stop with the same config, else start over.
  std::vector<int64_t> done(static_cast<size_t>(n), 0);
  int64_t resume = 0;
  if (rt.rank == 0 && fs::exists(progress_file) && fs::exists(tmp)) {
    try {  // a damaged record (written atomically, so only by hand) means starting over
      const json p = json_read_file(progress_file);
      if (p.value("config_sha256", "") == config_hash) {
        for (int64_t s : p.at("done").get<std::vector<int64_t>>())
          if (s >= 0 && s < n) done[static_cast<size_t>(s)] = 1;
        resume = 1;
      }
    } catch (const std::exception& e) {
      spdlog::warn("collect: ignoring unreadable progress record ({}); starting over", error_one_line(e.what()));
      std::fill(done.begin(), done.end(), 0);
    }
  }
  resume = rt.world_comm.allreduce_max(resume);
  rt.world_comm.bcast(std::span<int64_t>(done), 0);
  if (rt.rank == 0) {
    fs::create_directories(out_dir);
    fs::remove(progress_file);  // from here on, a crash leaves the partial file without a valid record
  }
  rt.world_comm.barrier();
  if (resume) spdlog::info("collect: resuming, {} of {} sequences stored before", std::accumulate(done.begin(), done.end(), int64_t{0}), n);
  h5::ParallelFile file(tmp, rt.world_comm.get(), resume != 0);
  for (const auto& s : specs) file.create(s, static_cast<int>(cfg.output.compression));

  // This replica's share of the remaining sequences, longest first.
  std::vector<int64_t> remaining, costs;
  for (int64_t s = 0; s < n; ++s)
    if (!done[static_cast<size_t>(s)]) {
      remaining.push_back(s);
      costs.push_back(static_cast<int64_t>(seqs[static_cast<size_t>(s)].ids.size()));
    }
  const Range share = partition_contiguous(costs, rt.n_replicas)[static_cast<size_t>(rt.replica)];
  std::vector<int64_t> mine(remaining.begin() + share.begin, remaining.begin() + share.end);
  std::stable_sort(mine.begin(), mine.end(), [&](int64_t a, int64_t b) { return seqs[static_cast<size_t>(a)].ids.size() > seqs[static_cast<size_t>(b)].ids.size(); });
  const int64_t bs = cfg.collect.batch_size;
  const int64_t my_batches = (static_cast<int64_t>(mine.size()) + bs - 1) / bs;

  // Per round: the rows this rank computed, per hook, waiting for the collective write.
  std::vector<std::vector<at::Tensor>> pending(hooks.size());
  std::vector<int64_t> pending_seqs;
  Pipeline pipeline(*m.model, rt);
  const bool need_logits = std::any_of(hooks.begin(), hooks.end(), [](const HookPoint& h) { return h.site == HookSite::LN_FINAL; });
  const int64_t micro = cfg.parallel.micro_batches > 0 ? cfg.parallel.micro_batches : rt.n_stages;
  int64_t tokens_done = 0;
  double compute_s = 0, write_s = 0;
  int64_t pending_bytes = 0;
  const auto t0 = std::chrono::steady_clock::now();

  auto work = [&](int64_t b) {
    c10::InferenceMode inference;
    const auto tb = std::chrono::steady_clock::now();
    const size_t begin = static_cast<size_t>(b * bs), end = std::min(mine.size(), begin + static_cast<size_t>(bs));
    const std::vector<int64_t> batch(mine.begin() + static_cast<std::ptrdiff_t>(begin), mine.begin() + static_cast<std::ptrdiff_t>(end));
    for (const Range& mb : even_ranges(static_cast<int64_t>(batch.size()), rt.n_stages > 1 ? micro : 1)) {
      // Right padding: with causal attention real tokens never see the padding after them.
      const int64_t B = mb.size();
      int64_t T = 0;
      for (int64_t k = mb.begin; k < mb.end; ++k) T = std::max<int64_t>(T, static_cast<int64_t>(seqs[static_cast<size_t>(batch[static_cast<size_t>(k)])].ids.size()));
      at::Tensor tokens = at::full({B, T}, m.pad_id, at::kLong);
      auto tok = tokens.accessor<int64_t, 2>();
      std::vector<int64_t> gather;                     // single-token rows: b * T + t
      std::vector<std::tuple<int64_t, int64_t, int64_t>> span_rows;  // (b, t0, t1)
      for (int64_t k = mb.begin; k < mb.end; ++k) {
        const int64_t s = batch[static_cast<size_t>(k)], bi = k - mb.begin;
        const auto& ids = seqs[static_cast<size_t>(s)].ids;
        for (size_t t = 0; t < ids.size(); ++t) tok[bi][static_cast<int64_t>(t)] = ids[t];
        for (const Row& r : rows[static_cast<size_t>(s)]) {
          if (cfg.collect.positions == "spans") span_rows.emplace_back(bi, r.token_begin, r.token_end);
          else gather.push_back(bi * T + r.token_begin);
        }
        tokens_done += static_cast<int64_t>(ids.size());
      }
      at::Tensor index, weights;
      if (cfg.collect.positions == "spans") {
        weights = at::zeros({static_cast<int64_t>(span_rows.size()), B * T}, at::kDouble);
        for (size_t r = 0; r < span_rows.size(); ++r) {
          const auto [bi, t0s, t1s] = span_rows[r];
          weights[static_cast<int64_t>(r)].narrow(0, bi * T + t0s, t1s - t0s).fill_(1.0 / static_cast<double>(t1s - t0s));
        }
        weights = weights.to(rt.device);
      } else {
        index = at::from_blob(gather.data(), {static_cast<int64_t>(gather.size())}, at::kLong).clone().to(rt.device);
      }
      HookSet hook_set(c.n_layer);
      for (size_t h = 0; h < hooks.size(); ++h) {
        if (!held(hooks[h])) continue;
        hook_set.add_fn(hooks[h], [&, h](const at::Tensor& x, const HookContext&) {
          at::Tensor flat = x.reshape({x.size(0) * x.size(1), -1});  // [B*T, D] (attn.hook_z: [B*T, H*E])
          at::Tensor out = weights.defined() ? at::matmul(weights, flat.to(at::kDouble)) : flat.index_select(0, index);
          if (hooks[h].site == HookSite::ATTN_Z) out = out.view({out.size(0), c.n_head, c.d_head});
          pending[h].push_back(to_storage(out.to(at::kCPU), dtype));
          pending_bytes += static_cast<int64_t>(pending[h].back().nbytes());
          return x;
        });
      }
      ForwardArgs args;
      args.tokens = tokens.to(rt.device);
      args.positions = at::arange(T, at::TensorOptions().dtype(at::kLong)).unsqueeze(0).expand({B, T}).contiguous().to(rt.device);
      args.hooks = &hook_set;
      args.logits = need_logits ? LogitsMode::LAST : LogitsMode::NONE;
      if (rt.n_stages > 1) pipeline.forward(args);
      else m.model->forward(args);
    }
    pending_seqs.insert(pending_seqs.end(), batch.begin(), batch.end());
    compute_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - tb).count();
  };
  // One write per dataset, in the same order on every rank, handed to the writer thread (the next
  // rows are computed meanwhile); the rows go to their sequence's offset.
  h5::BackgroundWriter writer(file, rt.rank);
  auto flush = [&] {
    const auto tw = std::chrono::steady_clock::now();
    std::vector<h5::RowRange> ranges;
    for (int64_t s : pending_seqs)  // pending rows are in batch order, so are the ranges
      if (row_offset[static_cast<size_t>(s) + 1] > row_offset[static_cast<size_t>(s)])
        ranges.push_back({row_offset[static_cast<size_t>(s)], row_offset[static_cast<size_t>(s) + 1] - row_offset[static_cast<size_t>(s)]});
    std::vector<h5::RowWrite> writes;
    for (size_t h = 0; h < hooks.size(); ++h) {
      auto data = std::make_shared<at::Tensor>(pending[h].empty() ? at::Tensor() : at::cat(pending[h], 0));
      const bool mine_to_write = held(hooks[h]) && data->defined();
      writes.push_back({specs[h].path, mine_to_write ? ranges : std::vector<h5::RowRange>{}, mine_to_write ? data->data_ptr() : nullptr, data});
      pending[h].clear();
    }
    writer.submit(std::move(writes));  // waits for the previous flush first
    for (int64_t s : pending_seqs) done[static_cast<size_t>(s)] = 1;
    pending_seqs.clear();
    pending_bytes = 0;
    write_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - tw).count();
  };
  auto save = [&] {
    flush();
    writer.wait();
    file.close();
    rt.world_comm.allreduce_max_inplace(std::span<int64_t>(done));
    if (rt.rank == 0) {
      std::vector<int64_t> list;
      for (int64_t s = 0; s < n; ++s)
        if (done[static_cast<size_t>(s)]) list.push_back(s);
      write_file_atomic(progress_file, json{{"config_sha256", config_hash}, {"done", list}}.dump());
      spdlog::info("collect: stored {} of {} sequences; progress in {}", list.size(), n, progress_file.string());
    }
    rt.world_comm.barrier();
  };
  auto detail = [&] {
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return fmt::format("{:.0f} tok/s on this rank, {:.0f}% of the time blocked on writes", static_cast<double>(tokens_done) / std::max(secs, 1e-9),
                       100 * write_s / std::max(secs, 1e-9));
  };
  BatchLoop loop;
  loop.work = work;
  loop.pending_bytes = [&] { return pending_bytes; };
  loop.flush = flush;
  loop.save = save;
  loop.flush_bytes = cfg.output.buffer_mb << 20;
  loop.what = "collect";
  loop.progress_seconds = cfg.log.progress_seconds;
  loop.detail = detail;
  run_batches(rt, my_batches, loop);
  {
    const auto tw = std::chrono::steady_clock::now();
    writer.wait();
    write_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - tw).count();
  }
  file.close();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  spdlog::info("collect: {} tokens in {:.3f} s on this rank ({:.3f} s forward, {:.3f} s blocked on writes; {:.3f} s of writes, {})", tokens_done,
               wall, compute_s, write_s, writer.seconds_writing(), writer.background() ? "in the background" : "synchronous");

  // Phase 2 (rank 0): token and row metadata, strings, dimension scales, provenance; then commit.
  if (rt.rank == 0) {
    std::vector<int64_t> n_tokens, n_prompt, token_offset, r_off, r_count, tok_seq, tok_pos, cb, ce, row_seq, row_tb, row_te;
    std::vector<int32_t> tok_id;
    std::vector<std::string> ids, texts, labels;
    for (int64_t s = 0; s < n; ++s) {
      const Sequence& q = seqs[static_cast<size_t>(s)];
      ids.push_back(q.id);
      texts.push_back(q.text);
      n_tokens.push_back(static_cast<int64_t>(q.ids.size()));
      n_prompt.push_back(q.n_prompt);
      token_offset.push_back(static_cast<int64_t>(tok_id.size()));
      r_off.push_back(row_offset[static_cast<size_t>(s)]);
      r_count.push_back(static_cast<int64_t>(rows[static_cast<size_t>(s)].size()));
      for (size_t t = 0; t < q.ids.size(); ++t) {
        tok_id.push_back(q.ids[t]);
        tok_seq.push_back(s);
        tok_pos.push_back(static_cast<int64_t>(t));
        cb.push_back(q.offsets[t].first);
        ce.push_back(q.offsets[t].second);
      }
      for (const Row& r : rows[static_cast<size_t>(s)]) {
        row_seq.push_back(s);
        row_tb.push_back(r.token_begin);
        row_te.push_back(r.token_end);
        labels.push_back(r.label);
      }
    }
    using h5::DType;
    const int64_t nt = static_cast<int64_t>(tok_id.size());
    const json prov = stage_provenance(cfg, rt, "collect", config_hash, m.dir);
    {
      h5::SerialFile f(tmp, h5::SerialFile::Mode::READ_WRITE);
      f.write_strings("/sequences/id", ids, "sequence");
      f.write_strings("/sequences/text", texts, "sequence");
      f.write_dataset({"/sequences/n_tokens", DType::I64, {n}, {"sequence"}, {}}, n_tokens.data());
      f.write_dataset({"/sequences/n_prompt_tokens", DType::I64, {n}, {"sequence"}, {{"description", "tokens of the formatted prompt"}}}, n_prompt.data());
      f.write_dataset({"/sequences/token_offset", DType::I64, {n}, {"sequence"}, {{"description", "first row in /tokens"}}}, token_offset.data());
      f.write_dataset({"/sequences/row_offset", DType::I64, {n}, {"sequence"}, {{"description", "first row in /activations"}}}, r_off.data());
      f.write_dataset({"/sequences/n_rows", DType::I64, {n}, {"sequence"}, {}}, r_count.data());
      f.write_dataset({"/tokens/id", DType::I32, {nt}, {"token"}, {}}, tok_id.data());
      f.write_dataset({"/tokens/sequence", DType::I64, {nt}, {"token"}, {{"description", "row in /sequences"}}}, tok_seq.data());
      f.write_dataset({"/tokens/position", DType::I64, {nt}, {"token"}, {}}, tok_pos.data());
      f.write_dataset({"/tokens/char_begin", DType::I64, {nt}, {"token"}, {{"units", "code points of /sequences/text"}}}, cb.data());
      f.write_dataset({"/tokens/char_end", DType::I64, {nt}, {"token"}, {{"units", "code points of /sequences/text"}}}, ce.data());
      f.write_dataset({"/activations/sequence", DType::I64, {n_rows}, {"row"}, {{"description", "row in /sequences"}}}, row_seq.data());
      f.write_dataset({"/activations/token_begin", DType::I64, {n_rows}, {"row"}, {{"description", "first token (position) of the row"}}}, row_tb.data());
      f.write_dataset({"/activations/token_end", DType::I64, {n_rows}, {"row"}, {{"description", "one past the last token of the row"}}}, row_te.data());
      if (cfg.collect.positions == "spans") f.write_strings("/activations/label", labels, "row");
      for (const auto& s : specs) f.describe(s);
      f.set_attr("/activations", "positions", cfg.collect.positions);
      f.set_attr("/activations", "source", cfg.collect.source);
      write_h5_provenance(f, prov, FORMAT);
    }
    write_file_atomic(fs::path(cfg.run.dir) / "config.resolved.ini", config_to_ini(cfg));
    write_file_atomic(out_dir / "provenance.json", prov.dump(2));
    h5::commit_h5(tmp, out_h5, FORMAT, specs, config_hash);
    spdlog::info("collect: wrote {} rows x {} hooks ({}) for {} sequences to {}", n_rows, hooks.size(), cfg.output.dtype, n, out_h5.string());
  }
  rt.world_comm.barrier();
}

}  // namespace ts::stages::collect
