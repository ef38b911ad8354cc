#include "steer/intervention.h"

#include <cmath>
#include <numbers>

#include "core/error.h"
#include "core/sha256.h"
#include "core/splitmix.h"

namespace ts {

std::vector<float> random_direction(int64_t d, double norm, uint64_t seed, std::string_view label, int64_t layer) {
  const std::string h = sha256_hex(label);
  uint64_t state = splitmix64(seed) ^ std::stoull(h.substr(0, 15), nullptr, 16) ^ splitmix64(static_cast<uint64_t>(layer) + 0x9e37);
  auto uniform = [&] {  // (0, 1]
    state = splitmix64(state);
    return (static_cast<double>(state >> 11) + 1.0) * 0x1.0p-53;
  };
  std::vector<double> g(static_cast<size_t>(d));
  for (size_t i = 0; i < g.size(); i += 2) {
    const double r = std::sqrt(-2.0 * std::log(uniform())), t = 2.0 * std::numbers::pi * uniform();
    g[i] = r * std::cos(t);
    if (i + 1 < g.size()) g[i + 1] = r * std::sin(t);
  }
  double ss = 0;
  for (double x : g) ss += x * x;
  const double scale = norm / std::sqrt(ss);
  std::vector<float> out(g.size());
  for (size_t i = 0; i < g.size(); ++i) out[i] = static_cast<float>(g[i] * scale);
  return out;
}

std::vector<LayerEdit> point_edits(const SweepPoint& p, const VectorSet& set, const std::string& vectors_file) {
  std::vector<LayerEdit> out;
  if (p.kind == "baseline") return out;
  const auto name = set.name_index(p.vector);
  if (!name) throw InputError(vectors_file, "names", "no vector named '" + p.vector + "' (sweep.vectors); the file holds " + std::to_string(set.n_names()) + " names");
  for (int64_t layer : p.layers) {
    const auto li = set.layer_index(layer);
    if (!li) throw InputError(vectors_file, "layers", "no vectors at layer " + std::to_string(layer) + " (sweep.layers)");
    const float* v = set.vector(*name, *li);
    double ss = 0;
    for (int64_t i = 0; i < set.d_model; ++i) ss += static_cast<double>(v[i]) * v[i];
    if (set.count(*name, *li) == 0 || !(ss > 0))
      throw InputError(vectors_file, "counts[" + p.vector + "]",
                       "the vector at layer " + std::to_string(layer) + " is empty (no spans of '" + p.vector + "'): steering with it would mean nothing");
    LayerEdit e;
    e.layer = layer;
    e.coef = p.coef * p.layer_scale;
    if (p.kind == "random") e.vector = random_direction(set.d_model, std::sqrt(ss), static_cast<uint64_t>(p.seed), p.vector, layer);
    else e.vector.assign(v, v + set.d_model);
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace ts
