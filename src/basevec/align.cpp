#include "basevec/align.h"

#include <algorithm>
#include <set>

namespace ts::basevec {

namespace {

// The tokens that start inside [begin, begin + length), keyed by their start relative to begin (the
// first token of each start: a character split over tokens gives several the same start).
std::vector<std::pair<int64_t, int64_t>> starts(std::span<const std::pair<int64_t, int64_t>> offsets, int64_t begin, int64_t length) {
  std::vector<std::pair<int64_t, int64_t>> out;  // (relative start, token index)
  for (size_t j = 0; j < offsets.size(); ++j) {
    const int64_t s = offsets[j].first - begin;
    if (s < 0 || s >= length) continue;
    if (!out.empty() && out.back().first >= s) continue;
    out.emplace_back(s, static_cast<int64_t>(j));
  }
  return out;
}

}  // namespace

TokenAlignment align_thinking(std::span<const int32_t> base_ids, std::span<const std::pair<int64_t, int64_t>> base_offsets, int64_t base_begin,
                              std::span<const int32_t> think_ids, std::span<const std::pair<int64_t, int64_t>> think_offsets, int64_t think_begin,
                              int64_t length) {
  TokenAlignment a;
  const auto b = starts(base_offsets, base_begin, length), t = starts(think_offsets, think_begin, length);
  size_t i = 0, j = 0;
  while (i < b.size() && j < t.size() && b[i].first != t[j].first) (b[i].first < t[j].first ? ++i : ++j);
  if (i == b.size() || j == t.size()) {
    a.reason = "no character of the thinking text starts a token in both tokenizations";
    return a;
  }
  a.anchor = b[i].first, a.base_first = b[i].second, a.think_first = t[j].second;
  // The base tokens from the anchor that start inside the thinking text; the thinking model's must match.
  int64_t n = 0;
  for (size_t k = static_cast<size_t>(a.base_first); k < base_ids.size() && base_offsets[k].first - base_begin < length; ++k) ++n;
  if (a.think_first + n > static_cast<int64_t>(think_ids.size())) {
    a.reason = "the rollout has fewer tokens after the anchor than the base sequence";
    return a;
  }
  for (int64_t k = 0; k < n; ++k)
    if (base_ids[static_cast<size_t>(a.base_first + k)] != think_ids[static_cast<size_t>(a.think_first + k)]) {
      a.reason = "the tokenizations differ " + std::to_string(k) + " tokens after the anchor (at code point " +
                 std::to_string(base_offsets[static_cast<size_t>(a.base_first + k)].first - base_begin) + " of the thinking text)";
      return a;
    }
  if (a.base_first < 1 || a.think_first < 1) {
    a.reason = "no token before the anchor (an empty prompt)";
    return a;
  }
  a.n = n;
  a.ok = n >= 1;
  if (!a.ok) a.reason = "no token after the anchor";
  return a;
}

}  // namespace ts::basevec
