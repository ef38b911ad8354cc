// Stage `toy train`: a Qwen2-architecture model trained from scratch on the toy corpus, the third part
// of the planted-truth world (src/toy/corpus.h).
//   in : [toy] (the corpus, generated in memory; style thinker|base), [train], the tokenizer directory
//        (train.tokenizer, default <run.dir>/toy/tokenizer, made by `toy tokenizer`)
//   out: <run.dir>/train/model/      HF checkpoint: config.json, model.safetensors, generation_config.json,
//                                     tokenizer.json, tokenizer_config.json, provenance.json (+ .done marker)
//        <run.dir>/train/metrics.jsonl  one line per logged step: step, loss, lr, grad_norm, tokens
//        <run.dir>/train/parity.json    held-out sequences with the written checkpoint's loss and last-position
//                                     logits, as our engine computes them (HF transformers must agree: test)
//        <run.dir>/train/state.safetensors  resumable state while training (removed when done)
//
// Each example is the R1 chat prompt of a train-split question followed by its trace and EOS; the loss
// is next-token cross-entropy on the trace tokens only (the prompt is given, as at generation time),
// averaged over all trace tokens of the step's batch. Data parallel: every rank takes an even share of
// the step's `batch_size` sequences, and one MPI_Allreduce sums the flat gradient together with the
// token count, so any number of ranks computes the same update as one rank (up to summation order).
// The data order is a seeded permutation per epoch; AdamW with linear warm-up and cosine decay.
//
// Resume: every `checkpoint_every` steps, and when a stop is requested (SIGUSR1/SIGTERM/STOP file, agreed
// by all ranks at a step boundary), rank 0 writes the parameters, AdamW moments and step atomically; a
// rerun with the same config continues from there and gives the same model as an uninterrupted run.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <optional>
#include <thread>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "core/provenance.h"
#include "core/sha256.h"
#include "core/splitmix.h"
#include "dist/stop.h"
#include "model/adamw.h"
#include "model/checkpoint_files.h"
#include "model/checkpoint_identity.h"
#include "model/checkpoint_write.h"
#include "model/hooks.h"
#include "model/safetensors.h"
#include "model/transformer.h"
#include "artifacts/prompts.h"
#include "dist/batch_loop.h"
#include "dist/rank_model.h"
#include "stages/stage.h"
#include "steer/intervention.h"
#include "tokenizer/chat_format.h"
#include "tokenizer/tokenizer.h"
#include "toy/corpus.h"

