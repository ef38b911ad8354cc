// What a sweep point does to the forward pass, before any tensor exists: per layer, the vector and
// the coefficient (docs/algorithms.md §A.5, §H's "residual edit"). The stage turns each LayerEdit into a
// HookSet op at blocks.{layer}.{hook} (add: x + coef·v at the point's positions; project-out:
// x − (x·v̂)v̂).
//   vector  the feature vector named after the behaviour, at that layer, from the vectors file
//           (§A.4: rescaled to the overall mean's norm, so coef 1 adds a vector as large as the mean
//           activation);
//   random  a Gaussian direction with exactly that vector's norm at that layer (docs/decisions.md:
//           random-vector ablations keep each vector's norm), a pure function of (seed, behaviour,
//           layer), so every rank, node and rerun draws the same one.
// coef = point.coef · point.layer_scale (1/n_layers when steer.divide_by_layers).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "io/vectors.h"
#include "steer/sweep_plan.h"

namespace ts {

struct LayerEdit {
  int64_t layer = 0;
  std::vector<float> vector;  // d_model values
  double coef = 0;
};

// The edits of a steered point (none for a baseline). Throws InputError(`vectors_file`, ...) when the
// behaviour or a layer is not in the set, or the vector is empty (count 0, or zero norm): steering
// with a zero vector would look like a result and mean nothing.
std::vector<LayerEdit> point_edits(const SweepPoint& point, const VectorSet& set, const std::string& vectors_file);

// A standard normal direction of `d` values scaled to Euclidean norm `norm`, a pure function of the
// arguments (splitmix64 + Box-Muller in double precision).
std::vector<float> random_direction(int64_t d, double norm, uint64_t seed, std::string_view label, int64_t layer);

}  // namespace ts
