// The config options with a fixed set of values, as enums with their names: the one table of the
// strings that config files, the command line, logs and output files use (core/config.h declares
// the keys). Each enum's names are listed in enumerator order.
#pragma once
#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace ts {

// Specialised below for every option enum: its names, in enumerator order.
template <class E>
inline constexpr std::array<std::string_view, 0> OPTION_NAMES = {};

enum class ChatFormat { raw, deepseek_r1, chatml, llama3 };  // tokenizer/chat_format.h
template <>
inline constexpr std::array<std::string_view, 4> OPTION_NAMES<ChatFormat> = {"raw", "deepseek_r1", "chatml", "llama3"};

enum class ComputeDType { auto_, float32, bfloat16, float16 };  // model.dtype (auto: fp32 on CPU, the checkpoint's on GPU)
template <>
inline constexpr std::array<std::string_view, 4> OPTION_NAMES<ComputeDType> = {"auto", "float32", "bfloat16", "float16"};

enum class StoreDType { float32, float16, bfloat16 };  // output.dtype: stored activations
template <>
inline constexpr std::array<std::string_view, 3> OPTION_NAMES<StoreDType> = {"float32", "float16", "bfloat16"};

enum class CollectSource { prompts, generations };
template <>
inline constexpr std::array<std::string_view, 2> OPTION_NAMES<CollectSource> = {"prompts", "generations"};

enum class CollectPositions { all, last, prompt, generated, spans, span_tokens };
template <>
inline constexpr std::array<std::string_view, 6> OPTION_NAMES<CollectPositions> = {"all", "last", "prompt", "generated", "spans", "span_tokens"};
// Rows that carry a span label (/activations/label): a span's mean, or each token of a span.
inline constexpr bool labelled_rows(CollectPositions p) { return p == CollectPositions::spans || p == CollectPositions::span_tokens; }

enum class AnnotatorKind { lexicon, toy, llm, taxonomy };
template <>
inline constexpr std::array<std::string_view, 4> OPTION_NAMES<AnnotatorKind> = {"lexicon", "toy", "llm", "taxonomy"};

enum class AnnotatePart { thinking, all };
template <>
inline constexpr std::array<std::string_view, 2> OPTION_NAMES<AnnotatePart> = {"thinking", "all"};

enum class DomWindow { s1, whole_span };  // vectors.window (vectors/windows.h)
template <>
inline constexpr std::array<std::string_view, 2> OPTION_NAMES<DomWindow> = {"s1", "whole-span"};

enum class GgufLayerMap { next_block, same_block };  // vectors.gguf_layer_map (io/vectors.h)
template <>
inline constexpr std::array<std::string_view, 2> OPTION_NAMES<GgufLayerMap> = {"next-block", "same-block"};

enum class TaxonomyJudge { none, llm };  // taxonomy.judge (stages/taxonomy_judge.h)
template <>
inline constexpr std::array<std::string_view, 2> OPTION_NAMES<TaxonomyJudge> = {"none", "llm"};

enum class SentencePosition { mean, last_token };  // sentences.position (stages/sentences.cpp)
template <>
inline constexpr std::array<std::string_view, 2> OPTION_NAMES<SentencePosition> = {"mean", "last_token"};

enum class AttributeMetric { paper, logprob };
template <>
inline constexpr std::array<std::string_view, 2> OPTION_NAMES<AttributeMetric> = {"paper", "logprob"};

enum class AttributeMode { trace, per_span };
template <>
inline constexpr std::array<std::string_view, 2> OPTION_NAMES<AttributeMode> = {"trace", "per-span"};

enum class ToyStyle { thinker, base };
template <>
inline constexpr std::array<std::string_view, 2> OPTION_NAMES<ToyStyle> = {"thinker", "base"};

enum class ToyGates { digits, coins };  // toy.thinker_gates (toy/corpus.h)
template <>
inline constexpr std::array<std::string_view, 2> OPTION_NAMES<ToyGates> = {"digits", "coins"};

enum class SaveDType { float32, bfloat16 };  // train.save_dtype
template <>
inline constexpr std::array<std::string_view, 2> OPTION_NAMES<SaveDType> = {"float32", "bfloat16"};

enum class LogLevel { trace, debug, info, warn, error };
template <>
inline constexpr std::array<std::string_view, 5> OPTION_NAMES<LogLevel> = {"trace", "debug", "info", "warn", "error"};

// The values of the list options [sweep] ops, positions, controls and hooks (kept as strings in the
// sweep's points and manifest rows).
enum class SweepOp { add, project_out };
template <>
inline constexpr std::array<std::string_view, 2> OPTION_NAMES<SweepOp> = {"add", "project-out"};
enum class SweepPositions { all, prompt, generated };
template <>
inline constexpr std::array<std::string_view, 3> OPTION_NAMES<SweepPositions> = {"all", "prompt", "generated"};
enum class SweepKindName { steer, taxonomy, basevec, hybrid, intervene };  // sweep.kind (stages/sweep_kind.h)
template <>
inline constexpr std::array<std::string_view, 5> OPTION_NAMES<SweepKindName> = {"steer", "taxonomy", "basevec", "hybrid", "intervene"};