namespace ts::stages::toy_train {
namespace fs = std::filesystem;

namespace {

constexpr int64_t kIgnore = -100;        // cross_entropy ignore_index: prompt and padding targets
constexpr int64_t kParitySequences = 4;  // held-out sequences in parity.json
constexpr int64_t kEvalSequences = 128;  // held-out sequences for the validation loss

struct Example {
  std::vector<int64_t> ids;  // prompt + trace + EOS
  int64_t n_prompt = 0;      // the first n_prompt tokens get no loss
};

struct Paths {
  fs::path dir, model, state, metrics, parity;
  explicit Paths(const Config& cfg)
      : dir(fs::path(cfg.run.dir) / "train"), model(dir / "model"), state(dir / "state.safetensors"),
        metrics(dir / "metrics.jsonl"), parity(dir / "parity.json") {}
};

fs::path tokenizer_dir(const Config& cfg) {
  return cfg.train.tokenizer.empty() ? fs::path(cfg.run.dir) / "toy" / "tokenizer" : fs::path(cfg.train.tokenizer);
}

int32_t special_id(const Tokenizer& tok, const char* token, const fs::path& file) {
  auto id = tok.token_to_id(token);
  if (!id) throw InputError(file.string(), "added_tokens", std::string("the toy models need the R1 token ") + token);
  return *id;
}

// Prompt = the R1 generation prompt (ends with "<think>\n"); the trace starts with "<think>\n" too, so
// the example is prompt + trace[len("<think>\n"):] + EOS. The prompt's tokens must be a prefix of the
// example's (true for the R1 pre-tokenizer, which never merges across "\n"), so generation sees exactly
// the context the model was trained on.
Example make_example(const Tokenizer& tok, const ToyProblem& p, int32_t eos) {
  static const std::string kThink = "<think>\n";
  const std::string prompt = chat_format_apply(ChatFormat::deepseek_r1, p.question);
  if (p.text.rfind(kThink, 0) != 0) throw std::logic_error("toy trace " + p.id + " does not start with <think>");
  const std::vector<int32_t> prompt_ids = tok.encode_ids(prompt);
  const std::vector<int32_t> all = tok.encode_ids(prompt + p.text.substr(kThink.size()));
  if (all.size() < prompt_ids.size() || !std::equal(prompt_ids.begin(), prompt_ids.end(), all.begin()))
    throw std::logic_error("toy train: the prompt of " + p.id + " does not tokenize to a prefix of the example");
  Example e;
  e.ids.assign(all.begin(), all.end());
  e.ids.push_back(eos);
  e.n_prompt = static_cast<int64_t>(prompt_ids.size());
  return e;
}

ModelConfig model_config(const Config& cfg, const Tokenizer& tok, const fs::path& tok_file) {
  ModelConfig c;
  c.architecture = "Qwen2ForCausalLM";
  c.n_layer = cfg.train.n_layer;
  c.d_model = cfg.train.d_model;
  c.n_head = cfg.train.n_head;
  c.n_kv_head = cfg.train.n_kv_head;
  c.d_head = cfg.train.d_model / cfg.train.n_head;
  c.d_mlp = cfg.train.d_mlp;
  c.n_vocab = tok.vocab_size();
  c.max_position = cfg.train.max_position;
  c.rms_norm_eps = 1e-6;
  c.rope.theta = 10000.0;
  c.qkv_bias = true;  // Qwen2
  c.tie_word_embeddings = true;
  c.torch_dtype = "float32";
  c.bos_token_id = special_id(tok, "<｜begin▁of▁sentence｜>", tok_file);
  c.eos_token_ids = {special_id(tok, "<｜end▁of▁sentence｜>", tok_file)};
  c.pad_token_id = c.eos_token_ids[0];
  return c;
}

// The examples of each step. Epochs are seeded permutations of the examples (Fisher-Yates on
// splitmix64; portable); the stream of epochs is cut into groups of kBucketSteps steps, and within a
// group the sequences are sorted by length before being dealt out as batches, in a seeded order. Padding
// then costs little (the batches of a group have similar lengths) while every example is still seen once
// per epoch. A step's batch depends only on (seed, step), so a resumed run sees the same data.
class DataOrder {
 public:
  static constexpr int64_t kBucketSteps = 16;
  DataOrder(const std::vector<Example>& examples, int64_t batch, uint64_t seed) : ex_(examples), batch_(batch), seed_(seed) {}

  // Indices of the `batch` examples of `step`.
  std::vector<int64_t> step(int64_t step) {
    const int64_t group = step / kBucketSteps;
    if (group != group_) {
      std::vector<int64_t> ids;
      for (int64_t k = group * kBucketSteps * batch_; k < (group + 1) * kBucketSteps * batch_; ++k) ids.push_back(at(k));
      std::stable_sort(ids.begin(), ids.end(), [&](int64_t a, int64_t b) { return ex_[static_cast<size_t>(a)].ids.size() < ex_[static_cast<size_t>(b)].ids.size(); });
      std::vector<int64_t> slots(kBucketSteps);
      std::iota(slots.begin(), slots.end(), int64_t{0});
      shuffle(slots, splitmix64(seed_ ^ splitmix64(static_cast<uint64_t>(group) + 0x13198A2E03707344ULL)));
      group_ids_.assign(ids.size(), 0);
      for (int64_t s = 0; s < kBucketSteps; ++s)
        std::copy_n(ids.begin() + slots[static_cast<size_t>(s)] * batch_, batch_, group_ids_.begin() + s * batch_);
      group_ = group;
    }
    const auto first = group_ids_.begin() + (step % kBucketSteps) * batch_;
    return std::vector<int64_t>(first, first + batch_);
  }

