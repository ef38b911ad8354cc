// Agreement of a clustering with a reference labelling (docs/algorithms.md §B.6, "Against a reference
// annotation"): normalized mutual information, adjusted Rand index, majority-label accuracy and the
// one-to-one (Hungarian-matched) accuracy. The definitions are scikit-learn's
// (`normalized_mutual_info_score` with the arithmetic mean, `adjusted_rand_score`), checked against it
// in tests/taxonomy. Torch-free (thinksteer_formats).
#pragma once
#include <cstdint>
#include <span>
#include <vector>

namespace ts::taxonomy {

// counts[c][l]: items in cluster c with reference label l. Clusters and labels are 0-based ids; an
// id no item has gives an empty row or column (ignored by every score).
struct Contingency {
  int64_t n_clusters = 0, n_labels = 0, n = 0;
  std::vector<int64_t> counts;  // row-major [n_clusters, n_labels]
  int64_t at(int64_t c, int64_t l) const { return counts[static_cast<size_t>(c * n_labels + l)]; }
};

// Throws std::invalid_argument when the spans differ in length or hold a negative id.
Contingency contingency(std::span<const int64_t> clusters, std::span<const int64_t> labels);

// NMI = I(C; L) / mean(H(C), H(L)) in nats; 1 when both partitions are a single class (as scikit-learn).
double normalized_mutual_info(const Contingency& t);
// ARI = (Σ C(n_cl, 2) − E) / (max − E), E = Σ_c C(a_c, 2) Σ_l C(b_l, 2) / C(n, 2); 1 for identical partitions.
double adjusted_rand_index(const Contingency& t);
// Each cluster mapped to its most frequent label: the share of items whose label is their cluster's.
double majority_accuracy(const Contingency& t);
// The best one-to-one map of clusters to labels (a cluster or label left over maps to nothing): the
// share of items it labels correctly. Hungarian algorithm on the count matrix, O(max(K, L)^3).
double matched_accuracy(const Contingency& t);
// The one-to-one map itself: match[c] = label of cluster c, or -1.
std::vector<int64_t> hungarian_match(const Contingency& t);

}  // namespace ts::taxonomy
