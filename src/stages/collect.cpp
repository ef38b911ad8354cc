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
#include <map>
#include <numeric>
#include <optional>
#include <utility>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "core/sha256.h"
#include "dist/pipeline.h"
#include "dist/stop.h"
#include "io/h5writer.h"
#include "artifacts/activations.h"
#include "artifacts/generations.h"
#include "artifacts/prompts.h"
#include "artifacts/spans.h"
#include "dist/batch_loop.h"
#include "dist/rank_model.h"
#include "model/checkpoint_identity.h"
#include "stages/stage.h"
#include "tokenizer/chat_format.h"

namespace ts::stages::collect {
namespace fs = std::filesystem;

namespace {


// One sequence to run: token ids with their code-point ranges in `text`.
struct Sequence {
  std::string id, text;
  std::vector<int32_t> ids;
  std::vector<std::pair<int64_t, int64_t>> offsets;
  int64_t n_prompt = 0;      // tokens of the (formatted) prompt
  std::vector<PromptSpan> spans;  // in code points of text
};

// One stored row: a token (begin + 1 == end) or the mean over tokens [begin, end) of a span.
using Row = artifacts::ActivationIndex::Row;

// Per trace id, the spans `annotate` found (code points of the generated text), from collect.spans.
std::map<std::string, std::vector<PromptSpan>> annotated_spans(const Config& cfg) {
  const fs::path file = artifacts::input_path(cfg.collect.spans, cfg, artifacts::SPANS_H5);
  const artifacts::Spans sp = artifacts::read_spans(file, "collect.spans");
  if (sp.text_field != "text")
    throw InputError(file.string(), "text_field", "spans index the field '" + sp.text_field + "', not the generated text ('text')");
  artifacts::verify_committed(file, "collect.spans");
  std::map<std::string, std::vector<PromptSpan>> out;
  for (size_t t = 0; t < sp.trace_ids.size(); ++t) out[sp.trace_ids[t]];
  for (size_t i = 0; i < sp.trace.size(); ++i)
    out[sp.trace_ids[static_cast<size_t>(sp.trace[i])]].push_back(
        {sp.labels[static_cast<size_t>(sp.label[i])], sp.char_begin[i], sp.char_end[i]});
  return out;
}

std::vector<Sequence> load_sequences(const Config& cfg, const Tokenizer& tok) {
  const bool spans = labelled_rows(cfg.collect.positions);
  std::vector<Sequence> out;
  const ChatFormat format = cfg.generate.chat_format;
  if (cfg.collect.source == CollectSource::prompts) {
    const int64_t prefix = chat_format_prefix_code_points(format, cfg.generate.system);
    for (const Prompt& p : artifacts::load_prompts(cfg, spans ? cfg.collect.spans_field : "")) {
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
  IdSet ids;
  std::optional<std::map<std::string, std::vector<PromptSpan>>> annotated;
  jsonl_for_each(in, file.string(), [&](const json& row, const std::string& where, int64_t) {
    Sequence s;
    s.id = row_id(json_require(row, "id", where), where, "id");
    ids.add(s.id, where, "id");
    const std::string prompt_text = json_string(row, "prompt_text", where);
    const json& gen = json_require(row, "token_ids", where);
    if (!gen.is_array()) throw InputError(where, "token_ids", "must be an array of token ids");
    std::vector<int32_t> generated;
    for (const auto& t : gen) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= tok.vocab_size())
        throw InputError(where, "token_ids", "not a token id of this tokenizer: " + t.dump());
      generated.push_back(t.get<int32_t>());
    }
    artifacts::TokenSequence q = artifacts::generation_sequence(tok, prompt_text, generated);
    s.ids = std::move(q.ids);
    s.offsets = std::move(q.offsets);
    s.n_prompt = q.n_prompt;
    s.text = std::move(q.text);
    const int64_t base = q.prompt_chars;
    if (spans && !row.contains(cfg.collect.spans_field)) {  // annotate's spans of this trace
      if (!annotated) annotated = annotated_spans(cfg);
      const auto it = annotated->find(s.id);
      if (it == annotated->end()) throw InputError(where, "id", "trace '" + s.id + "' is not in the spans file (collect.spans)");
      for (const PromptSpan& sp : it->second) s.spans.push_back({sp.label, base + sp.begin, base + sp.end});
    } else if (spans) {  // spans of generations are code points of the generated text ("text")
      for (const PromptSpan& sp : spans_parse(row, cfg.collect.spans_field, utf8_length(s.text) - base, where))
        s.spans.push_back({sp.label, base + sp.begin, base + sp.end});
    }
    if (s.ids.empty()) throw InputError(where, "prompt_text", "sequence has no tokens");
    out.push_back(std::move(s));
    return cfg.data.limit <= 0 || static_cast<int64_t>(out.size()) < cfg.data.limit;
  });
  if (out.empty()) throw InputError(file.string(), "collect.input", "no generations in file");
  return out;
}

std::vector<Row> rows_of(const Sequence& s, CollectPositions positions) {
  std::vector<Row> rows;
  const int64_t T = static_cast<int64_t>(s.ids.size());
  using P = CollectPositions;
  if (positions == P::all || positions == P::prompt || positions == P::generated) {
    const int64_t b = positions == P::generated ? s.n_prompt : 0, e = positions == P::prompt ? s.n_prompt : T;
    for (int64_t t = b; t < e; ++t) rows.push_back({t, t + 1, ""});
  } else if (positions == P::last) {
    rows.push_back({T - 1, T, ""});
  } else {  // spans: the tokens whose character range overlaps the span; span_tokens: each of them once
    std::vector<uint8_t> taken(static_cast<size_t>(T), 0);
    for (const PromptSpan& sp : s.spans) {
      int64_t b = -1, e = -1;
      for (int64_t t = 0; t < T; ++t) {
        const auto [cb, ce] = s.offsets[static_cast<size_t>(t)];
        if (ce > sp.begin && cb < sp.end) {
          if (b < 0) b = t;
          e = t + 1;
        }
      }
      if (b < 0) continue;
      if (positions == P::spans) {
        rows.push_back({b, e, sp.label});
        continue;
      }
      for (int64_t t = b; t < e; ++t)  // a token on a boundary belongs to the first span that covers it
        if (!std::exchange(taken[static_cast<size_t>(t)], 1)) rows.push_back({t, t + 1, sp.label});
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

// What every rank knows before the forward passes: the sequences, their rows, the hooks and datasets.
struct Plan {
  std::vector<Sequence> seqs;
  std::vector<std::vector<Row>> rows;   // per sequence
  std::vector<int64_t> row_offset;      // per sequence + 1: its first row in /activations
  std::vector<HookPoint> hooks;
  std::vector<h5::DatasetSpec> specs;   // one per hook
  int64_t n() const { return static_cast<int64_t>(seqs.size()); }
};

Plan make_plan(const Config& cfg, const StageModel& m) {
  Plan p;
  p.seqs = load_sequences(cfg, *m.tokenizer);
  p.hooks = resolve_hooks(cfg, m.config.n_layer);
  p.row_offset.assign(p.seqs.size() + 1, 0);
  for (size_t s = 0; s < p.seqs.size(); ++s) {
    p.rows.push_back(rows_of(p.seqs[s], cfg.collect.positions));
    p.row_offset[s + 1] = p.row_offset[s] + static_cast<int64_t>(p.rows[s].size());
  }
  const int64_t n_rows = p.row_offset.back();
  if (n_rows == 0) throw InputError(cfg.data.prompts, "collect.positions", "no rows to store for positions = " + option_text(cfg.collect.positions));
  const h5::DType dtype = cfg.output.dtype == StoreDType::float16 ? h5::DType::F16 : cfg.output.dtype == StoreDType::bfloat16 ? h5::DType::BF16 : h5::DType::F32;
  for (const HookPoint& h : p.hooks) p.specs.push_back(artifacts::activations_dataset(h, m.config, n_rows, dtype, cfg.collect.positions));
  return p;
}

// The sequences a clean stop with the same config stored, with its partial file moved to `partial`
// (rank 0 reads the record, every rank gets it); none when there is no such record. COLLECTIVE.
std::vector<int64_t> stored_before(Runtime& rt, const fs::path& progress_file, const fs::path& partial, const std::string& config_hash, int64_t n) {
  std::vector<int64_t> done(static_cast<size_t>(n), 0);
  if (rt.rank == 0 && fs::exists(progress_file)) {
    try {  // a damaged record (written atomically, so only by hand) means starting over
      const json p = json_read_file(progress_file);
      const fs::path stored = p.value("partial", "");
      if (p.value("config_sha256", "") == config_hash && !stored.empty() && fs::exists(stored)) {
        if (stored != partial) fs::rename(stored, partial);  // another job's clean stop: this job holds the lock now
        for (int64_t s : p.at("done").get<std::vector<int64_t>>())
          if (s >= 0 && s < n) done[static_cast<size_t>(s)] = 1;
      }
    } catch (const std::exception& e) {
      spdlog::warn("collect: ignoring unreadable progress record ({}); starting over", error_one_line(e.what()));
      std::fill(done.begin(), done.end(), 0);
    }
    fs::remove(progress_file);  // from here on, a crash leaves the partial file without a valid record
  }
  rt.world_comm.bcast(std::span<int64_t>(done), 0);
  return done;
}

// The batch loop of this rank: forward passes with hooks that keep the rows, collective writes of the
// buffered rows, and the progress record on a stop.
class Collector {
 public:
  Collector(const Config& cfg, Runtime& rt, const StageModel& m, const Plan& plan, h5::ParallelFile& file, const fs::path& partial,
            std::vector<int64_t>& done, const fs::path& progress_file, const std::string& config_hash)
      : cfg_(cfg), rt_(rt), m_(m), p_(plan), file_(file), partial_(partial), done_(done), progress_file_(progress_file), config_hash_(config_hash),
        pending_(plan.hooks.size()), pipeline_(*m.model, rt), writer_(file, rt.rank) {
    need_logits_ = std::any_of(p_.hooks.begin(), p_.hooks.end(), [](const HookPoint& h) { return h.site == HookSite::LN_FINAL; });
    micro_ = cfg.parallel.micro_batches > 0 ? cfg.parallel.micro_batches : rt.n_stages;
    mine_ = my_sequences();
  }

  // COLLECTIVE: every batch of this rank's share, then the last write; the file is closed after.
  void run() {
    const int64_t bs = cfg_.collect.batch_size;
    BatchLoop loop;
    loop.work = [this](int64_t b) { work(b); };
    loop.pending_bytes = [this] { return pending_bytes_; };
    loop.flush = [this] { flush(); };
    loop.save = [this] { return save(); };
    loop.flush_bytes = cfg_.output.buffer_mb << 20;
    loop.what = "collect";
    loop.progress_seconds = cfg_.log.progress_seconds;
    loop.detail = [this] { return detail(); };
    run_batches(rt_, (static_cast<int64_t>(mine_.size()) + bs - 1) / bs, loop);
    const auto tw = std::chrono::steady_clock::now();
    writer_.wait();
    write_s_ += seconds_since(tw);
    file_.close();
    spdlog::info("collect: {} tokens in {:.3f} s on this rank ({:.3f} s forward, {:.3f} s blocked on writes; {:.3f} s of writes, {})", tokens_done_,
                 seconds_since(t0_), compute_s_, write_s_, writer_.seconds_writing(), writer_.background() ? "in the background" : "synchronous");
  }

 private:
  static double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  }
  bool held(const HookPoint& h) const {
    return h.site == HookSite::LN_FINAL ? rt_.last_stage() : (h.layer >= m_.layers.begin && h.layer < m_.layers.end);
  }

  // This replica's share of the remaining sequences, longest first.
  std::vector<int64_t> my_sequences() const {
    std::vector<int64_t> remaining, costs;
    for (int64_t s = 0; s < p_.n(); ++s)
      if (!done_[static_cast<size_t>(s)]) {
        remaining.push_back(s);
        costs.push_back(static_cast<int64_t>(p_.seqs[static_cast<size_t>(s)].ids.size()));
      }
    const Range share = partition_contiguous(costs, rt_.n_replicas)[static_cast<size_t>(rt_.replica)];
    std::vector<int64_t> mine(remaining.begin() + share.begin, remaining.begin() + share.end);
    std::stable_sort(mine.begin(), mine.end(),
                     [&](int64_t a, int64_t b) { return p_.seqs[static_cast<size_t>(a)].ids.size() > p_.seqs[static_cast<size_t>(b)].ids.size(); });
    return mine;
  }

  void work(int64_t b) {
    c10::InferenceMode inference;
    const auto tb = std::chrono::steady_clock::now();
    const int64_t bs = cfg_.collect.batch_size;
    const size_t begin = static_cast<size_t>(b * bs), end = std::min(mine_.size(), begin + static_cast<size_t>(bs));
    const std::vector<int64_t> batch(mine_.begin() + static_cast<std::ptrdiff_t>(begin), mine_.begin() + static_cast<std::ptrdiff_t>(end));
    for (const Range& mb : even_ranges(static_cast<int64_t>(batch.size()), rt_.n_stages > 1 ? micro_ : 1))
      forward(std::vector<int64_t>(batch.begin() + mb.begin, batch.begin() + mb.end));
    pending_seqs_.insert(pending_seqs_.end(), batch.begin(), batch.end());
    compute_s_ += seconds_since(tb);
  }

  // One forward pass over the sequences `seqs` (right padded: with causal attention real tokens never
  // see the padding after them); the hooks keep each row, a token's activation or a span's mean.
  void forward(const std::vector<int64_t>& seqs) {
    const int64_t B = static_cast<int64_t>(seqs.size());
    int64_t T = 0;
    for (int64_t s : seqs) T = std::max<int64_t>(T, static_cast<int64_t>(p_.seqs[static_cast<size_t>(s)].ids.size()));
    at::Tensor tokens = at::full({B, T}, m_.pad_id, at::kLong);
    auto tok = tokens.accessor<int64_t, 2>();
    std::vector<int64_t> gather;                                    // single-token rows: b * T + t
    std::vector<std::tuple<int64_t, int64_t, int64_t>> span_rows;  // (b, t0, t1)
    const bool spans = cfg_.collect.positions == CollectPositions::spans;
    for (int64_t bi = 0; bi < B; ++bi) {
      const size_t s = static_cast<size_t>(seqs[static_cast<size_t>(bi)]);
      const auto& ids = p_.seqs[s].ids;
      for (size_t t = 0; t < ids.size(); ++t) tok[bi][static_cast<int64_t>(t)] = ids[t];
      for (const Row& r : p_.rows[s]) {
        if (spans) span_rows.emplace_back(bi, r.token_begin, r.token_end);
        else gather.push_back(bi * T + r.token_begin);
      }
      tokens_done_ += static_cast<int64_t>(ids.size());
    }
    at::Tensor index, weights;
    if (spans) {
      weights = at::zeros({static_cast<int64_t>(span_rows.size()), B * T}, at::kDouble);
      for (size_t r = 0; r < span_rows.size(); ++r) {
        const auto [bi, t0s, t1s] = span_rows[r];
        weights[static_cast<int64_t>(r)].narrow(0, bi * T + t0s, t1s - t0s).fill_(1.0 / static_cast<double>(t1s - t0s));
      }
      weights = weights.to(rt_.device);
    } else {
      index = at::from_blob(gather.data(), {static_cast<int64_t>(gather.size())}, at::kLong).clone().to(rt_.device);
    }
    HookSet hook_set(m_.config.n_layer);
    keep_rows(hook_set, index, weights);
    ForwardArgs args;
    args.tokens = tokens.to(rt_.device);
    args.positions = at::arange(T, at::TensorOptions().dtype(at::kLong)).unsqueeze(0).expand({B, T}).contiguous().to(rt_.device);
    args.hooks = &hook_set;
    args.logits = need_logits_ ? LogitsMode::LAST : LogitsMode::NONE;
    if (rt_.n_stages > 1) pipeline_.forward(args);
    else m_.model->forward(args);
  }

  // At every hook this rank holds: the rows (index_select of single tokens, or the span weights'
  // fp64 matmul) converted to the stored dtype and buffered for the next write.
  void keep_rows(HookSet& hook_set, const at::Tensor& index, const at::Tensor& weights) {
    for (size_t h = 0; h < p_.hooks.size(); ++h) {
      if (!held(p_.hooks[h])) continue;
      hook_set.add_fn(p_.hooks[h], [this, h, index, weights](const at::Tensor& x, const HookContext&) {
        const ModelConfig& c = m_.config;
        at::Tensor flat = x.reshape({x.size(0) * x.size(1), -1});  // [B*T, D] (attn.hook_z: [B*T, H*E])
        at::Tensor rows = weights.defined() ? at::matmul(weights, flat.to(at::kDouble)) : flat.index_select(0, index);
        if (p_.hooks[h].site == HookSite::ATTN_Z) rows = rows.view({rows.size(0), c.n_head, c.d_head});
        at::Tensor stored = to_storage(rows.to(at::kCPU), p_.specs[h].dtype);
        // Checked as stored (float16 can overflow where the model's dtype did not; bf16 is stored as raw bits).
        if (!at::isfinite(p_.specs[h].dtype == h5::DType::BF16 ? rows : stored).all().item<bool>())
          throw NonFiniteError("activations at " + hook_name(p_.hooks[h]) + " are not finite as " + dtype_name(p_.specs[h].dtype));
        pending_[h].push_back(std::move(stored));
        pending_bytes_ += static_cast<int64_t>(pending_[h].back().nbytes());
        return x;
      });
    }
  }

  // One write per dataset, in the same order on every rank, handed to the writer thread (the next
  // rows are computed meanwhile); the rows go to their sequence's offset. COLLECTIVE.
  void flush() {
    const auto tw = std::chrono::steady_clock::now();
    std::vector<h5::RowRange> ranges;
    for (int64_t s : pending_seqs_) {  // pending rows are in batch order, so are the ranges
      const int64_t b = p_.row_offset[static_cast<size_t>(s)], e = p_.row_offset[static_cast<size_t>(s) + 1];
      if (e > b) ranges.push_back({b, e - b});
    }
    std::vector<h5::RowWrite> writes;
    for (size_t h = 0; h < p_.hooks.size(); ++h) {
      auto data = std::make_shared<at::Tensor>(pending_[h].empty() ? at::Tensor() : at::cat(pending_[h], 0));
      const bool mine_to_write = held(p_.hooks[h]) && data->defined();
      writes.push_back({p_.specs[h].path, mine_to_write ? ranges : std::vector<h5::RowRange>{}, mine_to_write ? data->data_ptr() : nullptr, data});
      pending_[h].clear();
    }
    writer_.submit(std::move(writes));  // waits for the previous flush first
    for (int64_t s : pending_seqs_) done_[static_cast<size_t>(s)] = 1;
    pending_seqs_.clear();
    pending_bytes_ = 0;
    write_s_ += seconds_since(tw);
  }

  // On a stop request: the buffered rows written, the file closed cleanly, and the stored sequences
  // recorded, so a rerun reopens the file and does only the rest. COLLECTIVE.
  std::string save() {
    flush();
    writer_.wait();
    file_.close();
    rt_.world_comm.allreduce_max_inplace(std::span<int64_t>(done_));
    if (rt_.rank == 0) {
      std::vector<int64_t> list;
      for (int64_t s = 0; s < p_.n(); ++s)
        if (done_[static_cast<size_t>(s)]) list.push_back(s);
      write_file_atomic(progress_file_, json{{"config_sha256", config_hash_}, {"done", list}, {"partial", partial_.string()}}.dump());
      spdlog::info("collect: stored {} of {} sequences; progress in {}", list.size(), p_.n(), progress_file_.string());
    }
    rt_.world_comm.barrier();
    const int64_t stored = std::accumulate(done_.begin(), done_.end(), int64_t{0});
    return std::to_string(stored) + " of " + std::to_string(p_.n()) + " sequences in " + partial_.filename().string() + " (record " +
           progress_file_.filename().string() + ")";
  }

  std::string detail() const {
    const double secs = std::max(seconds_since(t0_), 1e-9);
    return fmt::format("{:.0f} tok/s on this rank, {:.0f}% of the time blocked on writes", static_cast<double>(tokens_done_) / secs, 100 * write_s_ / secs);
  }

  const Config& cfg_;
  Runtime& rt_;
  const StageModel& m_;
  const Plan& p_;
  h5::ParallelFile& file_;
  const fs::path partial_;
  std::vector<int64_t>& done_;
  const fs::path progress_file_;
  const std::string config_hash_;
  std::vector<std::vector<at::Tensor>> pending_;  // per hook: rows computed, waiting for the collective write
  std::vector<int64_t> pending_seqs_;
  Pipeline pipeline_;
  h5::BackgroundWriter writer_;
  std::vector<int64_t> mine_;
  bool need_logits_ = false;
  int64_t micro_ = 1, tokens_done_ = 0, pending_bytes_ = 0;
  double compute_s_ = 0, write_s_ = 0;
  const std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
};

// Phase 2 (rank 0): token and row metadata, strings, dimension scales, provenance.
void write_index(const Config& cfg, const StageOutput& out, const Plan& p, const json& prov) {
  artifacts::ActivationIndex index;
  index.positions = cfg.collect.positions;
  index.source = cfg.collect.source;
  for (size_t s = 0; s < p.seqs.size(); ++s) {
    const Sequence& q = p.seqs[s];
    index.sequences.push_back({q.id, q.text, q.ids, q.offsets, q.n_prompt, p.rows[s]});
  }
  h5::SerialFile f(out.partial(), h5::SerialFile::Mode::READ_WRITE);
  artifacts::write_activation_index(f, index);
  for (const auto& s : p.specs) f.describe(s);
  artifacts::write_h5_identity(f, prov, artifacts::ACTIVATIONS);
}

// The identity of what collect reads: the prompts, or the generations file.
std::string inputs_identity(const Config& cfg) {
  if (cfg.collect.source == CollectSource::prompts) return artifacts::prompts_identity(cfg);
  const fs::path file = artifacts::input_path(cfg.collect.input, cfg, artifacts::GENERATIONS_JSONL);
  if (!fs::exists(file)) throw InputError(file.string(), "collect.input", "no generations file (run `thinksteer generate` first)");
  std::string identity = sha256_file(file);
  const fs::path spans = artifacts::input_path(cfg.collect.spans, cfg, artifacts::SPANS_H5);
  if (labelled_rows(cfg.collect.positions) && fs::exists(spans)) identity += "\n" + sha256_file(spans);  // may be where the spans come from
  return identity;
}

}  // namespace

void run(const Config& cfg, Runtime& rt) {
  const fs::path progress_file = artifacts::ACTIVATIONS_PROGRESS.in(cfg);
  const std::string config_hash = artifacts::output_config_hash(cfg, {"model", "data", "generate", "collect", "output"},
                                                                inputs_identity(cfg) + "\n" + checkpoint_identity(cfg.model.path));
  StageOutput out(cfg, rt, "collect", artifacts::ACTIVATIONS_H5.in(cfg), config_hash);
  if (out.complete()) return;
  if (cfg.output.compression > 0 && !h5::parallel_compression_supported())
    throw InputError("<config>", "output.compression", "this HDF5 build cannot write compressed datasets in parallel; use 0");

  // Inputs, rows and the model slice of this rank; then the partial file, reopened after a clean stop.
  const StageModel m = load_stage_model(cfg, rt);
  const Plan plan = make_plan(cfg, m);
  out.begin();
  std::vector<int64_t> done = stored_before(rt, progress_file, out.partial(), config_hash, plan.n());
  const int64_t resumed = std::accumulate(done.begin(), done.end(), int64_t{0});
  if (resumed > 0) spdlog::info("collect: resuming, {} of {} sequences stored before", resumed, plan.n());
  h5::ParallelFile file(out.partial(), rt.world_comm.get(), resumed > 0);
  for (const auto& s : plan.specs) file.create(s, static_cast<int>(cfg.output.compression));
  Collector(cfg, rt, m, plan, file, out.partial(), done, progress_file, config_hash).run();

  if (rt.rank == 0) {
    const json prov = out.provenance(m.dir);
    write_index(cfg, out, plan, prov);
    out.commit_h5(prov, artifacts::ACTIVATIONS, plan.specs);
    spdlog::info("collect: wrote {} rows x {} hooks ({}) for {} sequences to {}", plan.row_offset.back(), plan.hooks.size(), option_name(cfg.output.dtype), plan.n(),
                 out.path().string());
  }
  rt.world_comm.barrier();
}

}  // namespace ts::stages::collect
