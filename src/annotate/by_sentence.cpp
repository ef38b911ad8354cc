// The sentence loop of sentence-based annotators (by_sentence.h).
#include "annotate/by_sentence.h"

#include <algorithm>
#include <vector>

#include "core/sentences.h"

namespace ts {
namespace {

// Byte offset of code point `cp` of valid UTF-8 `text` (its size when cp is at or past the end).
size_t byte_of_code_point(std::string_view text, int64_t cp) {
  size_t b = 0;
  for (int64_t seen = -1; b < text.size(); ++b)
    if ((static_cast<unsigned char>(text[b]) & 0xC0) != 0x80 && ++seen == cp) break;
  return b;
}

}  // namespace

Annotation annotate_by_sentence(const Trace& trace, const std::function<SentenceVerdict(std::string_view)>& label_of) {
  Annotation a;
  const size_t b = byte_of_code_point(trace.text, trace.begin), e = byte_of_code_point(trace.text, trace.end);
  std::vector<Sentence> fragments;
  const std::vector<Sentence> sentences = split_sentences(trace.text.substr(b, e - b), &fragments);
  a.units = static_cast<int64_t>(sentences.size());
  for (const Sentence& s : sentences) {
    const int64_t begin = trace.begin + s.begin, end = trace.begin + s.end;
    SentenceVerdict v = label_of(s.text);
    if (v.label >= 0) a.spans.push_back({v.label, begin, end, std::move(v.rule)});
    else a.problems.push_back({"unlabelled_sentence", begin, end, v.why_unlabelled + ": " + s.text, {}});
  }
  for (const Sentence& f : fragments)
    a.problems.push_back({"short_fragment", trace.begin + f.begin, trace.begin + f.end, "fewer than 3 words (docs/algorithms.md §B.3): " + f.text, {}});
  std::stable_sort(a.problems.begin(), a.problems.end(), [](const AnnotationProblem& x, const AnnotationProblem& y) { return x.begin < y.begin; });
  if (sentences.empty()) a.problems.push_back({"no_sentences", trace.begin, trace.end, "the annotated part holds no sentence of 3 words or more", {}});
  return a;
}

}  // namespace ts
