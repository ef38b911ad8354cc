#include "taxonomy/sweep_point.h"

#include "core/error.h"
#include "core/sha256.h"

namespace ts::taxonomy {
namespace {

json parameters(const TaxonomyPoint& p) {
  return json{{"sweep", "taxonomy"}, {"layer", p.layer}, {"k", p.k}, {"method", p.method}, {"seed", p.seed}};
}

std::string key_of(const TaxonomyPoint& p) { return sha256_hex(parameters(p).dump()).substr(0, 16); }

}  // namespace

std::string TaxonomyPoint::label() const {
  return method + " L" + std::to_string(layer) + " K" + std::to_string(k) + " seed " + std::to_string(seed);
}

json TaxonomyPoint::to_json() const {
  json j = {{"task", task}, {"key", key}};
  j.update(parameters(*this));
  return j;
}

TaxonomyPoint TaxonomyPoint::from_json(const json& row, const std::string& where) {
  TaxonomyPoint p;
  p.task = json_int(row, "task", where);
  p.key = json_string(row, "key", where);
  if (json_string(row, "sweep", where) != "taxonomy")
    throw InputError(where, "sweep", "is not a taxonomy row (a manifest of another kind of sweep? check sweep.kind)");
  p.layer = json_int(row, "layer", where);
  p.k = json_int(row, "k", where);
  p.method = json_string(row, "method", where);
  p.seed = json_int(row, "seed", where);
  if (p.layer < 0) throw InputError(where, "layer", "must be >= 0");
  if (p.k < 2) throw InputError(where, "k", "must be >= 2");
  if (p.method != "sae" && p.method != "kmeans") throw InputError(where, "method", "must be sae or kmeans, got '" + p.method + "'");
  if (key_of(p) != p.key) throw InputError(where, "key", "does not match the row's parameters (was the manifest edited?); run `thinksteer sweep plan` again");
  return p;
}

std::vector<TaxonomyPoint> taxonomy_expand(const std::vector<int64_t>& layers, const std::vector<int64_t>& ks, const std::vector<std::string>& methods,
                                           const std::vector<int64_t>& seeds) {
  std::vector<TaxonomyPoint> out;
  for (int64_t layer : layers)
    for (int64_t k : ks)
      for (const std::string& method : methods)
        for (int64_t seed : seeds) {
          TaxonomyPoint p;
          p.task = static_cast<int64_t>(out.size());
          p.layer = layer, p.k = k, p.method = method, p.seed = seed;
          p.key = key_of(p);
          out.push_back(p);
        }
  return out;
}

}  // namespace ts::taxonomy