enum class BasevecMethod { correction, linear };  // basevec.methods (stages/basevec_sweep.h)
template <>
inline constexpr std::array<std::string_view, 2> OPTION_NAMES<BasevecMethod> = {"correction", "linear"};
enum class HybridRule { fixed, mlp, guardrail, oracle };  // hybrid.rules (hybrid/lockstep.h)
template <>
inline constexpr std::array<std::string_view, 4> OPTION_NAMES<HybridRule> = {"fixed", "mlp", "guardrail", "oracle"};
enum class HybridAblation { none, only_bias, randcat, randvec, randvec_randcat, randpos };  // hybrid.ablations
template <>
inline constexpr std::array<std::string_view, 6> OPTION_NAMES<HybridAblation> = {"none", "only-bias", "randcat", "randvec", "randvec-randcat", "randpos"};
enum class BasevecLoss { topk, full, ce };  // basevec.loss (basevec/trainer.h)
template <>
inline constexpr std::array<std::string_view, 3> OPTION_NAMES<BasevecLoss> = {"topk", "full", "ce"};
enum class BasevecInit { zeros, random };  // basevec.init
template <>
inline constexpr std::array<std::string_view, 2> OPTION_NAMES<BasevecInit> = {"zeros", "random"};

enum class TaxonomyMethod { sae, kmeans };  // taxonomy.methods
template <>
inline constexpr std::array<std::string_view, 2> OPTION_NAMES<TaxonomyMethod> = {"sae", "kmeans"};

enum class ThinkEditSplit { tokens, percentile };  // thinkedit.split
template <>
inline constexpr std::array<std::string_view, 2> OPTION_NAMES<ThinkEditSplit> = {"tokens", "percentile"};
enum class EditDType { source, float32 };  // thinkedit.dtype: the edited checkpoint's tensors
template <>
inline constexpr std::array<std::string_view, 2> OPTION_NAMES<EditDType> = {"source", "float32"};
enum class DirectionPool { rows, sequences };  // directions.pool: mean over rows, or over each sequence's mean
template <>
inline constexpr std::array<std::string_view, 2> OPTION_NAMES<DirectionPool> = {"rows", "sequences"};
enum class CkaKernel { linear, both };  // directions.cka_kernel: linear CKA, or linear and RBF
template <>
inline constexpr std::array<std::string_view, 2> OPTION_NAMES<CkaKernel> = {"linear", "both"};
enum class PatchPositions { all, last, spans };  // intervene.positions: every position, the prompt's last token, or its spans' tokens
template <>
inline constexpr std::array<std::string_view, 3> OPTION_NAMES<PatchPositions> = {"all", "last", "spans"};
enum class InterveneMode { zero, mean, noise, patch, direction };  // intervene.modes (stages/intervene_sweep.cpp)
template <>
inline constexpr std::array<std::string_view, 5> OPTION_NAMES<InterveneMode> = {"zero", "mean", "noise", "patch", "direction"};
enum class SweepControl { none, random };
template <>
inline constexpr std::array<std::string_view, 2> OPTION_NAMES<SweepControl> = {"none", "random"};
enum class SweepHook { resid_pre, resid_mid, resid_post, attn_out, mlp_out };
template <>
inline constexpr std::array<std::string_view, 5> OPTION_NAMES<SweepHook> = {"hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_attn_out",
                                                                            "hook_mlp_out"};

template <class E>
constexpr std::string_view option_name(E e) {
  return OPTION_NAMES<E>[static_cast<size_t>(e)];
}

template <class E>
std::string option_text(E e) {
  return std::string(option_name(e));
}

template <class E>
constexpr std::optional<E> option_parse(std::string_view name) {
  for (size_t i = 0; i < OPTION_NAMES<E>.size(); ++i)
    if (OPTION_NAMES<E>[i] == name) return static_cast<E>(i);
  return std::nullopt;
}

// The names in order, `sep` between them and `last_sep` before the last: ("|", "|") gives
// "raw|deepseek_r1|chatml|llama3", (", ", " or ") gives "raw, deepseek_r1, chatml or llama3".
template <class E>
std::string option_names_joined(std::string_view sep, std::string_view last_sep) {
  std::string out;
  for (size_t i = 0; i < OPTION_NAMES<E>.size(); ++i) {
    if (i > 0) out += i + 1 == OPTION_NAMES<E>.size() ? last_sep : sep;
    out += OPTION_NAMES<E>[i];
  }
  return out;
}

}  // namespace ts
