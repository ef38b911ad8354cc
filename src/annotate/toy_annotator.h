// The `toy` annotator: the planted-truth labels of the toy reasoning world (toy/corpus.h). Every §B.3
// sentence of the annotated part gets the label of the corpus phrasing template it instantiates
// (toy_label_sentence, toy/phrasings.h), which is exact on the corpus; a sentence no template matches
// (a toy model's own invention) is an `unlabelled_sentence` problem, never a guess. On traces a toy
// model generated this gives ground-truth spans to train vectors on and to judge other annotators by.
// Offline and deterministic.
#pragma once
#include <string>
#include <vector>

#include "annotate/annotator.h"

namespace ts {

class ToyAnnotator : public Annotator {
 public:
  ToyAnnotator();
  std::string name() const override { return "toy"; }
  const std::vector<std::string>& labels() const override;  // the six of docs/algorithms.md §A.3
  // The templates decide everything: "toy templates sha256 <hash of every label's phrasings>".
  std::string identity() const override { return identity_; }
  // Spans, problems and units as annotate_by_sentence (annotate/by_sentence.h) gives them; rule
  // "toy-template".
  Annotation annotate(const Trace& trace) const override;

 private:
  std::string identity_;
};

}  // namespace ts
