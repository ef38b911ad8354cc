// Sentences of a thinking trace (docs/algorithms.md §B.3) and the thinking part of a response (§A.2), with
// exact offsets, so that every later stage locates a sentence by its range and never by searching
// for its text (docs/decisions.md: "Span localisation uses the annotator's own character offsets").
// Offsets are Unicode code points (what Python's str indexing and HF `tokenizers` offsets count) and
// UTF-8 bytes. Torch-free (thinksteer_formats).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ts {

struct Sentence {
  std::string text;               // == the split text's [byte_begin, byte_end)
  int64_t begin = 0, end = 0;     // code points of the split text, [begin, end)
  size_t byte_begin = 0, byte_end = 0;
};

// The sentence splitter of docs/algorithms.md §B.3. A break follows each '.', '!', '?', ';' and '\n', except
//   - a '.' between two digits (decimals: 3.5),
//   - the '.' of a single-letter word followed by " " and a lowercase letter (abbreviations: "J. smith"),
//   - a '!' right after a digit (factorials: 5!);
// a run of the same break character ("...", "?!" is two) counts as one break. Each piece is stripped
// of white space; a '"' right after a break (the closing quote of a quoted sentence) goes to the
// piece before it, whose break it follows; pieces of fewer than `min_words` (3) white-space separated
// words are dropped, and appended to `dropped` when it is given (they are reported, not labelled).
// `text` must be valid UTF-8.
std::vector<Sentence> split_sentences(std::string_view text, std::vector<Sentence>* dropped = nullptr, int64_t min_words = 3);

// A [begin, end) range of a text in code points and in bytes.
struct TextRange {
  int64_t begin = 0, end = 0;
  size_t byte_begin = 0, byte_end = 0;
};

// The thinking part of a response as the reference pipeline cuts it (docs/algorithms.md §A.2): from after the
// first "<think>" (from the start when there is none) to the first "</think>" after that (to the end
// when the thinking never closed). `text` must be valid UTF-8.
TextRange thinking_range(std::string_view text);

}  // namespace ts
