#include "hybrid/lockstep.h"

#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <memory>
#include <stdexcept>

#include "core/splitmix.h"
#include "model/sampling.h"

namespace ts::hybrid {

std::vector<int64_t> SteeringSet::available() const {
  std::vector<int64_t> out;
  at::Tensor nz = vectors.to(at::kCPU).abs().sum(1).gt(0);
  for (int64_t c = 0; c < nz.size(0); ++c)
    if (nz[c].item<bool>()) out.push_back(c);
  return out;
}

SteeringSet SteeringSet::ablated(Ablation a, uint64_t seed) const {
  SteeringSet s = *this;
  if (a == Ablation::only_bias) {
    // One direction for every category: the bias itself (it is added below), or the mean of the
    // category vectors that have data.
    if (bias.defined()) {
      s.vectors = at::zeros_like(vectors);
    } else {
      const std::vector<int64_t> av = available();
      at::Tensor mean = av.empty() ? at::zeros({vectors.size(1)}, vectors.options())
                                   : vectors.index_select(0, at::tensor(av, at::kLong).to(vectors.device())).mean(0);
      s.vectors = mean.unsqueeze(0).expand_as(vectors).clone();
    }
  } else if (a == Ablation::randvec || a == Ablation::randvec_randcat) {
    s.vectors = basevec::same_norm_random(vectors, splitmix64(seed ^ 0x72616e6476656373ULL));
  }
  return s;
}

namespace {

// Captures the activation a hook point sees (the residual is never modified in place).
struct Capture {
  at::Tensor x;
  HookFn fn() {
    return [this](const at::Tensor& v, const HookContext&) {
      x = v;
      return v;
    };
  }
};

// Per request: whether it is still in its thinking part and what remains of the forced prefix.
struct RowState {
  bool thinking = true;
  size_t forced_next = 0;  // next index into the answer prefix; == size: nothing forced
  bool forcing = false;
};

at::Tensor last_position(const at::Tensor& x) { return x.select(1, x.size(1) - 1); }  // [B, T, D] -> [B, D]

class Lockstep {
 public:
  Lockstep(const Transformer& t, const Transformer& b, const Classifier& classify, const SteeringSet& set, const Options& opt,
           const std::vector<Request>& requests)
      : t_(t), b_(b), classify_(classify), set_(set), opt_(opt), requests_(requests), results_(requests.size()), state_(requests.size()), done_(requests.size(), false) {
    for (const Request& r : requests) {
      t_req_.push_back({r.thinking_prompt, r.stream});
      b_req_.push_back({r.base_prompt, r.stream});
    }
    t_gen_.max_new_tokens = b_gen_.max_new_tokens = opt.max_new_tokens;
    t_gen_.eos_ids = b_gen_.eos_ids = opt.eos_ids;  // the emitted tokens end both rows alike
    t_gen_.pad_id = opt.thinking_pad, b_gen_.pad_id = opt.base_pad;
    t_dec_ = std::make_unique<Decoder>(t_req_, t_gen_, t.config(), t.n_layer_held(), t.options(), nullptr);
    b_dec_ = std::make_unique<Decoder>(b_req_, b_gen_, b.config(), b.n_layer_held(), b.options(), nullptr);
    t_hooks_ = std::make_unique<HookSet>(t.config().n_layer);
    b_hooks_ = std::make_unique<HookSet>(b.config().n_layer);
    t_hooks_->add_fn({HookSite::RESID_POST, opt.sae_layer}, t_cap_.fn());
    b_hooks_->add_fn({HookSite::RESID_POST, opt.layer}, b_cap_.fn());
    available_ = set.available();
    fused_ = opt.fused && (opt.rule == CoefRule::fixed || opt.rule == CoefRule::mlp);
    if (fused_) b_dec_->cache().add_shadow_rows(opt.layer + 1);
    if (opt.rule == CoefRule::mlp && !set.mlp.defined()) throw std::invalid_argument("hybrid: the mlp rule needs a vector set with a coefficient MLP");
  }