 private:
  static void shuffle(std::vector<int64_t>& v, uint64_t s) {
    for (size_t i = v.size(); i-- > 1;) {
      s = splitmix64(s);
      std::swap(v[i], v[static_cast<size_t>(s % (i + 1))]);
    }
  }
  int64_t at(int64_t k) {
    const int64_t n = static_cast<int64_t>(ex_.size()), epoch = k / n;
    if (epoch != epoch_) {
      perm_.resize(static_cast<size_t>(n));
      std::iota(perm_.begin(), perm_.end(), int64_t{0});
      shuffle(perm_, splitmix64(seed_ ^ splitmix64(static_cast<uint64_t>(epoch) + 0x243F6A8885A308D3ULL)));
      epoch_ = epoch;
    }
    return perm_[static_cast<size_t>(k % n)];
  }

  const std::vector<Example>& ex_;
  int64_t batch_;
  uint64_t seed_;
  int64_t epoch_ = -1, group_ = -1;
  std::vector<int64_t> perm_, group_ids_;
};

struct Batch {
  at::Tensor tokens, positions, targets;  // [B, T] int64; targets kIgnore where no loss
  at::Tensor valid;                       // [B, T] float: 1 at a sequence's own positions, 0 at padding
  int64_t n_target = 0;
};

Batch make_batch(const std::vector<const Example*>& rows, int64_t pad) {
  Batch b;
  int64_t T = 1;
  for (const Example* e : rows) T = std::max<int64_t>(T, static_cast<int64_t>(e->ids.size()) - 1);
  const int64_t B = static_cast<int64_t>(rows.size());
  std::vector<int64_t> tokens(static_cast<size_t>(B * T), pad), targets(static_cast<size_t>(B * T), kIgnore);
  std::vector<float> valid(static_cast<size_t>(B * T), 0.0f);
  for (int64_t i = 0; i < B; ++i) {
    const Example& e = *rows[static_cast<size_t>(i)];
    const int64_t n = static_cast<int64_t>(e.ids.size()) - 1;  // inputs ids[0..n), targets ids[1..n]
    for (int64_t t = 0; t < n; ++t) {
      tokens[static_cast<size_t>(i * T + t)] = e.ids[static_cast<size_t>(t)];
      valid[static_cast<size_t>(i * T + t)] = 1.0f;
      if (t + 1 >= e.n_prompt) {
        targets[static_cast<size_t>(i * T + t)] = e.ids[static_cast<size_t>(t + 1)];
        ++b.n_target;
      }
    }
  }
  const auto i64 = at::TensorOptions().dtype(at::kLong);
  b.tokens = at::from_blob(tokens.data(), {B, T}, i64).clone();
  b.targets = at::from_blob(targets.data(), {B, T}, i64).clone();
  b.valid = at::from_blob(valid.data(), {B, T}, at::TensorOptions().dtype(at::kFloat)).clone();
  b.positions = at::arange(T, i64).unsqueeze(0).expand({B, T}).contiguous();
  return b;
}

// Summed next-token loss of a batch (right padding needs no mask: causal attention never looks ahead).
at::Tensor loss_sum(const Transformer& model, const Batch& b, HookSet* hooks = nullptr) {
  ForwardArgs a;
  a.tokens = b.tokens;
  a.positions = b.positions;
  a.hooks = hooks;
  at::Tensor logits = model.forward(a);  // [B, T, V]
  return at::cross_entropy_loss(logits.reshape({-1, logits.size(-1)}).to(at::kFloat), b.targets.reshape({-1}), {}, at::Reduction::Sum,
                           kIgnore);
}

// Random pushes (train.push_share > 0; an experiment, docs/algorithms.md §A.6 "Soft gates, cues and random
// pushes"): training noise shaped like a sweep's random-direction control. Each sequence of a step gets, by a
// coin of probability push_share, one push: at a layer l drawn uniformly, a Gaussian direction
// (random_direction, the sweep's own generator, label "train-push") scaled to s times the norm of the
// sequence's mean resid_post[l] (detached; the per-trace stand-in for ‖M_overall[l]‖, which c multiplies in a
// sweep), s uniform in [0, push_max], added at every position of that layer. Every draw is a pure function of
// (train.seed, step, the row's index in the step's batch), so any number of ranks pushes the same way.
void add_pushes(HookSet& hooks, const Config::Train& t, int64_t step, int64_t first_row, const Batch& b) {
  const int64_t B = b.tokens.size(0), D = t.d_model;
  std::vector<std::vector<float>> dirs(static_cast<size_t>(t.n_layer));
  std::vector<std::vector<float>> scales(static_cast<size_t>(t.n_layer));
  for (int64_t i = 0; i < B; ++i) {
    const uint64_t key = splitmix64(t.seed ^ 0x7075736800000000ull) ^ splitmix64(static_cast<uint64_t>(step * t.batch_size + first_row + i));
    if (splitmix_uniform01(key, 0) >= t.push_share) continue;
    const auto layer = static_cast<int64_t>(splitmix_uniform01(key, 1) * static_cast<double>(t.n_layer));
    auto& d = dirs[static_cast<size_t>(layer)];
    auto& s = scales[static_cast<size_t>(layer)];
    if (d.empty()) d.assign(static_cast<size_t>(B * D), 0.0f), s.assign(static_cast<size_t>(B), 0.0f);
    const std::vector<float> u = random_direction(D, 1.0, key, "train-push", layer);
    std::copy(u.begin(), u.end(), d.begin() + i * D);
    s[static_cast<size_t>(i)] = static_cast<float>(splitmix_uniform01(key, 2) * t.push_max);
  }
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  const at::Tensor count = b.valid.sum(1, true).clamp_min(1);  // [B, 1]
  for (int64_t l = 0; l < t.n_layer; ++l) {
    if (dirs[static_cast<size_t>(l)].empty()) continue;
    at::Tensor dir = at::from_blob(dirs[static_cast<size_t>(l)].data(), {B, D}, f32).clone();
    at::Tensor scale = at::from_blob(scales[static_cast<size_t>(l)].data(), {B, 1}, f32).clone();
    hooks.add_fn({HookSite::RESID_POST, l}, [dir, scale, valid = b.valid, count](const at::Tensor& x, const HookContext&) {
      const at::Tensor mean = (x.detach().to(at::kFloat) * valid.unsqueeze(-1)).sum(1) / count;  // [B, D]
      const at::Tensor push = dir * (mean.norm(2, {1}, true) * scale);                                // [B, D]
      return x + push.unsqueeze(1).to(x.scalar_type());
    });
  }
}

double lr_at(const Config::Train& t, int64_t step) {
  if (step < t.warmup_steps) return t.lr * static_cast<double>(step + 1) / static_cast<double>(t.warmup_steps);
  const double span = static_cast<double>(std::max<int64_t>(1, t.steps - t.warmup_steps));
  const double progress = std::min(1.0, static_cast<double>(step - t.warmup_steps) / span);
  return t.lr * (t.min_lr_ratio + (1 - t.min_lr_ratio) * 0.5 * (1 + std::cos(M_PI * progress)));
}

// --- resumable state -------------------------------------------------------------------------------

void state_save(const Paths& paths, const AdamW& opt, int64_t step, const std::string& hash, const json& history) {
  std::vector<at::Tensor> keep;
  std::vector<TensorBytes> tensors;
  auto add = [&](const std::string& name, const at::Tensor& t) {
    keep.push_back(t.detach().contiguous());
    tensors.push_back({name, DType::F32, t.sizes().vec(), {reinterpret_cast<const std::byte*>(keep.back().data_ptr()), static_cast<size_t>(keep.back().nbytes())}});
  };
  keep.reserve(3 * opt.params.size());
  for (size_t i = 0; i < opt.params.size(); ++i) {
    add("param/" + opt.params[i].first, opt.params[i].second);
    add("adam_m/" + opt.params[i].first, opt.m[i]);
    add("adam_v/" + opt.params[i].first, opt.v[i]);
  }
  const fs::path tmp = paths.state.string() + ".tmp";
  safetensors_write(tmp, tensors, {{"step", std::to_string(step)}, {"config_sha256", hash}, {"history", history.dump()}});
  fs::rename(tmp, paths.state);
}

// Restores a state saved for this config; returns the step to continue from (0: none usable).
int64_t state_load(const Paths& paths, AdamW& opt, const std::string& hash, json& history) {
  if (!fs::exists(paths.state)) return 0;
  try {
    SafetensorsFile f(paths.state);
    const auto& meta = f.header().metadata;
    if (!meta.count("config_sha256") || meta.at("config_sha256") != hash) {
      spdlog::warn("toy train: {} was saved for another config; starting over", paths.state.string());
      return 0;
    }
    // Read everything first, so that a damaged file leaves the fresh model untouched.
    std::vector<std::pair<at::Tensor*, at::Tensor>> loaded;
    auto load = [&](const std::string& name, at::Tensor& into) {
      const TensorInfo* info = f.find(name);
      if (info == nullptr || info->shape != into.sizes().vec() || info->dtype != DType::F32)
        throw InputError(paths.state.string(), name, "missing or of the wrong shape");
      loaded.emplace_back(&into, tensor_from_safetensors(*info, f.bytes(*info)));
    };
    for (size_t i = 0; i < opt.params.size(); ++i) {
      load("param/" + opt.params[i].first, opt.params[i].second);
      load("adam_m/" + opt.params[i].first, opt.m[i]);
      load("adam_v/" + opt.params[i].first, opt.v[i]);
    }
    json saved_history = json::parse(meta.at("history"));
    const int64_t step = std::stoll(meta.at("step"));
    at::NoGradGuard no_grad;
    for (auto& [into, value] : loaded) into->copy_(value);
    history = std::move(saved_history);
    return step;
  } catch (const std::exception& e) {
    spdlog::warn("toy train: cannot resume from {} ({}); starting over", paths.state.string(), e.what());
    return 0;
  }
}

// --- evaluation ----------------------------------------------------------------------------------

double mean_loss(const Transformer& model, const std::vector<Example>& examples, int64_t pad) {
  at::NoGradGuard no_grad;
  double sum = 0;
  int64_t n = 0;
  for (size_t i = 0; i < examples.size(); i += 16) {
    std::vector<const Example*> rows;
    for (size_t j = i; j < std::min(examples.size(), i + 16); ++j) rows.push_back(&examples[j]);
    Batch b = make_batch(rows, pad);
    sum += loss_sum(model, b).item<double>();
    n += b.n_target;
  }
  return n > 0 ? sum / static_cast<double>(n) : 0.0;
}

// parity.json: for a few held-out sequences (prompt + trace + EOS), the mean loss of predicting
// ids[n_prompt:] and the logits at the last position, computed from the checkpoint as written
// (reloaded from disk, so the stored dtype's rounding is included).
json parity_record(const fs::path& model_dir, const std::vector<Example>& held_out) {
  at::NoGradGuard no_grad;
  LoadOptions load;
  Transformer model = Transformer::load(model_dir, load);
  json rows = json::array();
  for (size_t i = 0; i < std::min<size_t>(held_out.size(), kParitySequences); ++i) {
    const Example& e = held_out[i];
    const int64_t n = static_cast<int64_t>(e.ids.size());
    ForwardArgs a;
    a.tokens = at::tensor(e.ids, at::TensorOptions().dtype(at::kLong)).unsqueeze(0);
    a.positions = at::arange(n, at::TensorOptions().dtype(at::kLong)).unsqueeze(0);
    at::Tensor logits = model.forward(a).to(at::kFloat)[0];  // [n, V]
    const at::Tensor predicted = logits.narrow(0, e.n_prompt - 1, n - e.n_prompt);
    const at::Tensor targets = a.tokens[0].narrow(0, e.n_prompt, n - e.n_prompt);
    const double loss = at::cross_entropy_loss(predicted, targets).item<double>();
    const at::Tensor last = logits[n - 1].contiguous();
    rows.push_back({{"input_ids", e.ids},
                    {"n_prompt", e.n_prompt},
                    {"loss", loss},
                    {"last_logits", std::vector<float>(last.data_ptr<float>(), last.data_ptr<float>() + last.numel())}});
  }
  return {{"description", "loss: mean cross-entropy of input_ids[n_prompt:] given the preceding tokens; last_logits: the logits "
                          "after the whole sequence; computed by thinksteer in float32 from the checkpoint in model/"},
          {"sequences", rows}};
}

// The corpus as training examples: the train split, and the held-out sequences of the validation loss.
struct Corpus {
  std::vector<Example> train, held_out;
  int64_t longest = 0, n_tokens = 0;  // tokens of the longest example; of the train split
};

Corpus load_corpus(const Config& cfg, const Tokenizer& tok, int32_t eos) {
  Corpus c;
  for (const ToyProblem& p : toy_corpus_generate(toy_corpus_options(cfg.toy))) {
    Example e = make_example(tok, p, eos);
    c.longest = std::max<int64_t>(c.longest, static_cast<int64_t>(e.ids.size()));
    if (p.split == "train") c.n_tokens += static_cast<int64_t>(e.ids.size());
    (p.split == "train" ? c.train : c.held_out).push_back(std::move(e));
  }
  if (c.train.empty()) throw InputError("<config>", "toy.n_problems", "the corpus has no train-split problems");
  if (c.longest > cfg.train.max_position)
    throw InputError("<config>", "train.max_position", "a corpus example has " + std::to_string(c.longest) + " tokens, more than " +
                                                           std::to_string(cfg.train.max_position));
  if (c.held_out.size() > kEvalSequences) c.held_out.resize(kEvalSequences);
  return c;
}

// The optimisation: steps [start, train.steps) of data-parallel AdamW, each rank taking an even share
// of every step's sequences; one flat allreduce carries the gradients and the loss/target counts.
class Trainer {
 public:
  Trainer(const Config& cfg, Runtime& rt, const Paths& paths, const std::string& hash, const Transformer& model, AdamW& opt, const Corpus& corpus,
          int64_t pad)
      : cfg_(cfg), rt_(rt), paths_(paths), hash_(hash), model_(model), opt_(opt), corpus_(corpus), pad_(pad),
        mine_(even_ranges(cfg.train.batch_size, rt.world)[static_cast<size_t>(rt.rank)]), order_(corpus.train, cfg.train.batch_size, cfg.train.seed) {}

