// Planted-truth reasoning world: the word-problem templates the corpus generator (corpus.cpp) draws
// from, and what they are made of: the deterministic random stream and problems as expression DAGs of
// integer steps. Internal to src/toy (the corpus format is toy/corpus.h).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/splitmix.h"

namespace ts::toy_detail {

// ---------------------------------------------------------------------------------------------
// Deterministic randomness: splitmix64, keyed by (seed, problem index). Integer ranges by modulo
// (the bias for ranges this small is far below anything the corpus statistics could show).

inline uint64_t mix64(uint64_t z) { return splitmix64(z); }

struct Rng {
  uint64_t state;
  uint64_t next() { return mix64(state += 0x9E3779B97F4A7C15ULL); }
  int64_t range(int64_t lo, int64_t hi) {  // inclusive
    return lo + static_cast<int64_t>(next() % static_cast<uint64_t>(hi - lo + 1));
  }
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  bool coin(double p) { return unit() < p; }
  template <class T>
  const T& pick(const std::vector<T>& v) { return v[static_cast<size_t>(range(0, static_cast<int64_t>(v.size()) - 1))]; }
};

// ---------------------------------------------------------------------------------------------
// Problems: an expression DAG of integer steps.

struct Operand {
  bool ref = false;  // true: the result of step `v`; false: the constant `v`
  int64_t v = 0;
};
struct Step {
  char op;  // + - * /
  Operand l, r;
  std::string what;  // noun phrase for the result ("the cost of the apples")
  std::string fact;  // the recalled fact behind this step: a lowercase clause without final punctuation
};

struct Spec {
  std::string tmpl, question, goal;  // goal: a clause ("how many dollars Mia spends")
  std::vector<Step> steps;
};

// Decimal text of a value.
std::string S(int64_t v);
// `s` with its first letter upper-cased (ASCII).
std::string cap(std::string s);
// Integer division rounds down: exact in every problem as posed; only a propagated base-style slip
// can make it inexact (see corpus.h).
int64_t apply(char op, int64_t a, int64_t b);

// A template builds the Spec of a problem with `k` steps (1..4), drawing names and numbers from `g`.
using TemplateFn = Spec (*)(Rng&, int);
// The templates, in a fixed order (a problem's template is drawn by index): shopping, travel, sharing,
// ages, areas, reading.
const std::vector<TemplateFn>& problem_templates();

}  // namespace ts::toy_detail
