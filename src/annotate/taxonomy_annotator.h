// The `taxonomy` annotator (docs/algorithms.md §B.7): each §B.3 sentence of a trace gets the cluster of
// a taxonomy SAE, the argmax of its encoder output on the sentence's activation. The activations are
// the `sentences` stage's, so the annotator is built from data computed before it runs (the stage
// layer reads the sentences file and the SAE export and classifies every row: stages/annotate_taxonomy.cpp);
// annotate() is a lookup by trace id. Labels are "idx0".."idx<K-1>" as §B.7 writes them. A trace the
// sentences file does not hold is a `not_in_sentences` problem; pieces the sentences stage dropped (under
// sentences.min_words words) get no span, never a guess. Torch-free.
#pragma once
#include <string>
#include <unordered_map>
#include <vector>

#include "annotate/annotator.h"

namespace ts {

struct ClassifiedSentence {
  int64_t begin = 0, end = 0;  // code points of the trace's text
  int32_t cluster = 0;
  float value = 0;             // the winning latent's encoder output
};

class TaxonomyAnnotator : public Annotator {
 public:
  // by_trace: per trace id its classified sentences, sorted by begin, not overlapping.
  TaxonomyAnnotator(int64_t n_clusters, std::unordered_map<std::string, std::vector<ClassifiedSentence>> by_trace, std::string identity);
  std::string name() const override { return "taxonomy"; }
  const std::vector<std::string>& labels() const override { return labels_; }
  std::string identity() const override { return identity_; }
  // One span per classified sentence inside [trace.begin, trace.end); rule "sae a=<value>".
  Annotation annotate(const Trace& trace) const override;

 private:
  std::vector<std::string> labels_;
  std::unordered_map<std::string, std::vector<ClassifiedSentence>> by_trace_;
  std::string identity_;
};

}  // namespace ts