  // COLLECTIVE. A stop request saves the resumable state (rank 0) and throws StopRequested.
  void run(int64_t start, json& history) {
    const ResumablePhase resumable;  // a SIGTERM past the grace period: requeue, the state saved last resumes
    std::optional<Progress> progress;
    if (rt_.rank == 0) progress.emplace("toy train", cfg_.train.steps, cfg_.log.progress_seconds);
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t step = start; step < cfg_.train.steps; ++step) {
      fault_point("batch", rt_.rank);
      if (stop_agree(rt_.world_comm) != 0) {
        if (rt_.rank == 0) state_save(paths_, opt_, step, hash_, history);
        rt_.world_comm.barrier();
        if (rt_.rank == 0) spdlog::info("toy train: stopped at step {}; state saved to {}", step, paths_.state.string());
        throw StopRequested("the training state at step " + std::to_string(step) + " in " + paths_.state.filename().string());
      }
      const Step r = this->step(step);
      smooth_ = step == start ? r.loss : 0.95 * smooth_ + 0.05 * r.loss;
      if (step % 10 == 0 || step + 1 == cfg_.train.steps)
        history.push_back({{"step", step}, {"loss", r.loss}, {"lr", r.lr}, {"grad_norm", r.grad_norm}, {"targets", r.targets}});
      if (cfg_.train.checkpoint_every > 0 && (step + 1) % cfg_.train.checkpoint_every == 0 && step + 1 < cfg_.train.steps && rt_.rank == 0)
        state_save(paths_, opt_, step + 1, hash_, history);
      if (progress)
        progress->update(step + 1, fmt::format("loss {:.4f} lr {:.2e} |g| {:.2f} {:.0f} target tok/s", smooth_, r.lr, r.grad_norm,
                                               static_cast<double>(tokens_seen_) / std::max(1e-9, seconds_since(t0))));
    }
    if (progress) progress->finish(fmt::format("loss {:.4f}", smooth_));
    const double loop_seconds = seconds_since(t0);
    if (rt_.rank == 0 && cfg_.train.steps > start)
      spdlog::info("toy train: {} steps in {:.2f} s, {} target tokens ({:.0f} target tok/s)", cfg_.train.steps - start, loop_seconds, tokens_seen_,
                   static_cast<double>(tokens_seen_) / std::max(1e-9, loop_seconds));
  }