  std::vector<Result> run() {
    do step();
    while (t_dec_->advance(next_) & b_dec_->advance(next_));  // both always (the same rows finish in both)
    std::vector<GenerateResult> g = b_dec_->take_results();
    for (size_t i = 0; i < results_.size(); ++i) {
      results_[i].tokens = std::move(g[i].tokens);
      results_[i].finish = g[i].finish;
    }
    return std::move(results_);
  }

 private:
  // One step: both forwards, the decision per row, the steered reruns; fills next_.
  void step() {
    const std::vector<size_t>& rows = b_dec_->row_requests();
    const int64_t n = static_cast<int64_t>(rows.size());
    bool any_thinking = false;
    for (size_t i : rows) any_thinking = any_thinking || (!done_[i] && state_[i].thinking && !state_[i].forcing);

    std::vector<int64_t> y_t(static_cast<size_t>(n), -1);
    at::Tensor t_logits;
    if (any_thinking) {  // past every row's thinking part the thinking model is not consulted again
      ForwardArgs a = t_dec_->args();
      a.hooks = t_hooks_.get();
      t_logits = t_.forward(a).select(1, 0);  // [n, V]
      y_t = argmax(t_logits);
    }
    ForwardArgs ab = b_dec_->args();
    std::vector<int64_t> y_b, y_s;  // y_s: the steered token of each candidate row (fused step)
    if (fused_) {
      y_b = fused_forward(ab, y_t, y_s);
    } else {
      ab.hooks = b_hooks_.get();  // captures B's residual at the steering layer for steer_step
      y_b = argmax(b_.forward(ab).select(1, 0));
    }

    next_.assign(static_cast<size_t>(n), opt_.base_pad);
    std::vector<int64_t> steer_rows;
    for (int64_t j = 0; j < n; ++j) {
      const size_t i = rows[static_cast<size_t>(j)];
      Result& r = results_[i];
      RowState& s = state_[i];
      const size_t pos = r.kind.size();  // tokens this request emitted so far
      if (done_[i] || pos >= static_cast<size_t>(opt_.max_new_tokens)) continue;  // a finished row the decoders have not dropped yet
      r.base_token.push_back(static_cast<int32_t>(y_b[static_cast<size_t>(j)]));
      r.thinking_token.push_back(static_cast<int32_t>(y_t[static_cast<size_t>(j)]));
      r.category.push_back(-1);
      r.coef.push_back(0.0F);
      if (s.forcing) {
        emit(j, opt_.answer_prefix[s.forced_next++], TokenKind::forced);
        s.forcing = s.forced_next < opt_.answer_prefix.size();
        continue;
      }
      if (!s.thinking) {
        emit(j, y_b[static_cast<size_t>(j)], TokenKind::answer);
        continue;
      }
      if (y_t[static_cast<size_t>(j)] == opt_.think_close) {  // the thinking model ends its thinking part
        s.thinking = false;
        r.forced = true;
        if (opt_.answer_prefix.empty()) {
          emit(j, y_b[static_cast<size_t>(j)], TokenKind::answer);
        } else {
          emit(j, opt_.answer_prefix[0], TokenKind::forced);
          s.forced_next = 1;
          s.forcing = opt_.answer_prefix.size() > 1;
        }
        continue;
      }
      const bool disagree = y_b[static_cast<size_t>(j)] != y_t[static_cast<size_t>(j)];
      bool steer = disagree;
      if (opt_.ablation == Ablation::randpos) steer = randpos_coin(i);
      if (steer && fused_) {
        r.category.back() = static_cast<int16_t>(fused_cat_[static_cast<size_t>(j)]);
        r.coef.back() = fused_coef_[static_cast<size_t>(j)];
        emit(j, y_s[static_cast<size_t>(j)], TokenKind::steered);
        if (y_s[static_cast<size_t>(j)] == opt_.think_close) s.thinking = false;
      } else if (steer) {
        steer_rows.push_back(j);
      } else {
        emit(j, y_b[static_cast<size_t>(j)], disagree ? TokenKind::skipped : (opt_.ablation == Ablation::randpos ? TokenKind::unsteered : TokenKind::agree));
      }
      // A row that emits the base's own </think> leaves its thinking part (the toy pair's base knows it).
      if (!steer && y_b[static_cast<size_t>(j)] == opt_.think_close) s.thinking = false;
    }
    if (!steer_rows.empty()) steer_step(steer_rows, ab, t_logits, y_t);
  }

