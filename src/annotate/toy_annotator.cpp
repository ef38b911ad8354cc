// The toy annotator (toy_annotator.h).
#include "annotate/toy_annotator.h"

#include <algorithm>

#include "annotate/by_sentence.h"
#include "core/sha256.h"
#include "toy/phrasings.h"

namespace ts {

ToyAnnotator::ToyAnnotator() {
  // The labels and their phrasings, in order: a change to any template changes the identity (and so
  // the config hash of every output made with this annotator).
  std::string all;
  for (const std::string& label : labels()) {
    all += "[" + label + "]\n";
    for (const std::string& p : toy_phrasings(label)) all += p + "\n";
  }
  identity_ = "toy templates sha256 " + sha256_hex(all);
}

const std::vector<std::string>& ToyAnnotator::labels() const { return toy_behaviour_labels(); }

Annotation ToyAnnotator::annotate(const Trace& trace) const {
  const std::vector<std::string>& names = labels();
  return annotate_by_sentence(trace, [&](std::string_view sentence) -> SentenceVerdict {
    const std::string label = toy_label_sentence(sentence);
    const auto it = std::find(names.begin(), names.end(), label);
    if (it == names.end()) return {-1, "", "no toy template matches the sentence"};
    return {static_cast<int32_t>(it - names.begin()), "toy-template", ""};
  });
}

}  // namespace ts
