// The toy annotator (src/annotate/toy_annotator.h): on the toy corpus its spans are exactly the
// planted sentences with their planted labels (both styles), a sentence no template matches is a
// problem rather than a guess, and its identity follows the templates.
#include <gtest/gtest.h>

#include <string>

#include "core/sentences.h"
#include "annotate/toy_annotator.h"
#include "toy/corpus.h"

namespace {

TEST(ToyAnnotator, ReproducesThePlantedLabels) {
  const ts::ToyAnnotator annotator;
  EXPECT_EQ(annotator.labels(), ts::behaviour_labels());
  for (const std::string style : {"thinker", "base"}) {
    ts::ToyCorpusOptions o;
    o.style = style;
    o.n_problems = 400;
    int64_t sentences = 0;
    for (const ts::ToyProblem& p : ts::toy_corpus_generate(o)) {
      const ts::TextRange part = ts::thinking_range(p.text);
      const ts::Annotation a = annotator.annotate({p.id, p.text, part.begin, part.end});
      ASSERT_EQ(a.spans.size(), p.sentences.size()) << p.id;
      EXPECT_TRUE(a.problems.empty()) << p.id << ": " << a.problems.front().detail;
      for (size_t i = 0; i < a.spans.size(); ++i) {
        EXPECT_EQ(a.spans[i].begin, p.sentences[i].begin) << p.id;
        EXPECT_EQ(a.spans[i].end, p.sentences[i].end) << p.id;
        EXPECT_EQ(annotator.labels()[static_cast<size_t>(a.spans[i].label)], p.sentences[i].label) << p.id;
        EXPECT_EQ(a.spans[i].rule, "toy-template");
      }
      sentences += static_cast<int64_t>(a.spans.size());
    }
    EXPECT_GT(sentences, 1500) << style;
  }
}

TEST(ToyAnnotator, UnknownSentencesAreProblems) {
  const ts::ToyAnnotator annotator;
  const std::string text = "<think>\nThe moon is made of cheese today. Hmm.\n</think>";
  const ts::TextRange part = ts::thinking_range(text);
  const ts::Annotation a = annotator.annotate({"x", text, part.begin, part.end});
  EXPECT_TRUE(a.spans.empty());
  ASSERT_EQ(a.problems.size(), 2u);
  EXPECT_EQ(a.problems[0].kind, "unlabelled_sentence");
  EXPECT_EQ(a.problems[0].detail, "no toy template matches the sentence: The moon is made of cheese today.");
  EXPECT_EQ(a.problems[1].kind, "short_fragment");
  EXPECT_EQ(a.units, 1);
}

TEST(ToyAnnotator, IdentityNamesTheTemplates) {
  const ts::ToyAnnotator annotator;
  EXPECT_EQ(annotator.name(), "toy");
  EXPECT_EQ(annotator.identity().rfind("toy templates sha256 ", 0), 0u);
  EXPECT_EQ(annotator.identity().size(), std::string("toy templates sha256 ").size() + 64);
}

}  // namespace
