// The rows of a taxonomy sweep (stages/sweep_kind.h, sweep.kind = taxonomy): one clustering per
// (layer, K, method, seed), in that nesting order, each one Slurm array task. A point's key is a hash
// of its parameters (not of its row), so a re-plan that adds values to an axis keeps every finished
// task. Torch-free (thinksteer_formats).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/json.h"

namespace ts::taxonomy {

struct TaxonomyPoint {
  int64_t task = 0;
  std::string key;     // 16 hex digits of SHA-256 over the parameters below
  int64_t layer = 0;   // a layer of the sentences file
  int64_t k = 0;       // clusters (SAE latents)
  std::string method;  // sae | kmeans
  int64_t seed = 0;

  std::string label() const;  // "sae L6 K10 seed 0"
  json to_json() const;       // {"task", "key", "sweep": "taxonomy", "layer", "k", "method", "seed"}
  // Throws InputError naming `where` and the field (a key that does not match the parameters too).
  static TaxonomyPoint from_json(const json& row, const std::string& where);
};

// layers × ks × methods × seeds, in that order, rows numbered from 0.
std::vector<TaxonomyPoint> taxonomy_expand(const std::vector<int64_t>& layers, const std::vector<int64_t>& ks, const std::vector<std::string>& methods,
                                           const std::vector<int64_t>& seeds);

}  // namespace ts::taxonomy