  // randpos: whether request i's current position is steered (a coin of its own stream and token index).
  bool randpos_coin(size_t i) const { return stream_uniform(opt_.seed, requests_[i].stream, 2 * results_[i].kind.size()) < opt_.randpos_fraction; }

  // The direction each category adds before its coefficient: V[cat] (+ bias). cat [m] int64 -> [m, d].
  at::Tensor direction(const at::Tensor& cat) const {
    const at::Tensor dir = set_.vectors.index_select(0, cat);
    return set_.bias.defined() ? dir + set_.bias : dir;
  }

  // The category of each of `rows` (batch rows): the SAE's on the thinking model's activations s [m, d_T]
  // (rows in order), or with randcat a uniform draw among the categories with a vector.
  std::vector<int64_t> categories(const std::vector<int64_t>& rows, const at::Tensor& s) {
    const std::vector<size_t>& req = b_dec_->row_requests();
    const auto m = rows.size();
    std::vector<int64_t> cats(m);
    if (opt_.ablation == Ablation::randcat || opt_.ablation == Ablation::randvec_randcat) {
      if (available_.empty()) throw std::invalid_argument("hybrid: no category has a vector to draw");
      for (size_t k = 0; k < m; ++k) {
        const size_t i = req[static_cast<size_t>(rows[k])];
        const double u = stream_uniform(opt_.seed, requests_[i].stream, 2 * results_[i].kind.size() + 1);
        cats[k] = available_[std::min(available_.size() - 1, static_cast<size_t>(u * static_cast<double>(available_.size())))];
      }
      return cats;
    }
    const at::Tensor c = classify_(s).to(at::kCPU);
    for (size_t k = 0; k < m; ++k) cats[k] = c[static_cast<int64_t>(k)].item<int64_t>();
    return cats;
  }

  // The fused step (fixed and mlp rules): B's layers up to the steering layer once, then the layers after it for
  // 2n rows, each row unsteered and with its shift (the rows that may be steered: in their thinking part, the
  // thinking model not closing it, and with randpos the coin up), the shadow rows of the cache reading the
  // unsteered history. Returns y_B; y_s gets each candidate's steered token (fused_cat_ / fused_coef_ its
  // category and coefficient). Equal to the rerun of steer_step, in one pass over the upper layers' weights.
  std::vector<int64_t> fused_forward(const ForwardArgs& ab, const std::vector<int64_t>& y_t, std::vector<int64_t>& y_s) {
    const std::vector<size_t>& req = b_dec_->row_requests();
    const auto n = static_cast<int64_t>(req.size());
    ForwardArgs lo = ab;
    lo.end_layer = opt_.layer + 1;
    const at::Tensor x = b_.forward(lo);  // [n, T, D]: blocks.{layer}.hook_resid_post
    std::vector<int64_t> rows;
    for (int64_t j = 0; j < n; ++j) {
      const size_t i = req[static_cast<size_t>(j)];
      const RowState& st = state_[i];
      if (done_[i] || !st.thinking || st.forcing || y_t[static_cast<size_t>(j)] == opt_.think_close) continue;
      if (opt_.ablation == Ablation::randpos && !randpos_coin(i)) continue;
      rows.push_back(j);
    }
    at::Tensor steered = x.clone();
    fused_cat_.assign(static_cast<size_t>(n), -1);
    fused_coef_.assign(static_cast<size_t>(n), 0.0F);
    if (!rows.empty()) {
      const auto dev = x.device();
      const at::Tensor idx = at::tensor(rows, at::kLong).to(dev);
      const std::vector<int64_t> cats = categories(rows, last_position(t_cap_.x).index_select(0, idx.to(t_cap_.x.device())));
      const at::Tensor cat = at::tensor(cats, at::kLong).to(dev);
      const at::Tensor dir = direction(cat);
      const at::Tensor a = opt_.rule == CoefRule::mlp ? set_.mlp(last_position(x).index_select(0, idx).to(at::kFloat), cat).to(at::kFloat)
                                                      : at::full({static_cast<int64_t>(rows.size())}, opt_.coef, at::TensorOptions().dtype(at::kFloat).device(dev));
      steered.select(1, x.size(1) - 1).index_add_(0, idx, (a.unsqueeze(1) * dir).to(x.scalar_type()));
      const at::Tensor a_cpu = a.to(at::kCPU);
      for (size_t k = 0; k < rows.size(); ++k) {
        fused_cat_[static_cast<size_t>(rows[k])] = cats[k];
        fused_coef_[static_cast<size_t>(rows[k])] = a_cpu[static_cast<int64_t>(k)].item<float>();
      }
    }
    ForwardArgs up = ab;
    up.hidden_in = at::cat({x, steered});
    up.first_layer = opt_.layer + 1;
    up.positions = at::cat({ab.positions, ab.positions});
    if (ab.key_valid.defined()) up.key_valid = at::cat({ab.key_valid, ab.key_valid});
    const std::vector<int64_t> both = argmax(b_.forward(up).select(1, 0));  // [2n]
    b_dec_->cache().sync_shadow(ab.slot_start + ab.tokens.size(1) - 1);
    y_s.assign(both.begin() + n, both.end());
    return std::vector<int64_t>(both.begin(), both.begin() + n);
  }

