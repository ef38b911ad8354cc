// Spherical k-means, the §B.4 baseline the TopK SAE is compared with (docs/algorithms.md): on unit
// vectors, a point belongs to the centre of largest cosine, and a centre is the normalised sum of its
// points. k-means++ initialisation seeded by splitmix64 (first centre uniform, then each next one with
// probability proportional to ‖x − c‖² = 2 − 2 cos to the nearest centre so far); Lloyd iterations
// until no assignment changes or max_iter; of `n_init` such runs (seeds derived from `seed`) the one of
// lowest objective is kept. An emptied cluster is re-seeded with the point farthest
// from its centre (and counted in `reseeded`), so no cluster is ever silently empty.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>

namespace ts::taxonomy {

struct KMeansResult {
  at::Tensor centres;       // [K, d], unit rows
  at::Tensor labels;        // [N] int64
  double objective = 0;     // Σ (1 − cos(x, centre of x))
  int64_t iterations = 0;
  int64_t reseeded = 0;
  bool converged = false;
};

// x: [N, d] float32 with unit rows (the centred, unit-normalised sentence vectors); 1 <= k <= N.
KMeansResult spherical_kmeans(const at::Tensor& x, int64_t k, uint64_t seed, int64_t n_init = 4, int64_t max_iter = 300);

}  // namespace ts::taxonomy
