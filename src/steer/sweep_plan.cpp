#include "steer/sweep_plan.h"

#include <fstream>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/sha256.h"

namespace ts {
namespace {

// sample_seed is written only when generation samples, so greedy points keep the keys they had before it.
json parameters(const SweepPoint& p) {
  json j{{"dataset", p.dataset}, {"kind", p.kind},   {"vector", p.vector},       {"layers", p.layers},
         {"hook", p.hook},       {"coef", p.coef},   {"op", p.op},               {"positions", p.positions},
         {"seed", p.seed},       {"layer_scale", p.layer_scale}};
  if (p.sample_seed != 0) j["sample_seed"] = p.sample_seed;
  return j;
}

std::string key_of(const SweepPoint& p) { return sha256_hex(parameters(p).dump()).substr(0, 16); }

}  // namespace

std::string SweepPoint::layers_text() const {
  std::string out;
  for (size_t i = 0; i < layers.size(); ++i) out += (i ? "+" : "") + std::to_string(layers[i]);
  return out;
}

json SweepPoint::to_json() const {
  json j = {{"task", task}, {"key", key}};
  j.update(parameters(*this));
  return j;
}

SweepPoint SweepPoint::from_json(const json& row, const std::string& where) {
  SweepPoint p;
  p.task = json_int(row, "task", where);
  p.key = json_string(row, "key", where);
  p.dataset = json_string(row, "dataset", where);
  p.kind = json_string(row, "kind", where);
  if (p.kind != "baseline" && p.kind != "vector" && p.kind != "random") throw InputError(where, "kind", "must be baseline, vector or random, got '" + p.kind + "'");
  p.vector = json_string(row, "vector", where);
  const json& layers = json_require(row, "layers", where);
  if (!layers.is_array()) throw InputError(where, "layers", "must be an array of layer indices");
  for (const json& l : layers) {
    if (!l.is_number_integer() || l.get<int64_t>() < 0) throw InputError(where, "layers", "must hold non-negative integers");
    p.layers.push_back(l.get<int64_t>());
  }
  p.hook = json_string(row, "hook", where);
  p.coef = json_number(row, "coef", where);
  p.op = json_string(row, "op", where);
  p.positions = json_string(row, "positions", where);
  p.seed = json_int(row, "seed", where);
  p.sample_seed = row.contains("sample_seed") ? json_int(row, "sample_seed", where) : 0;
  p.layer_scale = json_number(row, "layer_scale", where);
  if (key_of(p) != p.key) throw InputError(where, "key", "does not match the row's parameters (was the manifest edited?); run `thinksteer sweep plan` again");
  return p;
}

std::vector<int64_t> parse_layer_group(const std::string& spec, const std::string& source, const std::string& field) {
  if (spec.empty() || spec.back() == '+') throw InputError(source, field, "'" + spec + "' is not a layer, a group like 1+2, or auto");
  std::vector<int64_t> out;
  std::stringstream in(spec);
  std::string part;
  while (std::getline(in, part, '+')) {
    if (part.empty() || part.size() > 6 || part.find_first_not_of("0123456789") != std::string::npos)
      throw InputError(source, field, "'" + spec + "' is not a layer, a group like 1+2, or auto");
    out.push_back(std::stoll(part));
  }
  if (out.empty()) throw InputError(source, field, "empty layer group");
  if (std::set<int64_t>(out.begin(), out.end()).size() != out.size()) throw InputError(source, field, "'" + spec + "' repeats a layer");
  return out;
}

std::vector<SweepPoint> sweep_expand(const SweepAxes& a, const LayerResolver& resolve, bool divide_by_layers) {
  std::vector<SweepPoint> out;
  std::set<std::string> keys;
  auto push = [&](SweepPoint p) {
    p.task = static_cast<int64_t>(out.size());
    p.key = key_of(p);
    if (keys.insert(p.key).second) out.push_back(std::move(p));
  };
  // Greedy baselines and vector points do not depend on a seed: seed 0, so that a run with other control
  // seeds reuses their task files (tasks are named by key).
  const std::vector<int64_t> point_seeds = a.sampled ? a.seeds : std::vector<int64_t>{0};
  std::vector<std::pair<int64_t, int64_t>> random_seeds;  // (direction seed, control seed)
  for (int64_t seed : a.seeds)
    for (int64_t j = 0; j < a.random_directions; ++j) random_seeds.emplace_back(a.random_directions == 1 ? seed : 100 * seed + j, seed);
  std::vector<std::pair<int64_t, int64_t>> vector_seeds;
  for (int64_t seed : point_seeds) vector_seeds.emplace_back(seed, seed);
  for (const std::string& dataset : a.datasets) {
    for (int64_t seed : point_seeds) {
      SweepPoint b;
      b.dataset = dataset;
      b.kind = "baseline";
      b.seed = seed;
      b.sample_seed = a.sampled ? seed : 0;
      push(b);
    }
    for (const std::string& vector : a.vectors)
      for (const std::string& layer_spec : a.layers)
        for (const std::vector<int64_t>& layers : resolve(vector, layer_spec))
        for (const std::string& hook : a.hooks)
          for (const std::string& op : a.ops)
            for (const std::string& positions : a.positions) {
              const std::vector<double> coefs = op == "project-out" ? std::vector<double>{0.0} : a.coefficients;
              for (double coef : coefs)
                for (const std::string& control : a.controls) {
                  SweepPoint p;
                  p.dataset = dataset;
                  p.vector = vector;
                  p.layers = layers;
                  p.hook = hook;
                  p.coef = coef;
                  p.op = op;
                  p.positions = positions;
                  p.layer_scale = divide_by_layers ? 1.0 / static_cast<double>(layers.size()) : 1.0;
                  p.kind = control == "random" ? "random" : "vector";
                  for (const auto& [seed, control_seed] : control == "random" ? random_seeds : vector_seeds) {
                    p.seed = seed;
                    p.sample_seed = a.sampled ? control_seed : 0;
                    push(p);
                  }
                }
            }
  }
  return out;
}

std::string array_spec(const std::vector<int64_t>& ids) {
  std::string out;
  for (size_t i = 0; i < ids.size();) {
    size_t j = i;
    while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1) ++j;
    out += (out.empty() ? "" : ",") + std::to_string(ids[i]);
    if (j > i) out += "-" + std::to_string(ids[j]);
    i = j + 1;
  }
  return out;
}

std::string manifest_text(const std::vector<SweepPoint>& points) {
  std::string out;
  for (const SweepPoint& p : points) out += p.to_json().dump() + "\n";
  return out;
}

std::vector<SweepPoint> manifest_read(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError(path, "manifest", "cannot open the sweep manifest (run `thinksteer sweep plan` first)");
  std::vector<SweepPoint> out;
  jsonl_for_each(in, path, [&](const json& row, const std::string& where, int64_t) {
    SweepPoint p = SweepPoint::from_json(row, where);
    if (p.task != static_cast<int64_t>(out.size())) throw InputError(where, "task", "tasks must be numbered 0, 1, ... in order");
    out.push_back(std::move(p));
    return true;
  });
  if (out.empty()) throw InputError(path, "manifest", "no tasks");
  return out;
}

}  // namespace ts
