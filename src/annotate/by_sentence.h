// The loop every sentence-based annotator shares (lexicon, toy): split the annotated part of a trace
// into §B.3 sentences, ask a labeller about each, and turn the answers into spans and problems, so
// the annotators differ only in how they label one sentence. Torch-free (thinksteer_formats).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "annotate/annotator.h"

namespace ts {

// What a labeller says about one sentence: a label index, and the rule that decided it; or no
// label (-1) and why, which becomes an `unlabelled_sentence` problem.
struct SentenceVerdict {
  int32_t label = -1;
  std::string rule;
  std::string why_unlabelled;
};

// One span per sentence of [trace.begin, trace.end) with at least 3 words that `label_of` labels.
// Problems, sorted by position: unlabelled_sentence ("<why>: <sentence>"), short_fragment (a piece
// under 3 words, §B.3), and no_sentences at the end when the part holds no sentence at all.
// Annotation::units is the number of sentences.
Annotation annotate_by_sentence(const Trace& trace, const std::function<SentenceVerdict(std::string_view sentence)>& label_of);

}  // namespace ts
