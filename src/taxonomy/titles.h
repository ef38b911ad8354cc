// Cluster titles without a language model (docs/algorithms.md §B.5, "Offline titles"): the words and
// word pairs most over-represented in a cluster's sentences against the other clusters' sentences, by
// the log-odds ratio with an informative Dirichlet prior (Monroe, Colaresi & Quinn 2008), and the
// cluster's representative sentences (closest to its unit direction, then seeded random ones).
// Torch-free: pure functions of the texts, the assignments and the vectors.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ts::taxonomy {

// The terms of a sentence: its words (maximal runs of letters, an apostrophe inside a word kept; ASCII
// lower-cased; non-ASCII letters kept, non-ASCII symbols such as × and ÷ not letters; digits and
// punctuation separate words and are not terms) that are not function words ("the", "let", "me", ...),
// and the pairs of consecutive words that are not both articles, prepositions, conjunctions or copulas
// ("let me" and "me check" are terms, "of the" is not). Each distinct term once.
std::vector<std::string> sentence_terms(std::string_view text);

struct Term {
  std::string text;
  double z = 0;        // the log-odds ratio over its standard deviation: > 0 over-represented
  int64_t count = 0;   // sentences of the cluster holding the term
};

// Per cluster (assign[i] in [0, k)), up to `per_cluster` terms with z > 0 held by at least 2 of its
// sentences, highest z first (ties: more sentences, then the term's text). Counts are sentences
// holding a term (document frequency), so a repeated word does not dominate. Prior: α_w = α0 · f_w / F
// with f_w the sentences holding w over all clusters, F = Σ f_w and α0 = min(F, 1000).
std::vector<std::vector<Term>> distinctive_terms(std::span<const std::string> texts, std::span<const int64_t> assign, int64_t k,
                                                 int64_t per_cluster);

// "t1, t2, t3": the three highest terms, a single word giving way to a pair that holds it and has at
// least 0.75 of its z, and a term skipped when it shares a word with one already taken (so "no wait"
// and "wait" do not both appear); `fallback` when there is none.
std::string offline_title(std::span<const Term> terms, const std::string& fallback);

// Up to n of `pool`, drawn without replacement from the seeded stream `seed` (a partial Fisher-Yates
// shuffle: the draws come first, in draw order).
std::vector<int64_t> seeded_sample(std::vector<int64_t> pool, size_t n, uint64_t seed);

// The rows of cluster `cluster` (assign[i] == cluster) nearest to its unit direction, given each
// row's squared Euclidean distance to the direction of its own cluster (`dist`; for unit rows
// 2 − 2 cos), up to n_close, closest first (ties: lower row); then up to n_random other rows of the
// cluster drawn without replacement from the seeded stream `seed` (§B.5: 100 + 100).
struct Representatives {
  std::vector<int64_t> closest, random;
};
Representatives representative_rows(std::span<const double> dist, std::span<const int64_t> assign, int64_t cluster, int64_t n_close,
                                    int64_t n_random, uint64_t seed);

}  // namespace ts::taxonomy
