// How a Split-like pre-tokenizer turns pattern matches into pieces (HF SplitDelimiterBehavior).
// With input "the-final--countdown" split on '-':
//   Removed            -> the | final | countdown
//   Isolated           -> the | - | final | - | - | countdown
//   MergedWithPrevious -> the- | final- | - | countdown
//   MergedWithNext     -> the | -final | - | -countdown
//   Contiguous         -> the | - | final | -- | countdown
#pragma once
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace ts {

enum class SplitBehavior { removed, isolated, merged_with_previous, merged_with_next, contiguous };

std::optional<SplitBehavior> split_behavior_from_name(std::string_view name);

struct ByteRange {
  uint32_t begin;
  uint32_t end;
};

// One entry of a pattern's segmentation of a piece: matches and the gaps between them, in order,
// covering the whole piece (empty matches included, as HF produces them).
struct MatchSpan {
  uint32_t begin;
  uint32_t end;
  bool is_match;
};

// Turns the segmentation into the resulting non-empty pieces (offsets shifted by `base`), appended
// to `out`. `invert` swaps the roles of matches and gaps first.
void apply_split_behavior(std::vector<MatchSpan>& spans, SplitBehavior behavior, bool invert, uint32_t base,
                          std::vector<ByteRange>& out);

// Builds the segmentation of [0, length) from sorted, non-overlapping matches.
void segment_by_matches(const std::vector<std::pair<uint32_t, uint32_t>>& matches, uint32_t length,
                        std::vector<MatchSpan>& spans);

}  // namespace ts
