// The hybrid model of "Base models know how to reason, thinking models learn when" (docs/algorithms.md
// "The hybrid model"; §B.9, §B.10): the base model writes the text, and where the thinking model would
// write another token the base model's step is recomputed with a steering vector added at that position
// only. Both models run in lockstep, each on its own prompt with its own KV cache, in batches:
//
//   per step, for every row still in its thinking part:
//     y_T = argmax T(·), s = T's blocks.{sae_layer}.hook_resid_post at the last position
//     y_B = argmax B(·), h = B's blocks.{layer}.hook_resid_post at the last position
//     y_T == </think>        -> the answer prefix is forced (both models), steering stops for the row
//     steer? (y_B != y_T; randpos: a coin of the measured steered fraction)
//        no  -> emit y_B
//        yes -> category k = SAE(s) (randcat: uniform over the categories with a vector), shift
//               δ = a · (V[k] (+ bias)) with a = c (fixed), α(h, k) (mlp) or, over the guardrail's
//               coefficients, the candidate the thinking model rates most likely; B's step is rerun from
//               layer+1 with h + δ at the last position and its argmax is emitted
//   the emitted token goes to both models; rows past their thinking part emit y_B.
//
// The steered step reruns only the layers after the steering layer (ForwardArgs::first_layer) and is not
// kept in the base's KV cache (KVCache::save_slot/restore_slot): every earlier position stays as the
// base model read it, which is the v1 loop's "steer the current position only" (§B.9, window 1)
// without its recomputation of the prefix. With the fixed and mlp rules the step is fused by default
// (Options::fused): B runs up to the steering layer once, then the layers after it once for 2n rows, every row
// unsteered and shifted, the shifted copies reading shadow rows of the cache that hold the unsteered history
// (KVCache::add_shadow_rows / sync_shadow): the same tokens, one pass over those weights instead of two.
// Greedy throughout; the models must share the vocabulary.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "basevec/trainer.h"
#include "model/generate.h"
#include "model/transformer.h"

namespace ts::hybrid {

// fixed: a = c; mlp: a = α(h, k); guardrail: over the coefficients, the candidate the thinking model
// rates most likely (§B.9); oracle: the thinking model's own token is emitted at a steered step (no
// vector: the upper bound the steering aims at, §B.10's think_top1; with the same prompts it is the
// thinking model's greedy text).
enum class CoefRule { fixed, mlp, guardrail, oracle };
// none: the hybrid itself; only_bias: one vector for every category (the bias of a linear set, the
// mean of the category vectors of a correction set); randcat: a uniform random category each steered
// step; randvec: every vector replaced by a seeded random direction of its norm (bias kept); randvec_randcat:
// both (only the coefficient is real); randpos: positions steered by a coin of probability
// randpos_fraction instead of at disagreements.
enum class Ablation { none, only_bias, randcat, randvec, randvec_randcat, randpos };

// The vectors a hybrid adds, on the base model's device (float32).
struct SteeringSet {
  at::Tensor vectors;      // [C, d]
  at::Tensor bias;         // [d] or undefined (linear sets)
  basevec::CoefMlp mlp;    // needed by CoefRule::mlp
  // The set an ablation steers with: only_bias and randvec(_randcat) change the vectors (seeded).
  SteeringSet ablated(Ablation a, uint64_t seed) const;
  // Categories with a non-zero vector (randcat draws among them).
  std::vector<int64_t> available() const;
};

struct Options {
  int64_t layer = 0;      // steering layer of the base model
  int64_t sae_layer = 0;  // the thinking model's layer the classifier reads
  CoefRule rule = CoefRule::fixed;
  double coef = 1.0;                       // fixed
  std::vector<double> guardrail = {0.5, 0.6, 0.7, 0.8, 0.9, 1.0};  // guardrail candidates
  Ablation ablation = Ablation::none;
  uint64_t seed = 0;                       // random categories and positions (per prompt stream and token)
  double randpos_fraction = 0;             // randpos: probability that a thinking position is steered
  int64_t max_new_tokens = 256;
  std::vector<int64_t> eos_ids;            // the base model's end tokens: a row ends when it emits one
  int64_t think_close = -1;                // the thinking model's </think> id
  std::vector<int32_t> answer_prefix;      // forced after the thinking model closes its thinking part
  int64_t thinking_pad = 0, base_pad = 0;
  // fixed and mlp rules: B's layers after the steering layer run once per step for every row twice, unsteered and
  // shifted (2n rows; the KV cache keeps shadow rows with the unsteered history, KVCache::add_shadow_rows), instead
  // of a rerun of those layers after a disagreement. One pass over the weights where decoding streams them (CPU,
  // small batches); false: the rerun, cheaper where compute dominates and disagreements are rare.
  bool fused = true;
};

struct Request {
  std::vector<int32_t> thinking_prompt, base_prompt;
  uint64_t stream = 0;  // stream_id_of(prompt id): random draws independent of the batch
};

// What happened at a token.
enum class TokenKind : int8_t {
  agree = 0,      // y_B == y_T, emitted unsteered
  steered = 1,    // the step was steered (the emitted token may still be y_B)
  skipped = 2,    // randpos: a disagreement the coin did not steer
  forced = 3,     // the answer prefix
  answer = 4,     // past the thinking part (y_B)
  unsteered = 5,  // randpos: an agreement the coin did not steer
};

struct Result {
  std::vector<int32_t> tokens;          // emitted (the base's continuation)
  std::vector<int8_t> kind;             // TokenKind per token
  std::vector<int16_t> category;        // steered: the category used, else -1
  std::vector<float> coef;              // steered: the coefficient (fixed c, α or the guardrail's pick), else 0
  std::vector<int32_t> base_token;      // y_B (unsteered) at each step
  std::vector<int32_t> thinking_token;  // y_T at each step, -1 where the thinking model was not consulted
  FinishReason finish = FinishReason::LENGTH;
  bool forced = false;                  // the thinking model closed its thinking part (answer prefix forced)
};

// [N, d] activations of the thinking model -> [N] int64 categories (the SAE's argmax).
using Classifier = std::function<at::Tensor(const at::Tensor&)>;

// Generates every request in one batch (greedy). Throws std::invalid_argument on inconsistent options.
std::vector<Result> generate(const Transformer& thinking, const Transformer& base, const Classifier& classify, const SteeringSet& set,
                             const Options& opt, const std::vector<Request>& requests);

}  // namespace ts::hybrid