 private:
  struct Step {
    double loss = 0, lr = 0, grad_norm = 0;
    int64_t targets = 0;
  };
  static double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  }

  // One optimizer step: this rank's sequences forward and backward, the allreduce, clipping, AdamW.
  Step step(int64_t step) {
    const std::vector<int64_t> batch = order_.step(step);
    std::vector<const Example*> rows;
    for (int64_t j = mine_.begin; j < mine_.end; ++j) rows.push_back(&corpus_.train[static_cast<size_t>(batch[static_cast<size_t>(j)])]);
    opt_.zero_grad();
    double local_loss = 0;
    int64_t local_targets = 0;
    if (!rows.empty()) {
      Batch b = make_batch(rows, pad_);
      const bool push = cfg_.train.push_share > 0;
      HookSet hooks(cfg_.train.n_layer);
      if (push) add_pushes(hooks, cfg_.train, step, mine_.begin, b);
      at::Tensor loss = loss_sum(model_, b, push ? &hooks : nullptr);
      loss.backward();
      local_loss = loss.item<double>();
      local_targets = b.n_target;
    }
    // One flat fp32 buffer: the gradients, then the loss sum and the target count.
    const double extras[] = {local_loss, static_cast<double>(local_targets)};
    std::vector<float> flat = opt_.flatten_grads(extras);
    rt_.world_comm.allreduce_sum(std::span<float>(flat));
    const double n_target = flat.back();
    Step r;
    r.loss = flat[flat.size() - 2] / n_target;
    r.grad_norm = opt_.unflatten_grads(flat, n_target);
    if (cfg_.train.grad_clip > 0 && r.grad_norm > cfg_.train.grad_clip) {
      at::NoGradGuard no_grad;
      for (auto& [name, t] : opt_.params) t.mutable_grad().mul_(cfg_.train.grad_clip / r.grad_norm);
    }
    r.lr = lr_at(cfg_.train, step);
    opt_.step(AdamWOptions{cfg_.train.beta1, cfg_.train.beta2, 1e-8, cfg_.train.weight_decay}, step, r.lr);
    r.targets = static_cast<int64_t>(n_target);
    tokens_seen_ += r.targets;
    return r;
  }

