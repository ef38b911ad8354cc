// §A.4 token windows (windows.h).
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

}  // namespace ts
