// §A.4 and §B.3 token windows (windows.h).
#include "vectors/windows.h"

#include <algorithm>
#include <stdexcept>

namespace ts {

DomWindow dom_window_from_name(std::string_view name) {
  if (const auto w = option_parse<DomWindow>(name)) return *w;
  throw std::invalid_argument("unknown difference-of-means window '" + std::string(name) + "' (" + option_names_joined<DomWindow>(", ", " or ") + ")");
}

std::string dom_window_name(DomWindow w) { return option_text(w); }

SpanWindow dom_span_window(int64_t start, int64_t end, DomWindow window) {
  if (end <= start) return {{}, "empty_span"};
  if (start < 1) return {{}, "span_at_position_0"};
  const int64_t stop = window == DomWindow::s1 ? std::min(end - 1, start + DOM_S1_SPAN_TOKENS) : end - 1;
  return {{start - 1, stop}, ""};  // stop >= start: never empty once the span is not
}

std::optional<TokenRange> dom_overall_window(std::span<const TokenRange> spans) {
  if (spans.empty()) return std::nullopt;
  TokenRange out = spans.front();
  for (const TokenRange& s : spans) {
    out.begin = std::min(out.begin, s.begin);
    out.end = std::max(out.end, s.end);
  }
  return out;
}

std::vector<int64_t> char_tokens(std::span<const std::pair<int64_t, int64_t>> offsets, int64_t n_chars) {
  std::vector<int64_t> out(static_cast<size_t>(std::max<int64_t>(n_chars, 0)), -1);
  for (size_t t = 0; t < offsets.size(); ++t)
    for (int64_t c = std::max<int64_t>(offsets[t].first, 0); c < std::min(offsets[t].second, n_chars); ++c)
      if (out[static_cast<size_t>(c)] < 0) out[static_cast<size_t>(c)] = static_cast<int64_t>(t);
  return out;
}

SentenceWindow sentence_window(std::span<const int64_t> token_of_char, int64_t n_tokens, int64_t begin, int64_t end) {
  const auto n_chars = static_cast<int64_t>(token_of_char.size());
  SentenceWindow w;
  if (begin < 0 || begin >= end || end > n_chars) return {{-1, -1}, {}, "no_token"};
  w.tokens = {token_of_char[static_cast<size_t>(begin)], end < n_chars ? token_of_char[static_cast<size_t>(end)] : n_tokens};
  if (w.tokens.begin < 0 || w.tokens.end < 0) w.skip = "no_token";
  else if (w.tokens.begin == 0) w.skip = "sentence_at_position_0";
  else if (w.tokens.end < w.tokens.begin) w.skip = "empty_window";
  else w.window = {w.tokens.begin - 1, w.tokens.end};
  return w;
}

}  // namespace ts