  const Config& cfg_;
  Runtime& rt_;
  const Paths& paths_;
  const std::string& hash_;
  const Transformer& model_;
  AdamW& opt_;
  const Corpus& corpus_;
  const int64_t pad_;
  const Range mine_;
  DataOrder order_;
  double smooth_ = 0;
  int64_t tokens_seen_ = 0;
};

// Rank 0: the HF checkpoint (with its tokenizer and provenance), the metrics, the parity record.
json write_model(const Config& cfg, const Paths& paths, const fs::path& tok_dir, const ModelWeights& w, const Transformer& model, const Corpus& corpus,
                 int64_t pad, int64_t n_params, const std::string& hash, const json& history) {
  const fs::path tok_file = tok_dir / "tokenizer.json";
  const double val = mean_loss(model, corpus.held_out, pad);
  CheckpointWrite out;
  out.dtype = cfg.train.save_dtype == SaveDType::bfloat16 ? at::kBFloat16 : at::kFloat;
  out.generation_config = {{"do_sample", false}};
  out.files["tokenizer.json"] = read_file(tok_file);
  if (fs::exists(tok_dir / "tokenizer_config.json")) out.files["tokenizer_config.json"] = read_file(tok_dir / "tokenizer_config.json");
  json prov = provenance_json(cfg, hash);
  prov["stage"] = "toy train";
  prov["tokenizer_sha256"] = sha256_file(tok_file);
  prov["parameters"] = n_params;
  prov["train_examples"] = corpus.train.size();
  // Where it was trained: bitwise results hold for the same device and thread count (docs/decisions.md).
  prov["device"] = json{{"device", cfg.model.device}, {"torch_threads", at::get_num_threads()},
                        {"hardware_threads", static_cast<int64_t>(std::thread::hardware_concurrency())}, {"ranks", env_world_size()}};
  prov["held_out_loss"] = val;
  prov["reproduce"] = "thinksteer toy tokenizer, then thinksteer toy train, with the resolved config in this file";
  out.files["provenance.json"] = prov.dump(2) + "\n";
  out.metadata = {{"thinksteer_config_sha256", hash}};
  checkpoint_write(paths.model, w, out);
  std::string metrics;
  for (const auto& h : history) metrics += h.dump() + "\n";
  write_file_atomic(paths.metrics, metrics);
  write_file_atomic(paths.parity, parity_record(paths.model, corpus.held_out).dump() + "\n");
  spdlog::info("toy train: held-out loss {:.4f} (per trace token); wrote {}", val, paths.model.string());
  return prov;
}

