#include "tokenizer/split_behavior.h"

namespace ts {

std::optional<SplitBehavior> split_behavior_from_name(std::string_view name) {
  if (name == "Removed") return SplitBehavior::removed;
  if (name == "Isolated") return SplitBehavior::isolated;
  if (name == "MergedWithPrevious") return SplitBehavior::merged_with_previous;
  if (name == "MergedWithNext") return SplitBehavior::merged_with_next;
  if (name == "Contiguous") return SplitBehavior::contiguous;
  return std::nullopt;
}

void segment_by_matches(const std::vector<std::pair<uint32_t, uint32_t>>& matches, uint32_t length,
                        std::vector<MatchSpan>& spans) {
  spans.clear();
  uint32_t prev = 0;
  for (const auto& [s, e] : matches) {
    if (prev != s) spans.push_back({prev, s, false});
    spans.push_back({s, e, true});
    prev = e;
  }
  if (prev != length) spans.push_back({prev, length, false});
}

void apply_split_behavior(std::vector<MatchSpan>& spans, SplitBehavior behavior, bool invert, uint32_t base,
                          std::vector<ByteRange>& out) {
  if (invert)
    for (MatchSpan& s : spans) s.is_match = !s.is_match;

  auto emit = [&](uint32_t b, uint32_t e) {
    if (e > b) out.push_back({base + b, base + e});
  };

  switch (behavior) {
    case SplitBehavior::isolated:
      for (const MatchSpan& s : spans) emit(s.begin, s.end);
      return;
    case SplitBehavior::removed:
      for (const MatchSpan& s : spans)
        if (!s.is_match) emit(s.begin, s.end);
      return;
    case SplitBehavior::contiguous:
    case SplitBehavior::merged_with_previous: {
      // Contiguous: a span of the same kind as the previous one extends it.
      // MergedWithPrevious: a match following a non-match extends it.
      std::vector<ByteRange> merged;
      bool previous_match = false;
      for (const MatchSpan& s : spans) {
        bool extend = behavior == SplitBehavior::contiguous ? s.is_match == previous_match
                                                            : (s.is_match && !previous_match);
        if (extend && !merged.empty())
          merged.back().end = s.end;
        else
          merged.push_back({s.begin, s.end});
        previous_match = s.is_match;
      }
      for (const ByteRange& r : merged) emit(r.begin, r.end);
      return;
    }
    case SplitBehavior::merged_with_next: {
      // Walking backwards, a match preceding a non-match extends it to the left.
      std::vector<ByteRange> merged;
      bool previous_match = false;
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->is_match && !previous_match && !merged.empty())
          merged.back().begin = it->begin;
        else
          merged.push_back({it->begin, it->end});
        previous_match = it->is_match;
      }
      for (auto it = merged.rbegin(); it != merged.rend(); ++it) emit(it->begin, it->end);
      return;
    }
  }
}

}  // namespace ts