  // The steered rerun of this step for `rows` (batch rows), from the layer after the steering layer.
  void steer_step(const std::vector<int64_t>& rows, const ForwardArgs& ab, const at::Tensor& t_logits, const std::vector<int64_t>& y_t) {
    const auto dev = b_cap_.x.device();
    const std::vector<size_t>& req = b_dec_->row_requests();
    const int64_t m = static_cast<int64_t>(rows.size());
    at::Tensor idx = at::tensor(rows, at::kLong).to(dev);
    at::Tensor h = last_position(b_cap_.x).index_select(0, idx).to(at::kFloat);            // [m, d]
    at::Tensor s = last_position(t_cap_.x).index_select(0, idx.to(t_cap_.x.device()));      // [m, d_T]
    const std::vector<int64_t> cats = categories(rows, s);
    const at::Tensor cat = at::tensor(cats, at::kLong).to(dev);
    const at::Tensor dir = direction(cat);  // [m, d]

    std::vector<double> coefs;
    at::Tensor alpha;  // [m]
    if (opt_.rule == CoefRule::oracle) {
      for (int64_t k = 0; k < m; ++k) {
        const int64_t j = rows[static_cast<size_t>(k)];
        results_[req[static_cast<size_t>(j)]].category.back() = static_cast<int16_t>(cats[static_cast<size_t>(k)]);
        emit(j, y_t[static_cast<size_t>(j)], TokenKind::steered);
        if (y_t[static_cast<size_t>(j)] == opt_.think_close) state_[req[static_cast<size_t>(j)]].thinking = false;
      }
      return;
    }
    if (opt_.rule == CoefRule::mlp) {
      alpha = set_.mlp(h, cat).to(at::kFloat);
      coefs = {1.0};
    } else if (opt_.rule == CoefRule::fixed) {
      coefs = {opt_.coef};
    } else {
      coefs = opt_.guardrail;
    }

    const int64_t slot = ab.slot_start + ab.tokens.size(1) - 1;
    const std::vector<at::Tensor> saved = b_dec_->cache().save_slot(slot, opt_.layer + 1);
    std::vector<int64_t> best_tok(static_cast<size_t>(m), -1);
    std::vector<double> best_score(static_cast<size_t>(m), -1e300), best_coef(static_cast<size_t>(m), 0);
    at::Tensor t_logp = coefs.size() > 1 ? at::log_softmax(t_logits.to(at::kFloat), -1).index_select(0, idx.to(t_logits.device())).to(at::kCPU) : at::Tensor();
    for (double c : coefs) {
      at::Tensor a = alpha.defined() ? alpha : at::full({m}, c, at::TensorOptions().dtype(at::kFloat).device(dev));
      at::Tensor delta = (a.unsqueeze(1) * dir).to(b_cap_.x.scalar_type());  // [m, d]
      at::Tensor x = b_cap_.x.clone();
      at::Tensor last = x.select(1, x.size(1) - 1);
      last.index_add_(0, idx, delta);
      ForwardArgs rerun = ab;
      rerun.hooks = nullptr;
      rerun.hidden_in = x;
      rerun.first_layer = opt_.layer + 1;
      at::Tensor logits = b_.forward(rerun).select(1, 0).index_select(0, idx);
      const std::vector<int64_t> tok = argmax(logits);
      at::Tensor a_cpu = a.to(at::kCPU);
      for (int64_t k = 0; k < m; ++k) {
        const double score = coefs.size() == 1 ? 0.0 : t_logp[k][tok[static_cast<size_t>(k)]].item<double>();
        if (score > best_score[static_cast<size_t>(k)]) {
          best_score[static_cast<size_t>(k)] = score;
          best_tok[static_cast<size_t>(k)] = tok[static_cast<size_t>(k)];
          best_coef[static_cast<size_t>(k)] = a_cpu[k].item<double>();
        }
      }
    }
    b_dec_->cache().restore_slot(slot, opt_.layer + 1, saved);
    for (int64_t k = 0; k < m; ++k) {
      const int64_t j = rows[static_cast<size_t>(k)];
      Result& r = results_[req[static_cast<size_t>(j)]];
      r.category.back() = static_cast<int16_t>(cats[static_cast<size_t>(k)]);
      r.coef.back() = static_cast<float>(best_coef[static_cast<size_t>(k)]);
      emit(j, best_tok[static_cast<size_t>(k)], TokenKind::steered);
      if (best_tok[static_cast<size_t>(k)] == opt_.think_close) state_[req[static_cast<size_t>(j)]].thinking = false;
    }
  }