// train.init_from: the weights of a checkpoint of exactly this shape (fine-tuning), as fp32 copies the
// optimizer owns.
ModelWeights weights_from(const fs::path& dir, const ModelConfig& mc) {
  const CheckpointFiles ck = checkpoint_open(dir);
  const ModelConfig& c = ck.config;
  if (c.d_model != mc.d_model || c.n_layer != mc.n_layer || c.n_head != mc.n_head || c.n_kv_head != mc.n_kv_head || c.d_mlp != mc.d_mlp ||
      c.n_vocab != mc.n_vocab || c.tie_word_embeddings != mc.tie_word_embeddings)
    throw InputError((dir / "config.json").string(), "train.init_from", "has another shape than [train] and the tokenizer ask for (d_model, layers, heads, d_mlp, vocab, tying)");
  LoadOptions opts;
  opts.dtype = at::kFloat;
  ModelWeights w = weights_load(ck, opts);
  for (auto& [name, t] : weights_parameters(w)) t.set_data(t.detach().clone());
  return w;
}

}  // namespace

void run(const Config& cfg, Runtime& rt) {
  if (rt.n_stages != 1) throw InputError("<config>", "parallel.pipeline_stages", "toy train is data parallel only (pipeline_stages = 1)");
  const Paths paths(cfg);
  const fs::path tok_dir = tokenizer_dir(cfg), tok_file = tok_dir / "tokenizer.json";
  if (!fs::exists(tok_file))
    throw InputError(tok_file.string(), "<file>", "no tokenizer: run `thinksteer toy tokenizer` first or set train.tokenizer");
  const Tokenizer tok = Tokenizer::from_file(tok_file);
  const std::string hash = sha256_hex(config_to_ini(cfg, {"toy", "train"}) + sha256_file(tok_file) +
                                      (cfg.train.init_from.empty() ? "" : checkpoint_identity(cfg.train.init_from)));
  // The done marker sits on parity.json, the last output written (after the checkpoint directory).
  StageOutput done(cfg, rt, "toy train", paths.parity, hash);
  if (done.complete({paths.model})) return;
  done.begin();

  const ModelConfig mc = model_config(cfg, tok, tok_file);
  const int64_t pad = mc.pad_token_id;
  const Corpus corpus = load_corpus(cfg, tok, static_cast<int32_t>(mc.eos_token_ids[0]));
  ModelWeights w = cfg.train.init_from.empty() ? weights_init(mc, cfg.train.init_std, cfg.train.seed) : weights_from(cfg.train.init_from, mc);
  AdamW opt(weights_parameters(w));
  for (auto& [name, t] : opt.params) t.requires_grad_(true);
  const int64_t n_params = opt.n_parameters();
  const Transformer model(w);

  json history = json::array();
  const int64_t start = state_load(paths, opt, hash, history);
  // Every rank read the same file; agree anyway (a rank that could not read it would diverge).
  if (rt.world_comm.allreduce_min(start) != rt.world_comm.allreduce_max(start))
    throw std::runtime_error("toy train: ranks disagree about the resumable state in " + paths.state.string());
  on_rank0(rt, [&] {
    fs::create_directories(paths.dir);
    spdlog::info("toy train: {:.2f}M parameters (d_model {}, {} layers, {} heads / {} kv, d_mlp {}, vocab {}), style {}, {} train "
                 "examples ({} tokens, longest {}), {} held out; {} steps x {} sequences on {} rank(s){}",
                 static_cast<double>(n_params) / 1e6, mc.d_model, mc.n_layer, mc.n_head, mc.n_kv_head, mc.d_mlp, mc.n_vocab, option_name(cfg.toy.style),
                 corpus.train.size(), corpus.n_tokens, corpus.longest, corpus.held_out.size(), cfg.train.steps, cfg.train.batch_size, rt.world,
                 start > 0 ? ", resuming at step " + std::to_string(start) : "");
  });
  Trainer(cfg, rt, paths, hash, model, opt, corpus, pad).run(start, history);

  on_rank0(rt, [&] {
    const json prov = write_model(cfg, paths, tok_dir, w, model, corpus, pad, n_params, hash, history);
    done.commit_file(prov, {.provenance_json = false, .resolved_config = false, .certified = {}});
    fs::remove(paths.state);
  });
}

}  // namespace ts::stages::toy_train
