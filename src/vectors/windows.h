// The token windows of docs/algorithms.md §A.4 (difference-of-means vectors), as pure functions so that the
// stage and its tests agree on one definition. Positions index the token sequence a trace's spans
// refer to (for generations: prompt tokens then generated tokens, artifacts/generations.h
// generation_sequence); a span covers tokens [start, end). Torch-free (thinksteer_formats).
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

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

}  // namespace ts
