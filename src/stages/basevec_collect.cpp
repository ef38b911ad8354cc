// Stage `basevec collect` (docs/algorithms.md §B.10 "Collection", §B.8 examples): from the thinking
// model's rollouts, the base model's sequences (base prompt + the same thinking text), aligned with the
// rollout's tokens (basevec/align.h); every base position whose argmax differs from the rollout's next
// token, with the thinking model's top-K log-probs and SAE class at the aligned position; and the
// §B.8 examples (thinking sentences with the SAE class of their last token, the whole thinking text
// for the bias).
//   in : generations (basevec.generations), model.path (thinking), basevec.base_model, basevec.sae
//   out: <run.dir>/basevec/records.h5 (+ .done; artifacts/basevec_records.h)
// Rollouts are sharded over the ranks in length-sorted batches; each rank runs both models (no grad)
// on its share and rank 0 writes the records in the generations file's order, so the file does not
// depend on the rank layout. Rollouts that cannot be aligned or are too long are skipped and counted.
#include <ATen/ATen.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <map>

#include "artifacts/basevec_records.h"
#include "artifacts/generations.h"
#include "artifacts/spans.h"
#include "basevec/align.h"
#include "core/done_marker.h"
#include "core/error.h"
#include "core/log.h"
#include "core/sentences.h"
#include "core/sha256.h"
#include "core/utf8.h"
#include "dist/batch_loop.h"
#include "dist/stop.h"
#include "model/checkpoint_identity.h"
#include "stages/basevec_pair.h"
#include "stages/stage.h"
#include "stages/trace_forward.h"

