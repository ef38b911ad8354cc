#include "annotate/taxonomy_annotator.h"

#include <cstdio>

namespace ts {

TaxonomyAnnotator::TaxonomyAnnotator(int64_t n_clusters, std::unordered_map<std::string, std::vector<ClassifiedSentence>> by_trace,
                                     std::string identity)
    : by_trace_(std::move(by_trace)), identity_(std::move(identity)) {
  for (int64_t k = 0; k < n_clusters; ++k) labels_.push_back("idx" + std::to_string(k));
}

Annotation TaxonomyAnnotator::annotate(const Trace& trace) const {
  Annotation a;
  const auto it = by_trace_.find(trace.id);
  if (it == by_trace_.end()) {
    a.problems.push_back({"not_in_sentences", -1, -1, "the sentences file holds no sentence of this trace (run `thinksteer sentences` on the same generations)", {}});
    return a;
  }
  for (const ClassifiedSentence& s : it->second) {
    if (s.begin < trace.begin || s.end > trace.end) continue;
    char rule[48];
    std::snprintf(rule, sizeof rule, "sae a=%.2f", static_cast<double>(s.value));
    a.spans.push_back({s.cluster, s.begin, s.end, rule});
    ++a.units;
  }
  return a;
}

}  // namespace ts
