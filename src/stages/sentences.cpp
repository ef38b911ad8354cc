// Stage `sentences`: the sentence activations of docs/algorithms.md §B.3, the input of the reasoning
// taxonomy (§B.4).
//   in : sentences.generations (default <run.dir>/generate/generations.jsonl), model.path; optional
//        sentences.reference, a spans.h5 of `annotate` (with model.path) on those generations
//   out: <run.dir>/sentences/sentences.h5 (artifacts/sentences.h), provenance.json, .done marker with
//        the config hash
//
// §B.3 as computed here, per trace:
//   1. the thinking part of the generated text (core/sentences.h thinking_range) is cut into sentences
//      (split_sentences; pieces under sentences.min_words words are dropped);
//   2. a sentence's tokens, in the sequence the model saw (prompt tokens, then generated tokens), are
//      [the token holding its first character, the token holding the character after it), and its
//      window is [token_begin - 1, token_end): the token before the sentence belongs to its mean
//      (vectors/windows.h sentence_window). Sentences without a window are skipped and counted;
//   3. at each hooked layer: raw = the mean activation over the sentence's window; the trace's overall
//      mean is the mean over [min token_begin, max token_end) of its sentences, and `mean` is the mean
//      of the overall means over the traces;
//   4. each sentence's vector is (raw - mean) / |raw - mean| (in fp64), stored with |raw - mean|.
// With a reference annotation, each sentence also gets the label of the span of its trace that
// overlaps it most (code points of the same generated text; "" when none does).
//
// Work: every rank reads the generations and plans every trace's sentences, so bad input fails alike
// everywhere before anything is written, and every rank knows every sentence's row (traces in file
// order, sentences in text order: the same file for any rank layout). The traces with sentences are
// cut into batches as `vectors` cuts them (stages/trace_forward.h, the same for any layout);
// data-parallel replicas take contiguous shares, and pipeline stages each hold some layers. Pass 1: one
// forward pass per batch; the window means (fp64 sums, stored fp32) of the layers a rank holds wait in
// a buffer that every rank writes collectively to /layer_<l>/vectors whenever some rank holds 256 MB;
// the overall means are summed in fp64 and added over the ranks (MPI_Allreduce) into `mean`. Pass 2:
// each rank reads back its own rows in blocks, centres and normalises them and writes them over
// themselves, with their norms. No rank holds more than a batch's or a block's rows. Rank 0 writes the
// sentence table and attributes and commits. A stop request ends the run with nothing stored (exit 75):
// the rerun starts over.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <span>

#include "artifacts/generations.h"
#include "artifacts/sentences.h"
#include "artifacts/spans.h"
#include "core/error.h"
#include "core/log.h"
#include "core/sentences.h"
#include "core/sha256.h"
#include "core/utf8.h"
#include "dist/batch_loop.h"
#include "model/checkpoint_files.h"
#include "model/checkpoint_identity.h"
#include "stages/stage.h"
#include "stages/trace_forward.h"
#include "vectors/windows.h"

