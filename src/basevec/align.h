// The two tokenizations of one thinking text (docs/algorithms.md §B.10 "Collection"): the thinking
// model's rollout (its chat prompt, then the thinking text it generated) and the base model's sequence
// (the base prompt, then the same thinking text). The anchor is the first character boundary inside
// the thinking text at which both tokenizations have a token boundary; from there on the tokens must be
// the same ids, so base position i and thinking position i - base_first + think_first predict the same
// next token. Pairs that share the prompt format align at the start of the thinking text. Torch-free.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace ts::basevec {

struct TokenAlignment {
  bool ok = false;
  std::string reason;       // why not, when !ok
  int64_t anchor = 0;       // code points after the start of the thinking text
  int64_t base_first = 0;   // the base token that starts at the anchor
  int64_t think_first = 0;  // the thinking model's token that starts there
  int64_t n = 0;            // tokens from there to the end of the thinking text, identical in both
};

// `*_offsets` are code-point [begin, end) ranges of each token in its own text; the thinking text
// occupies [*_begin, *_begin + length) of each text. Tokens that start at or after the end of the
// thinking text are not compared (the thinking model goes on with </think> and its answer).
TokenAlignment align_thinking(std::span<const int32_t> base_ids, std::span<const std::pair<int64_t, int64_t>> base_offsets, int64_t base_begin,
                              std::span<const int32_t> think_ids, std::span<const std::pair<int64_t, int64_t>> think_offsets, int64_t think_begin,
                              int64_t length);

}  // namespace ts::basevec