namespace ts::stages::basevec_collect {
namespace fs = std::filesystem;

namespace {

constexpr int64_t kBiasMinWords = 20;  // §B.8: the bias trains on responses of >= 20 words
constexpr int64_t kHeadChunk = 256;    // rows per lm_head call

struct Rollout {
  int64_t index = 0;
  std::string id, skipped;  // skipped: why (empty: kept)
  std::vector<int32_t> base_ids, think_ids;
  basevec::TokenAlignment align;
  std::vector<std::pair<int64_t, int64_t>> sentences;  // base token ranges
  bool bias = false;
};

int64_t split_of(const std::string& id, const Config::Basevec& o) {
  const std::string h = sha256_hex("basevec split " + id);
  const double u = static_cast<double>(std::stoull(h.substr(0, 13), nullptr, 16)) / static_cast<double>(uint64_t{1} << 52);
  return u < o.selection_fraction ? 2 : u < o.selection_fraction + o.holdout_fraction ? 1 : 0;
}

int64_t words(std::string_view s) {
  int64_t n = 0;
  bool in = false;
  for (char c : s) {
    const bool w = !std::isspace(static_cast<unsigned char>(c));
    n += (w && !in) ? 1 : 0;
    in = w;
  }
  return n;
}

// The base prompt of a rollout: the rollout's own prompt text and what it generated before the thinking
// text (same), or the template with the question.
std::string base_prefix(const Config& cfg, const artifacts::TokenSequence& q, size_t think_byte, const std::string& question) {
  if (cfg.basevec.base_prompt == "same") return q.text.substr(0, q.prompt_bytes + think_byte);
  std::string t = basevec_prompt_template(cfg.basevec.base_prompt);
  const size_t at = t.find("{question}");
  if (at != std::string::npos) t.replace(at, 10, question);
  return t;
}

Rollout prepare(const Config& cfg, const StageModel& base, const artifacts::Generation& g, const artifacts::TokenSequence& q, const std::string& question,
                int64_t index) {
  Rollout r;
  r.index = index, r.id = g.id;
  const std::string_view generated = std::string_view(q.text).substr(q.prompt_bytes);
  const TextRange th = thinking_range(generated);
  if (th.end <= th.begin) {
    r.skipped = "no thinking text";
    return r;
  }
  const std::string_view thinking = generated.substr(th.byte_begin, th.byte_end - th.byte_begin);
  const std::string prefix = base_prefix(cfg, q, th.byte_begin, question);
  const Encoding enc = base.tokenizer->encode(prefix + std::string(thinking), cfg.basevec.base_prompt != "same");
  const int64_t base_begin = static_cast<int64_t>(utf8::count_code_points(prefix));
  r.align = basevec::align_thinking(enc.ids, enc.offsets, base_begin, q.ids, q.offsets, q.prompt_chars + th.begin, th.end - th.begin);
  if (!r.align.ok) {
    r.skipped = "not aligned: " + r.align.reason;
    return r;
  }
  const int64_t len = r.align.base_first + r.align.n;
  if (len > cfg.basevec.max_seq_len) {
    r.skipped = "longer than basevec.max_seq_len";
    return r;
  }
  r.base_ids.assign(enc.ids.begin(), enc.ids.begin() + len);
  r.think_ids.assign(q.ids.begin(), q.ids.begin() + r.align.think_first + r.align.n);
  for (const Sentence& s : split_sentences(thinking, nullptr, cfg.basevec.linear_min_words)) {
    int64_t b = -1, e = -1;
    for (int64_t j = r.align.base_first; j < len; ++j) {
      const int64_t at = enc.offsets[static_cast<size_t>(j)].first - base_begin;
      if (at >= s.begin && at < s.end) b = b < 0 ? j : b, e = j + 1;
    }
    if (b >= 1) r.sentences.emplace_back(b, e);
  }
  r.bias = words(thinking) >= kBiasMinWords;
  return r;
}

// Residual stream after the last layer ([B, T, D], no logits) of right-padded sequences; `record` at
// one layer's resid_post when >= 0 (into `recorded`).
at::Tensor forward_hidden(const StageModel& m, const Runtime& rt, const std::vector<const std::vector<int32_t>*>& seqs, int64_t record, at::Tensor* recorded) {
  int64_t T = 0;
  for (const auto* s : seqs) T = std::max<int64_t>(T, static_cast<int64_t>(s->size()));
  const auto B = static_cast<int64_t>(seqs.size());
  at::Tensor tokens = at::full({B, T}, m.pad_id, at::kLong);
  for (int64_t b = 0; b < B; ++b) {
    const auto& ids = *seqs[static_cast<size_t>(b)];
    tokens[b].narrow(0, 0, static_cast<int64_t>(ids.size())).copy_(at::tensor(std::vector<int64_t>(ids.begin(), ids.end()), at::kLong));
  }
  HookSet hooks(m.config.n_layer);
  if (record >= 0) hooks.record({HookSite::RESID_POST, record});
  ForwardArgs a;
  a.tokens = tokens.to(rt.device);
  a.positions = at::arange(T, at::TensorOptions().dtype(at::kLong)).unsqueeze(0).expand({B, T}).contiguous().to(rt.device);
  a.hooks = &hooks;
  a.logits = LogitsMode::NONE;
  at::Tensor h = m.model->forward(a);
  if (recorded) *recorded = hooks.recorded({HookSite::RESID_POST, record});
  return h;
}

// log-softmax of the model's logits at `rows` of one sequence's hidden states, in chunks.
at::Tensor head_logp(const StageModel& m, const at::Tensor& hidden, const at::Tensor& rows) {
  std::vector<at::Tensor> parts;
  for (int64_t b = 0; b < rows.numel(); b += kHeadChunk)
    parts.push_back(m.model->head(hidden.index_select(0, rows.narrow(0, b, std::min(kHeadChunk, rows.numel() - b)))).to(at::kFloat).log_softmax(1));
  return parts.empty() ? at::empty({0, m.config.n_vocab}, at::kFloat) : at::cat(parts);
}

at::Tensor long_tensor(const std::vector<int64_t>& v, const at::Device& d) { return at::tensor(v, at::kLong).to(d); }

// basevec.reference_spans: per generation its spans as (token_begin, token_end, label) in the rollout's tokens.
using TokenSpans = std::vector<std::vector<std::array<int64_t, 3>>>;

int64_t label_at(const TokenSpans& spans, int64_t g, int64_t token) {
  if (spans.empty()) return -1;
  for (const auto& [b, e, l] : spans[static_cast<size_t>(g)])
    if (token >= b && token < e) return l;
  return -1;
}

// basevec.reference_spans, checked to be of these generations (empty without it); its labels into `labels`.
TokenSpans read_token_spans(const Config& cfg, const std::vector<artifacts::Generation>& gens, const fs::path& gens_file, std::vector<std::string>& labels) {
  TokenSpans spans;
  if (cfg.basevec.reference_spans.empty()) return spans;
  const fs::path file = cfg.basevec.reference_spans;
  const artifacts::Spans sp = artifacts::read_spans(file, "basevec.reference_spans");
  artifacts::check_same_generations(sp, gens, gens_file, sha256_file(gens_file), sha256_file(fs::path(cfg.model.path) / "tokenizer.json"), "basevec",
                                    "basevec.reference_spans");
  artifacts::verify_committed(file, "basevec.reference_spans");
  labels = sp.labels;
  spans.resize(gens.size());
  for (size_t t = 0; t < gens.size(); ++t)
    for (int64_t k = sp.span_offset[t]; k < sp.span_offset[t] + sp.n_spans[t]; ++k)
      spans[t].push_back({sp.token_begin[static_cast<size_t>(k)], sp.token_end[static_cast<size_t>(k)], sp.label[static_cast<size_t>(k)]});
  return spans;
}

// The records of one batch of prepared rollouts, one CBOR blob per rollout.
void collect_batch(const Config& cfg, const Runtime& rt, const StageModel& think, const StageModel& base, const SaeClassifier& sae, int64_t sae_layer,
                   const TokenSpans& spans, std::vector<Rollout*>& batch, std::vector<std::string>& blobs) {
  at::NoGradGuard no_grad;
  std::vector<const std::vector<int32_t>*> bseq, tseq;
  for (Rollout* r : batch) bseq.push_back(&r->base_ids), tseq.push_back(&r->think_ids);
  const at::Tensor hb = forward_hidden(base, rt, bseq, -1, nullptr);
  at::Tensor act;
  const at::Tensor ht = forward_hidden(think, rt, tseq, sae_layer, &act);
  const int64_t K = cfg.basevec.cache_topk;
  for (size_t e = 0; e < batch.size(); ++e) {
    const Rollout& r = *batch[e];
    const int64_t bf = r.align.base_first, tf = r.align.think_first, n = r.align.n, shift = tf - bf;
    std::vector<int64_t> pos;
    for (int64_t p = bf - 1; p <= bf + n - 2; ++p) pos.push_back(p);
    const at::Tensor base_top = head_logp(base, hb[static_cast<int64_t>(e)], long_tensor(pos, rt.device)).argmax(1).cpu();
    std::vector<int64_t> dis, top;
    for (size_t i = 0; i < pos.size(); ++i) {
      const int64_t want = r.base_ids[static_cast<size_t>(pos[i] + 1)], got = base_top[static_cast<int64_t>(i)].item<int64_t>();
      if (got != want) dis.push_back(pos[i]), top.push_back(got);
    }
    std::vector<int64_t> trows, srows, labels;
    for (int64_t p : dis) trows.push_back(p + shift), labels.push_back(label_at(spans, r.index, p + shift + 1));
    for (const auto& [b, end] : r.sentences) srows.push_back(end - 1 + shift);
    json j = {{"index", r.index}, {"id", r.id}, {"split", split_of(r.id, cfg.basevec)}, {"tokens", r.base_ids}, {"base_first", bf}, {"think_first", tf},
              {"positions", static_cast<int64_t>(pos.size())}, {"dis", dis}, {"base_top", top}, {"label", labels}};
    if (!dis.empty()) {
      const at::Tensor rows = long_tensor(trows, rt.device);
      const auto [lp, ids] = head_logp(think, ht[static_cast<int64_t>(e)], rows).topk(std::min<int64_t>(K, think.config.n_vocab), 1);
      const at::Tensor cat = sae(act[static_cast<int64_t>(e)].index_select(0, rows)).cpu();
      const at::Tensor lpc = lp.cpu().contiguous(), idc = ids.to(at::kInt).cpu().contiguous();
      j["cat"] = std::vector<int64_t>(cat.data_ptr<int64_t>(), cat.data_ptr<int64_t>() + cat.numel());
      j["topk_logp"] = std::vector<float>(lpc.data_ptr<float>(), lpc.data_ptr<float>() + lpc.numel());
      j["topk_ids"] = std::vector<int32_t>(idc.data_ptr<int32_t>(), idc.data_ptr<int32_t>() + idc.numel());
    }
    json sent = json::array();
    if (!srows.empty()) {
      const at::Tensor cat = sae(act[static_cast<int64_t>(e)].index_select(0, long_tensor(srows, rt.device))).cpu();
      for (size_t s = 0; s < r.sentences.size(); ++s) sent.push_back({r.sentences[s].first, r.sentences[s].second, cat[static_cast<int64_t>(s)].item<int64_t>()});
    }
    if (r.bias) sent.push_back({bf, bf + n, -1});
    j["sentences"] = sent;
    const std::vector<uint8_t> cbor = json::to_cbor(j);
    blobs.emplace_back(cbor.begin(), cbor.end());
  }
}

// Rank 0: the records file's content from every rollout's blob, in the generations file's order.
artifacts::BasevecRecords assemble(const Config& cfg, const std::vector<std::string>& blobs, int64_t n_categories, int64_t k) {
  std::vector<json> rows;
  for (const std::string& b : blobs) rows.push_back(json::from_cbor(b));
  std::sort(rows.begin(), rows.end(), [](const json& a, const json& b) { return a["index"].get<int64_t>() < b["index"].get<int64_t>(); });
  artifacts::BasevecRecords r;
  r.k = k, r.n_categories = n_categories;
  std::map<std::string, int64_t> skipped;
  std::vector<int64_t> per_cat(static_cast<size_t>(n_categories), 0), per_split(3, 0);
  int64_t positions = 0;
  for (const json& j : rows) {
    if (j.contains("skipped")) {
      ++skipped[j["skipped"].get<std::string>()];
      continue;
    }
    const int64_t ex = r.n_examples();
    const int64_t off = static_cast<int64_t>(r.tokens.size());
    r.id.push_back(j["id"].get<std::string>());
    r.split.push_back(j["split"].get<int64_t>());
    for (int64_t t : j["tokens"]) r.tokens.push_back(static_cast<int32_t>(t));
    r.token_offset.push_back(static_cast<int64_t>(r.tokens.size()));
    r.base_first.push_back(j["base_first"].get<int64_t>()), r.think_first.push_back(j["think_first"].get<int64_t>());
    positions += j["positions"].get<int64_t>();
    const auto dis = j["dis"].get<std::vector<int64_t>>(), top = j["base_top"].get<std::vector<int64_t>>(), lab = j["label"].get<std::vector<int64_t>>();
    for (size_t i = 0; i < dis.size(); ++i) {
      const int64_t c = j.at("cat").at(i).get<int64_t>();
      r.c_example.push_back(ex), r.c_position.push_back(dis[i]), r.c_category.push_back(c), r.c_base_top.push_back(top[i]), r.c_label.push_back(lab[i]);
      r.c_target.push_back(r.tokens[static_cast<size_t>(off + dis[i] + 1)]);
      ++per_cat[static_cast<size_t>(c)], ++per_split[static_cast<size_t>(r.split.back())];
    }
    if (!dis.empty()) {  // a rollout without disagreements has no top-K rows
      for (float v : j.at("topk_logp").get<std::vector<float>>()) r.topk_logp.push_back(v);
      for (int32_t v : j.at("topk_ids").get<std::vector<int32_t>>()) r.topk_ids.push_back(v);
    }
    for (const json& s : j["sentences"]) r.s_example.push_back(ex), r.s_begin.push_back(s[0]), r.s_end.push_back(s[1]), r.s_category.push_back(s[2]);
  }
  r.stats = {{"rollouts", static_cast<int64_t>(rows.size())}, {"examples", r.n_examples()}, {"skipped", skipped}, {"positions", positions},
             {"disagreements", r.n_corrections()}, {"disagreements_per_category", per_cat}, {"disagreements_per_split", per_split},
             {"sentences", r.n_sentences()}};
  for (int64_t c = 0; c < n_categories; ++c)
    if (per_cat[static_cast<size_t>(c)] == 0)
      spdlog::warn("basevec collect: category idx{} has no disagreement position (its correction vector will be recorded as skipped)", c);
  return r;
}

}  // namespace

void run(const Config& cfg, Runtime& rt) {
  check_basevec_config(cfg, true);
  const fs::path gens_file = artifacts::input_path(cfg.basevec.generations, cfg, artifacts::GENERATIONS_JSONL);
  if (!fs::is_regular_file(gens_file))
    throw InputError(gens_file.string(), "basevec.generations", "no generations file (run `thinksteer generate` with the thinking model first)");
  const fs::path sae_dir = basevec_sae_dir(cfg);
  Config keyed = cfg;  // the training options do not decide the records
  keyed.basevec = Config::Basevec{};
  keyed.basevec.base_prompt = cfg.basevec.base_prompt, keyed.basevec.max_seq_len = cfg.basevec.max_seq_len, keyed.basevec.cache_topk = cfg.basevec.cache_topk;
  keyed.basevec.holdout_fraction = cfg.basevec.holdout_fraction, keyed.basevec.selection_fraction = cfg.basevec.selection_fraction;
  keyed.basevec.linear_min_words = cfg.basevec.linear_min_words;
  const std::string spans_hash = cfg.basevec.reference_spans.empty() ? std::string("none") : sha256_file(cfg.basevec.reference_spans);
  const std::string hash = artifacts::output_config_hash(
      keyed, {"model", "basevec"},
      sha256_file(gens_file) + "\n" + checkpoint_identity(cfg.model.path) + "\nbase " + checkpoint_identity(cfg.basevec.base_model) + "\nsae " +
          sha256_file(sae_dir / "sae_weights.safetensors") + " " + sha256_file(sae_dir / "centering.safetensors") + " " + sha256_file(sae_dir / "cfg.json") + "\nspans " + spans_hash);
  StageOutput out(cfg, rt, "basevec collect", artifacts::BASEVEC_RECORDS_H5.in(cfg), hash);
  if (out.complete()) return;
  const StageModel think = load_stage_model(cfg, rt);
  const StageModel base = load_base_model(cfg, rt);
  check_same_vocabulary(think, base, cfg.basevec.base_model);
  if (cfg.basevec.layer >= base.config.n_layer)
    throw InputError("<config>", "basevec.layer", std::to_string(cfg.basevec.layer) + " is not a layer of the base model (" + std::to_string(base.config.n_layer) + ")");
  const artifacts::SaeExport sae = open_basevec_sae(cfg, think.config);
  std::vector<artifacts::TokenSequence> seqs;
  const std::vector<artifacts::Generation> gens = artifacts::read_generations(gens_file, *think.tokenizer, "basevec.generations", &seqs);
  std::vector<std::string> questions(gens.size());
  if (cfg.basevec.base_prompt != "same") {
    if (basevec_prompt_template(cfg.basevec.base_prompt).find("{question}") == std::string::npos)
      throw InputError("<config>", "basevec.base_prompt", "a template must hold {question} (or say `same`)");
    std::ifstream in(gens_file);
    size_t i = 0;
    jsonl_for_each(in, gens_file.string(), [&](const json& row, const std::string& where, int64_t) {
      questions[i++] = json_string(row, "prompt", where);
      return true;
    });
  }
  std::vector<std::string> labels;
  const TokenSpans spans = read_token_spans(cfg, gens, gens_file, labels);
  out.begin();
  std::vector<int64_t> all(gens.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int64_t>(i);
  const auto batches = trace_batches(gens, all, cfg.basevec.collect_batch_size);
  const Range mine = trace_batch_share(batches, gens, rt);
  const SaeClassifier classify(sae, rt.device);
  std::vector<std::string> blobs;
  int64_t done = 0;
  BatchLoop loop;
  loop.what = "basevec collect";
  loop.progress_seconds = cfg.log.progress_seconds;
  loop.detail = [&] { return std::to_string(done) + " rollouts"; };
  loop.save = [] { return std::string("nothing: the rerun starts over"); };
  loop.work = [&](int64_t b) {
    std::vector<Rollout> prepared;
    for (int64_t g : batches[static_cast<size_t>(mine.begin + b)])
      prepared.push_back(prepare(cfg, base, gens[static_cast<size_t>(g)], seqs[static_cast<size_t>(g)], questions[static_cast<size_t>(g)], g));
    std::vector<Rollout*> kept;
    for (Rollout& r : prepared) {
      if (r.skipped.empty()) kept.push_back(&r);
      else blobs.push_back([&] { const auto v = json::to_cbor(json{{"index", r.index}, {"skipped", r.skipped.substr(0, r.skipped.find(':'))}}); return std::string(v.begin(), v.end()); }());
    }
    if (!kept.empty()) collect_batch(cfg, rt, think, base, classify, sae.layer, spans, kept, blobs);
    done += static_cast<int64_t>(prepared.size());
  };
  {
    ResumablePhase resumable;
    run_batches(rt, mine.size(), loop);
  }
  const std::vector<std::string> gathered = rt.world_comm.gather_strings(blobs, 0);
  on_rank0(rt, [&] {
    artifacts::BasevecRecords r = assemble(cfg, gathered, sae.d_sae, cfg.basevec.cache_topk);
    r.sae_dir = sae_dir.string(), r.sae_key = sae.key, r.sae_layer = sae.layer;
    r.labels = labels;
    r.thinking_model = cfg.model.path, r.base_model = cfg.basevec.base_model, r.base_prompt = cfg.basevec.base_prompt;
    if (r.n_examples() == 0) throw InputError(gens_file.string(), "basevec.generations", "no rollout could be aligned with the base model's tokens: " + r.stats["skipped"].dump());
    const json prov = out.provenance(cfg.model.path);
    artifacts::write_basevec_records(out.partial(), r, prov);
    out.commit_h5(prov, artifacts::BASEVEC_RECORDS,
                  artifacts::basevec_records_datasets(r.n_examples(), static_cast<int64_t>(r.tokens.size()), r.n_corrections(), r.k, r.n_sentences()));
    spdlog::info("basevec collect: {} rollouts -> {} examples, {} disagreement positions of {} ({:.1f}%), {} sentences -> {}", r.stats["rollouts"].get<int64_t>(),
                 r.n_examples(), r.n_corrections(), r.stats["positions"].get<int64_t>(),
                 100.0 * static_cast<double>(r.n_corrections()) / std::max<double>(1.0, r.stats["positions"].get<double>()), r.n_sentences(), out.path().string());
    spdlog::info("basevec collect: per category {}; skipped {}", r.stats["disagreements_per_category"].dump(), r.stats["skipped"].dump());
  });
}

}  // namespace ts::stages::basevec_collect