namespace ts::stages::sentences {
namespace fs = std::filesystem;

namespace {

using artifacts::Generation;
using artifacts::TokenSequence;

// Rows read back per block in pass 2 (fp64 copies included): about 64 MB.
constexpr int64_t BLOCK_BYTES = int64_t{64} << 20;

// ---------------------------------------------------------------------------------------------------
// The plan: every trace's sentences, their rows and windows

struct Plan {
  artifacts::SentenceIndex index;                  // per row
  std::vector<TokenRange> windows;                 // per row: [token_begin - 1, token_end)
  std::vector<int64_t> first_row, n_rows;          // per trace
  std::vector<std::optional<TokenRange>> overall;  // per trace: [min token_begin, max token_end); none without sentences
  std::map<std::string, int64_t> skipped;          // sentences without a window, by reason
  int64_t fragments = 0;                           // pieces under sentences.min_words words
  int64_t mean_traces() const { return std::count_if(overall.begin(), overall.end(), [](const auto& o) { return o.has_value(); }); }
};

// Steps 1 and 2 for trace t.
void plan_trace(Plan& plan, int64_t t, const Generation& g, const TokenSequence& q, int64_t min_words, SentencePosition position) {
  const std::string_view generated = std::string_view(q.text).substr(q.prompt_bytes);
  const TextRange part = thinking_range(generated);
  std::vector<Sentence> fragments;
  const std::vector<Sentence> sentences = split_sentences(generated.substr(part.byte_begin, part.byte_end - part.byte_begin), &fragments, min_words);
  plan.fragments += static_cast<int64_t>(fragments.size());
  const std::vector<int64_t> token_of_char = char_tokens(q.offsets, static_cast<int64_t>(utf8::count_code_points(q.text)));
  std::vector<TokenRange> kept;
  plan.first_row.push_back(plan.index.size());
  for (const Sentence& s : sentences) {
    const int64_t begin = part.begin + s.begin, end = part.begin + s.end;  // code points of the generated text
    const SentenceWindow w = sentence_window(token_of_char, static_cast<int64_t>(q.ids.size()), q.prompt_chars + begin, q.prompt_chars + end);
    if (!w.skip.empty()) {
      ++plan.skipped[w.skip];
      continue;
    }
    artifacts::SentenceIndex& x = plan.index;
    x.trace.push_back(t), x.trace_id.push_back(g.id), x.text.push_back(s.text);
    x.char_begin.push_back(begin), x.char_end.push_back(end), x.token_begin.push_back(w.tokens.begin), x.token_end.push_back(w.tokens.end);
    plan.windows.push_back(position == SentencePosition::last_token ? TokenRange{w.tokens.end - 1, w.tokens.end} : w.window);
    kept.push_back(w.tokens);
  }
  plan.n_rows.push_back(static_cast<int64_t>(kept.size()));
  const std::optional<TokenRange> all = dom_overall_window(kept);
  plan.overall.push_back(all && all->size() > 0 ? all : std::nullopt);
}

Plan make_plan(const std::vector<Generation>& gens, const std::vector<TokenSequence>& seqs, int64_t min_words, SentencePosition position) {
  Plan plan;
  for (size_t t = 0; t < gens.size(); ++t) plan_trace(plan, static_cast<int64_t>(t), gens[t], seqs[t], min_words, position);
  return plan;
}

// The reference label of every row: the label of the span of its trace that overlaps it most (the
// first of equals), "" when none does. The spans index the same generations (checked by the caller).
std::vector<std::string> reference_labels(const Plan& plan, const artifacts::Spans& s) {
  std::vector<std::string> out;
  for (int64_t r = 0; r < plan.index.size(); ++r) {
    const auto t = static_cast<size_t>(plan.index.trace[static_cast<size_t>(r)]);
    const int64_t b = plan.index.char_begin[static_cast<size_t>(r)], e = plan.index.char_end[static_cast<size_t>(r)];
    int64_t best = -1, best_overlap = 0;
    for (int64_t k = s.span_offset[t]; k < s.span_offset[t] + s.n_spans[t]; ++k) {
      const int64_t overlap = std::min(e, s.char_end[static_cast<size_t>(k)]) - std::max(b, s.char_begin[static_cast<size_t>(k)]);
      if (overlap > best_overlap) best = k, best_overlap = overlap;
    }
    out.push_back(best < 0 ? "" : s.labels[static_cast<size_t>(s.label[static_cast<size_t>(best)])]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Inputs

struct Setup {
  fs::path generations, reference;
  std::string generations_sha, reference_sha, reference_annotator;
  std::vector<Generation> gens;
  Plan plan;
  BlockHook hook;
  artifacts::SentencesMeta meta;
};

// sentences.reference: an annotate spans file of these very generations whose code points index the
// generated text; gives every row its label.
void read_reference(Setup& in, const fs::path& model_dir) {
  const artifacts::Spans spans = artifacts::read_spans(in.reference, "sentences.reference");
  if (spans.text_field != "text")
    throw InputError(in.reference.string(), "text_field", "is '" + spans.text_field + "': the reference spans must index the generated text (annotate.text_field = text)");
  artifacts::check_same_generations(spans, in.gens, in.generations, in.generations_sha, sha256_file(model_dir / "tokenizer.json"), "sentences",
                                    "sentences.reference");
  artifacts::verify_committed(in.reference, "sentences.reference");
  in.plan.index.label = reference_labels(in.plan, spans);
  in.reference_annotator = spans.provenance.value("annotator", "");
}

// Reads and checks every input (every rank alike). Throws InputError.
void read_inputs(const Config& cfg, Setup& in) {
  const fs::path model_dir = cfg.model.path;
  const Tokenizer tok = Tokenizer::from_file(model_dir / "tokenizer.json");
  std::vector<TokenSequence> seqs;
  in.gens = artifacts::read_generations(in.generations, tok, "sentences.generations", &seqs);
  const ModelConfig model = checkpoint_open(model_dir).config;
  in.hook = resolve_block_hook(cfg.sentences.hook, cfg.sentences.layers, model.n_layer, "sentences");
  in.plan = make_plan(in.gens, seqs, cfg.sentences.min_words, cfg.sentences.position);
  if (in.plan.index.size() == 0)
    throw InputError(in.generations.string(), "text", "no trace has a thinking sentence of " + std::to_string(cfg.sentences.min_words) +
                                                          " words or more with a token window: nothing to average (sentences.min_words)");
  if (!in.reference.empty()) read_reference(in, model_dir);
  in.meta = {in.hook.pattern, std::string(option_name(cfg.sentences.position)), in.hook.layers, model.d_model, in.plan.index.size(), static_cast<int64_t>(in.gens.size()), in.plan.mean_traces(),
             fs::absolute(model_dir).string(), {}};  // the labels stay in the plan's index
}

// ---------------------------------------------------------------------------------------------------
// Pass 1: the forward passes, the raw window means and the sum of the overall means

// One micro-batch's windows flattened for index_add: the sentence windows (target k: the micro-batch's
// k-th row) and the traces' overall windows (target n_rows: they add into one sum of overall means).
struct Gather {
  at::Tensor position, weight, target;   // [P]: b * T + t, 1 / window size (fp64), target
  std::vector<h5::RowRange> rows;        // the micro-batch's rows, one range per trace, in target order
  int64_t n_rows = 0, n_overall = 0;
};

Gather make_gather(const Plan& plan, std::span<const int64_t> traces, int64_t T, c10::Device device) {
  Gather g;
  std::vector<int64_t> pos, target;
  std::vector<double> weight;
  const auto add = [&](int64_t b, TokenRange w, int64_t to) {
    for (int64_t p = w.begin; p < w.end; ++p) pos.push_back(b * T + p), weight.push_back(1.0 / static_cast<double>(w.size())), target.push_back(to);
  };
  for (int64_t b = 0; b < static_cast<int64_t>(traces.size()); ++b) {
    const auto t = static_cast<size_t>(traces[static_cast<size_t>(b)]);
    g.rows.push_back({plan.first_row[t], plan.n_rows[t]});
    for (int64_t r = plan.first_row[t]; r < plan.first_row[t] + plan.n_rows[t]; ++r) add(b, plan.windows[static_cast<size_t>(r)], g.n_rows++);
  }
  for (int64_t b = 0; b < static_cast<int64_t>(traces.size()); ++b)
    if (const auto& o = plan.overall[static_cast<size_t>(traces[static_cast<size_t>(b)])]) add(b, *o, g.n_rows), ++g.n_overall;
  g.position = at::tensor(pos, at::kLong).to(device);
  g.weight = at::tensor(weight, at::kDouble).to(device);
  g.target = at::tensor(target, at::kLong).to(device);
  return g;
}

// What pass 1 keeps: per hooked layer the raw rows waiting to be written (empty where this rank does
// not hold the layer) and the fp64 sum of overall means; the rows this rank has buffered and written.
struct Pass1 {
  std::vector<std::vector<float>> raw;       // per hooked layer, the pending rows back to back
  std::vector<h5::RowRange> pending, written;
  at::Tensor overall;                        // [hooked layers, d] fp64 on the compute device
  std::vector<int64_t> overall_count;        // per hooked layer: overall means added
  int64_t bytes() const {
    int64_t n = 0;
    for (const auto& v : raw) n += static_cast<int64_t>(v.size() * sizeof(float));
    return n;
  }
};

// At each held hooked layer: the micro-batch's window means; the rows go to the buffer, the overall
// means into the sum.
void attach_means(HookSet& hooks, const BlockHook& hp, Range held, const Gather& g, Pass1& acc) {
  for (size_t li = 0; li < hp.layers.size(); ++li) {
    if (hp.layers[li] < held.begin || hp.layers[li] >= held.end) continue;
    hooks.add_fn({hp.site, hp.layers[li]}, [&g, &acc, li](const at::Tensor& x, const HookContext&) {
      const at::Tensor rows = x.reshape({-1, x.size(-1)}).index_select(0, g.position).to(at::kDouble).mul_(g.weight.unsqueeze(1));
      const at::Tensor sums = at::zeros({g.n_rows + 1, x.size(-1)}, rows.options()).index_add_(0, g.target, rows);
      const at::Tensor raw = sums.narrow(0, 0, g.n_rows).to(at::kFloat).to(at::kCPU).contiguous();
      acc.raw[li].insert(acc.raw[li].end(), raw.data_ptr<float>(), raw.data_ptr<float>() + raw.numel());
      acc.overall.select(0, static_cast<int64_t>(li)).add_(sums[g.n_rows]);
      acc.overall_count[li] += g.n_overall;
      return x;
    });
  }
}

// COLLECTIVE: every hooked layer's pending rows written (ranks that do not hold a layer take part with none).
void flush(h5::ParallelFile& file, const BlockHook& hp, Range held, int64_t d, Pass1& acc) {
  int64_t rows = 0;
  for (const h5::RowRange& r : acc.pending) rows += r.count;
  for (size_t li = 0; li < hp.layers.size(); ++li) {
    const bool mine = hp.layers[li] >= held.begin && hp.layers[li] < held.end;
    if (static_cast<int64_t>(acc.raw[li].size()) != (mine ? rows * d : 0))
      throw std::logic_error("sentences: layer " + std::to_string(hp.layers[li]) + " buffered " + std::to_string(acc.raw[li].size()) + " values for " +
                             std::to_string(rows) + " rows");
    file.write_rows(artifacts::sentence_vectors_path(hp.layers[li]), mine ? acc.pending : std::vector<h5::RowRange>{}, acc.raw[li].data());
    acc.raw[li].clear();
  }
  acc.written.insert(acc.written.end(), acc.pending.begin(), acc.pending.end());
  acc.pending.clear();
}

// One forward pass (per micro-batch on a pipeline) for a batch of traces.
void forward_batch(TraceModel& model, Runtime& rt, const Setup& in, const std::vector<int64_t>& batch, Pass1& acc) {
  forward_traces(model, rt, in.gens, batch, [&](HookSet& hooks, std::span<const int64_t> traces, int64_t T, const std::function<void()>& run) {
    const Gather g = make_gather(in.plan, traces, T, rt.device);
    attach_means(hooks, in.hook, model.m.layers, g, acc);
    run();
    acc.pending.insert(acc.pending.end(), g.rows.begin(), g.rows.end());
  });
}

// COLLECTIVE: this replica's batches through the model, every raw row written; returns `mean` per
// hooked layer ([layers, d] fp64 on the CPU), the same on every rank.
at::Tensor pass_raw(const Config& cfg, Runtime& rt, TraceModel& model, const Setup& in, h5::ParallelFile& file, Pass1& acc) {
  c10::InferenceMode inference;
  std::vector<int64_t> with_sentences;
  for (int64_t t = 0; t < static_cast<int64_t>(in.gens.size()); ++t)
    if (in.plan.n_rows[static_cast<size_t>(t)] > 0) with_sentences.push_back(t);
  const std::vector<std::vector<int64_t>> batches = trace_batches(in.gens, with_sentences, cfg.sentences.batch_size);
  const Range share = trace_batch_share(batches, in.gens, rt);
  const auto n_layers = static_cast<int64_t>(in.hook.layers.size());
  acc.raw.assign(static_cast<size_t>(n_layers), {});
  acc.overall = at::zeros({n_layers, in.meta.d_model}, at::TensorOptions().dtype(at::kDouble).device(rt.device));
  acc.overall_count.assign(static_cast<size_t>(n_layers), 0);
  int64_t traces = 0;
  BatchLoop loop;
  loop.work = [&](int64_t b) {
    const std::vector<int64_t>& batch = batches[static_cast<size_t>(share.begin + b)];
    forward_batch(model, rt, in, batch, acc);
    traces += static_cast<int64_t>(batch.size());
  };
  loop.pending_bytes = [&] { return acc.bytes(); };
  loop.flush = [&] { flush(file, in.hook, model.m.layers, in.meta.d_model, acc); };
  loop.save = [] { return std::string("nothing (sentences keeps no partial file; the rerun starts over)"); };
  loop.what = "sentences";
  loop.progress_seconds = cfg.log.progress_seconds;
  loop.detail = [&] { return fmt::format("{} traces on this rank", traces); };
  run_batches(rt, share.size(), loop);
  const at::Tensor cpu = acc.overall.to(at::kCPU).contiguous();
  std::vector<double> sums(cpu.data_ptr<double>(), cpu.data_ptr<double>() + cpu.numel());
  rt.world_comm.allreduce_sum(std::span<double>(sums));
  rt.world_comm.allreduce_sum(std::span<int64_t>(acc.overall_count));
  for (size_t li = 0; li < acc.overall_count.size(); ++li)
    if (acc.overall_count[li] != in.meta.n_mean_traces)  // every trace's overall window, once at every layer
      throw std::logic_error("sentences: layer " + std::to_string(in.hook.layers[li]) + " summed " + std::to_string(acc.overall_count[li]) +
                             " overall means, planned " + std::to_string(in.meta.n_mean_traces));
  return at::tensor(sums, at::kDouble).reshape({n_layers, in.meta.d_model}) / static_cast<double>(in.meta.n_mean_traces);
}

// ---------------------------------------------------------------------------------------------------
// Pass 2: centring and normalisation of the rows each rank wrote

// `rows` (sorted, disjoint) cut into blocks of at most `per_block` rows.
std::vector<std::vector<h5::RowRange>> blocks_of(const std::vector<h5::RowRange>& rows, int64_t per_block) {
  std::vector<std::vector<h5::RowRange>> out;
  int64_t room = 0;
  for (h5::RowRange r : rows)
    while (r.count > 0) {
      if (room == 0) out.emplace_back(), room = per_block;
      const int64_t n = std::min(r.count, room);
      out.back().push_back({r.begin, n});
      r.begin += n, r.count -= n, room -= n;
    }
  return out;
}

// Step 4 on n raw rows [n, d] in place: (raw - mean) / |raw - mean| (fp64), |raw - mean| into `norm`;
// a row equal to the mean stays zero. Returns how many did.
int64_t centre_and_normalise(std::vector<float>& raw, std::vector<float>& norm, const at::Tensor& mean) {
  const auto n = static_cast<int64_t>(norm.size());
  if (n == 0) return 0;
  const at::Tensor c = at::from_blob(raw.data(), {n, mean.size(0)}, at::kFloat).to(at::kDouble) - mean;
  const at::Tensor len = c.norm(2, {1}, true);
  const at::Tensor unit = at::where(len > 0, c / len, at::zeros_like(c)).to(at::kFloat).contiguous();
  const at::Tensor len32 = len.reshape({n}).to(at::kFloat).contiguous();
  std::copy_n(unit.data_ptr<float>(), unit.numel(), raw.data());
  std::copy_n(len32.data_ptr<float>(), n, norm.data());
  return (len == 0).sum().item<int64_t>();
}

// COLLECTIVE: every rank's raw rows of every layer it holds replaced by their centred unit vectors, with
// the norms in /layer_<l>/norm; returns the rows per hooked layer whose norm was 0, over all ranks.
std::vector<int64_t> pass_normalise(Runtime& rt, const Setup& in, h5::ParallelFile& file, std::vector<h5::RowRange> mine, Range held,
                                    const at::Tensor& mean) {
  const int64_t d = in.meta.d_model;
  std::sort(mine.begin(), mine.end(), [](const h5::RowRange& a, const h5::RowRange& b) { return a.begin < b.begin; });
  const std::vector<std::vector<h5::RowRange>> blocks = blocks_of(mine, std::max<int64_t>(1, BLOCK_BYTES / (d * 16)));
  const int64_t rounds = rt.world_comm.allreduce_max(static_cast<int64_t>(blocks.size()));
  std::vector<int64_t> zero(in.hook.layers.size(), 0);
  for (int64_t k = 0; k < rounds; ++k)
    for (size_t li = 0; li < in.hook.layers.size(); ++li) {
      const int64_t layer = in.hook.layers[li];
      const bool here = k < static_cast<int64_t>(blocks.size()) && layer >= held.begin && layer < held.end;
      const std::vector<h5::RowRange> ranges = here ? blocks[static_cast<size_t>(k)] : std::vector<h5::RowRange>{};
      int64_t n = 0;
      for (const h5::RowRange& r : ranges) n += r.count;
      std::vector<float> raw(static_cast<size_t>(n * d)), norm(static_cast<size_t>(n));
      file.read_rows(artifacts::sentence_vectors_path(layer), ranges, raw.data());
      zero[li] += centre_and_normalise(raw, norm, mean[static_cast<int64_t>(li)]);
      file.write_rows(artifacts::sentence_vectors_path(layer), ranges, raw.data());
      file.write_rows(artifacts::sentence_norm_path(layer), ranges, norm.data());
    }
  rt.world_comm.allreduce_sum(std::span<int64_t>(zero));
  return zero;
}

// COLLECTIVE: rank 0 writes `mean` of every layer.
void write_means(Runtime& rt, const Setup& in, h5::ParallelFile& file, const at::Tensor& mean) {
  const at::Tensor m32 = mean.to(at::kFloat).contiguous();
  for (size_t li = 0; li < in.hook.layers.size(); ++li) {
    const std::vector<h5::RowRange> ranges = rt.rank == 0 ? std::vector<h5::RowRange>{{0, in.meta.d_model}} : std::vector<h5::RowRange>{};
    file.write_rows(artifacts::sentence_mean_path(in.hook.layers[li]), ranges, m32[static_cast<int64_t>(li)].data_ptr<float>());
  }
}

// ---------------------------------------------------------------------------------------------------
// Output

// Rank 0: the sentence table, attributes and provenance, then the commit.
void commit(const Config& cfg, StageOutput& out, const Setup& in, const std::vector<int64_t>& zero_norms) {
  json skipped = json::object(), zeros = json::object();
  for (const auto& [kind, n] : in.plan.skipped) skipped[kind] = n;
  for (size_t li = 0; li < zero_norms.size(); ++li) zeros[std::to_string(in.hook.layers[li])] = zero_norms[li];
  json prov = out.provenance(cfg.model.path);
  prov.update({{"generations", fs::absolute(in.generations).string()}, {"generations_sha256", in.generations_sha},
               {"reference", in.reference.empty() ? "" : fs::absolute(in.reference).string()}, {"reference_sha256", in.reference_sha},
               {"reference_annotator", in.reference_annotator}, {"hook", in.hook.pattern}, {"layers", in.hook.layers},
               {"min_words", cfg.sentences.min_words}, {"sentences", in.meta.n_sentences}, {"traces", in.meta.n_traces},
               {"mean_traces", in.meta.n_mean_traces}, {"fragments", in.plan.fragments}, {"skipped", skipped}, {"zero_norm", zeros}});
  {
    h5::SerialFile f(out.partial(), h5::SerialFile::Mode::READ_WRITE);
    for (const h5::DatasetSpec& s : artifacts::sentences_layer_datasets(in.meta)) f.describe(s);
    artifacts::write_sentences_index(f, in.meta, in.plan.index);
    artifacts::write_h5_identity(f, prov, artifacts::SENTENCES);
  }
  out.commit_h5(prov, artifacts::SENTENCES, artifacts::sentences_datasets(in.meta));
  spdlog::info("sentences: wrote {}: {} sentences of {} traces ({} with sentences) x {} layers at {}", out.path().string(), in.meta.n_sentences,
               in.meta.n_traces, in.meta.n_mean_traces, in.hook.layers.size(), in.hook.pattern);
  spdlog::info("sentences: dropped {} pieces under {} words", in.plan.fragments, cfg.sentences.min_words);
  for (const auto& [kind, n] : in.plan.skipped) spdlog::info("sentences: skipped {:<24} {:>6} sentences", kind, n);
  for (size_t li = 0; li < zero_norms.size(); ++li)
    if (zero_norms[li] > 0) spdlog::warn("sentences: layer {}: {} sentences equal the mean (zero norm): stored as zero vectors", in.hook.layers[li], zero_norms[li]);
}

// COLLECTIVE: passes 1 and 2 into the partial file; returns the zero norms per hooked layer.
std::vector<int64_t> write_activations(const Config& cfg, Runtime& rt, const StageOutput& out, const Setup& in, TraceModel& model) {
  h5::ParallelFile file(out.partial(), rt.world_comm.get());
  for (const h5::DatasetSpec& s : artifacts::sentences_layer_datasets(in.meta)) file.create(s);
  Pass1 acc;
  const at::Tensor mean = pass_raw(cfg, rt, model, in, file, acc);
  const std::vector<int64_t> zero = pass_normalise(rt, in, file, acc.written, model.m.layers, mean);
  write_means(rt, in, file, mean);
  file.close();
  return zero;
}

}  // namespace

void run(const Config& cfg, Runtime& rt) {
  if (cfg.model.path.empty()) throw InputError("<config>", "model.path", "no checkpoint directory given");
  Setup in;
  in.generations = artifacts::input_path(cfg.sentences.generations, cfg, artifacts::GENERATIONS_JSONL);
  in.reference = cfg.sentences.reference;
  if (!fs::is_regular_file(in.generations))
    throw InputError(in.generations.string(), "sentences.generations", "no generations file (run `thinksteer generate` first, or set sentences.generations)");
  if (!in.reference.empty() && !fs::is_regular_file(in.reference))
    throw InputError(in.reference.string(), "sentences.reference", "no such spans file (run `thinksteer annotate` with model.path on the generations)");
  in.generations_sha = sha256_file(in.generations);
  in.reference_sha = in.reference.empty() ? "" : sha256_file(in.reference);
  const std::string hash = artifacts::output_config_hash(cfg, {"model", "sentences"},
                                                         in.generations_sha + "\n" + in.reference_sha + "\n" + checkpoint_identity(cfg.model.path));
  StageOutput out(cfg, rt, "sentences", artifacts::SENTENCES_H5.in(cfg), hash);
  if (out.complete()) return;
  read_inputs(cfg, in);
  out.begin();
  TraceModel model = load_trace_model(cfg, rt);
  const std::vector<int64_t> zero_norms = write_activations(cfg, rt, out, in, model);
  if (rt.rank == 0) commit(cfg, out, in, zero_norms);
  rt.world_comm.barrier();
}

}  // namespace ts::stages::sentences
