// Helpers the toy corpus tests share (test_toy_corpus.cpp, test_toy_corpus_options.cpp).
#pragma once
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "toy/corpus.h"

namespace ts::toy_test {

// Code-point offset -> byte offset (the generator's ranges are in code points).
inline size_t byte_of(const std::string& s, int64_t cp) {
  size_t i = 0;
  for (int64_t n = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) continue;
    if (n++ == cp) return i;
  }
  return i;
}
inline std::string slice(const std::string& s, int64_t b, int64_t e) {
  const size_t bb = byte_of(s, b), eb = byte_of(s, e);
  return s.substr(bb, eb - bb);
}

// A corpus of n problems of one style, on seed 7 (no shipped model was trained on it).
inline ToyCorpusOptions opts(const std::string& style, int64_t n = 2000) {
  ToyCorpusOptions o;
  o.style = style;
  o.n_problems = n;
  o.seed = 7;
  return o;
}

// Two corpora pose the same problems (questions, answers, split), whatever their traces.
inline void expect_same_problems(const std::vector<ts::ToyProblem>& a, const std::vector<ts::ToyProblem>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].question, b[i].question) << a[i].id;
    EXPECT_EQ(a[i].answer, b[i].answer) << a[i].id;
    EXPECT_EQ(a[i].split, b[i].split) << a[i].id;
  }
}

// Two corpora are the same, line for line.
inline void expect_same_corpus(const std::vector<ts::ToyProblem>& a, const std::vector<ts::ToyProblem>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(ts::toy_problem_to_json_line(a[i]), ts::toy_problem_to_json_line(b[i]));
}

// The base style ignores a thinker option: the base corpus is the same with `set` applied to its options.
template <class Set>
void expect_base_ignores(Set set) {
  auto base = opts("base", 200), changed = base;
  set(changed);
  expect_same_corpus(ts::toy_corpus_generate(base), ts::toy_corpus_generate(changed));
}

}  // namespace ts::toy_test
