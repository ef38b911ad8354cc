// The token windows of docs/algorithms.md §A.4 (difference-of-means vectors) and §B.3 (sentence
// activations), as pure functions so that the stages and their tests agree on one definition.
// Positions index the token sequence a trace's spans refer to (for generations: prompt tokens then
// generated tokens, artifacts/generations.h generation_sequence); a span covers tokens [start, end).
// Torch-free (thinksteer_formats).
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/options.h"

namespace ts {

// The per-span window (docs/decisions.md: S1 by default, option whole-span), core/options.h's DomWindow:
//   s1          [start-1, min(end-1, start+10)): the token before the span and the span's first <= 10
//               tokens, one token early at the end (at most 11 positions), as the reference code does
//   whole_span  [start-1, end-1): the whole span shifted one token left (S2's older variant)
inline constexpr int64_t DOM_S1_SPAN_TOKENS = 10;

// "s1" / "whole-span" (the vectors.window values, core/options.h); std::invalid_argument otherwise.
DomWindow dom_window_from_name(std::string_view name);
std::string dom_window_name(DomWindow w);

struct TokenRange {
  int64_t begin = 0, end = 0;  // [begin, end)
  int64_t size() const { return end - begin; }
  bool operator==(const TokenRange&) const = default;
};

// The window of a span, or why it has none (where the reference code averages an empty slice into
// NaN and then skips the span): "empty_span" (end <= start) or "span_at_position_0" (no token
// precedes it; the reference would wrap around to the last token).
struct SpanWindow {
  TokenRange range;
  std::string skip;  // empty when the window is valid
};
SpanWindow dom_span_window(int64_t start, int64_t end, DomWindow window);

// §A.4 step 2: the overall window of a trace, [min start, max end) over its spans (all labels);
// nullopt for a trace without spans. Empty spans (end <= start) take part like the others.
std::optional<TokenRange> dom_overall_window(std::span<const TokenRange> spans);

// §B.3, HF `char_to_token` for every code point of a text of `n_chars` code points: the first token
// whose code-point range [cb, ce) holds it, -1 where no token does. `offsets` are per token, as
// artifacts/generations.h's TokenSequence gives them.
std::vector<int64_t> char_tokens(std::span<const std::pair<int64_t, int64_t>> offsets, int64_t n_chars);

// §B.3: the tokens of a sentence at code points [begin, end) of the sequence's text (`token_of_char`
// is char_tokens() of that text, `n_tokens` its token count) and its window.
//   tokens  [token holding the sentence's first character, token holding the character after it); a
//           sentence that ends the text runs to its end (tokens.end = n_tokens)
//   window  [tokens.begin - 1, tokens.end): the mean includes the token before the sentence
// or why there is none: "no_token" (a character without a token, or a range outside the text),
// "sentence_at_position_0" (no token precedes it), "empty_window" (the end's token lies before the
// start's).
struct SentenceWindow {
  TokenRange tokens, window;
  std::string skip;  // empty when the window is valid
};
SentenceWindow sentence_window(std::span<const int64_t> token_of_char, int64_t n_tokens, int64_t begin, int64_t end);

}  // namespace ts