  void emit(int64_t j, int64_t token, TokenKind kind) {
    const size_t i = b_dec_->row_requests()[static_cast<size_t>(j)];
    next_[static_cast<size_t>(j)] = token;
    results_[i].kind.push_back(static_cast<int8_t>(kind));
    if (std::find(opt_.eos_ids.begin(), opt_.eos_ids.end(), token) != opt_.eos_ids.end()) done_[i] = true;
  }
  static std::vector<int64_t> argmax(const at::Tensor& logits) {
    at::Tensor ids = logits.argmax(-1).to(at::kCPU);
    return std::vector<int64_t>(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + ids.numel());
  }

  const Transformer &t_, &b_;
  const Classifier& classify_;
  const SteeringSet& set_;
  const Options& opt_;
  const std::vector<Request>& requests_;
  std::vector<GenerateRequest> t_req_, b_req_;
  GenerateOptions t_gen_, b_gen_;
  std::unique_ptr<Decoder> t_dec_, b_dec_;
  std::unique_ptr<HookSet> t_hooks_, b_hooks_;
  Capture t_cap_, b_cap_;
  std::vector<int64_t> available_;
  std::vector<Result> results_;
  std::vector<RowState> state_;
  std::vector<int64_t> next_;
  bool fused_ = false;
  std::vector<int64_t> fused_cat_;  // per batch row of the fused step: the category and coefficient of its shift
  std::vector<float> fused_coef_;
  std::vector<bool> done_;  // per request: emitted an end token (the decoders drop such rows lazily)
};

}  // namespace

std::vector<Result> generate(const Transformer& thinking, const Transformer& base, const Classifier& classify, const SteeringSet& set,
                             const Options& opt, const std::vector<Request>& requests) {
  if (requests.empty()) return {};
  if (thinking.config().n_vocab != base.config().n_vocab) throw std::invalid_argument("hybrid: the models' vocabularies differ");
  if (opt.layer < 0 || opt.layer >= base.config().n_layer || opt.sae_layer < 0 || opt.sae_layer >= thinking.config().n_layer)
    throw std::invalid_argument("hybrid: steering or SAE layer outside the models");
  if (set.vectors.dim() != 2 || set.vectors.size(1) != base.config().d_model) throw std::invalid_argument("hybrid: vectors are not [C, d_model]");
  if (opt.rule == CoefRule::guardrail && opt.guardrail.empty()) throw std::invalid_argument("hybrid: the guardrail needs coefficients");
  c10::InferenceMode inference;
  return Lockstep(thinking, base, classify, set, opt, requests).run();
}

}  // namespace ts::hybrid
