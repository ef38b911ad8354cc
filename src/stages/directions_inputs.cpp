#include "stages/directions_inputs.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "core/error.h"
#include "core/sha256.h"
#include "io/h5store.h"
#include "io/vectors.h"

namespace ts::stages {
namespace fs = std::filesystem;

fs::path directions_a(const Config& cfg) { return artifacts::input_path(cfg.directions.a, cfg, artifacts::ACTIVATIONS_H5); }

ActivationInput read_activation_input(const Config& cfg, const fs::path& file, const std::string& key) {
  if (!fs::is_regular_file(file)) throw InputError(file.string(), key, "no activations file (run `thinksteer collect` first)");
  ActivationInput in;
  in.file = file;
  in.key = key;
  std::vector<artifacts::ActivationHook> all = artifacts::activation_hooks(file, key);
  in.index = artifacts::read_activation_index(file);
  {
    const h5::SerialFile f(file, h5::SerialFile::Mode::READ_ONLY);
    in.model = f.attr_string("/", "model_path");
  }
  for (size_t s = 0; s < in.index.sequences.size(); ++s)
    for (const auto& row : in.index.sequences[s].rows) {
      in.row_sequence.push_back(static_cast<int64_t>(s));
      in.row_label.push_back(row.label);
      in.row_token.push_back(row.token_end - 1);
    }
  if (cfg.directions.hooks.empty()) {
    in.hooks = std::move(all);
  } else {
    for (const std::string& name : cfg.directions.hooks) {
      const auto it = std::find_if(all.begin(), all.end(), [&](const artifacts::ActivationHook& h) { return h.name == name; });
      if (it == all.end()) throw InputError(file.string(), "directions.hooks", "no hook '" + name + "' in the file (collect.hooks)");
      in.hooks.push_back(*it);
    }
  }
  in.sha256 = sha256_file(file);
  return in;
}

void require_hook(const ActivationInput& b, const artifacts::ActivationHook& h) {
  const auto it = std::find_if(b.hooks.begin(), b.hooks.end(), [&](const artifacts::ActivationHook& x) { return x.name == h.name; });
  if (it == b.hooks.end()) throw InputError(b.file.string(), b.key, "has no hook " + h.name + " (directions.a has it)");
  if (it->width != h.width) throw InputError(b.file.string(), h.name, "has width " + std::to_string(it->width) + ", directions.a " + std::to_string(h.width));
}

at::Tensor hook_rows(const ActivationInput& in, const std::string& hook) {
  std::vector<int64_t> shape;
  std::vector<float> values = artifacts::read_activation_rows(in.file, hook, shape);
  const int64_t rows = shape[0];
  return at::from_blob(values.data(), {rows, rows == 0 ? 0 : static_cast<int64_t>(values.size()) / rows}, at::kFloat).clone();
}

ChosenDirection read_direction(const Config& cfg, int64_t d_model) {
  const Config::Directions& d = cfg.directions;
  if (d.direction.empty()) throw InputError("<config>", "directions.direction", "no direction file given (e.g. <run.dir>/directions/contrast.h5)");
  ChosenDirection c;
  c.file = d.direction;
  if (!fs::is_regular_file(c.file)) throw InputError(d.direction, "directions.direction", "no such file");
  const VectorSet set = vectors_read_h5(c.file);
  c.sha256 = sha256_file(c.file);
  c.hook_measured = set.hook_measured;
  c.name = !d.vector.empty() ? d.vector : set.n_names() == 1 ? set.names[0] : d.name;
  const auto ni = set.name_index(c.name);
  if (!ni) throw InputError(d.direction, "directions.vector", "the file has no vector named '" + c.name + "'");
  if (d.layer < 0 && set.n_layers() != 1)
    throw InputError(d.direction, "directions.layer", "the file holds " + std::to_string(set.n_layers()) + " layers: choose one with directions.layer");
  c.layer = d.layer < 0 ? set.layers[0] : d.layer;
  const auto li = set.layer_index(c.layer);
  if (!li) throw InputError(d.direction, "directions.layer", "the file holds no vector at layer " + std::to_string(c.layer));
  if (set.d_model != d_model)
    throw InputError(d.direction, "d_model", "the direction has d_model " + std::to_string(set.d_model) + ", the model " + std::to_string(d_model));
  c.vector = at::from_blob(const_cast<float*>(set.vector(*ni, *li)), {set.d_model}, at::kFloat).clone();
  if (c.vector.norm().item<double>() == 0) throw InputError(d.direction, "values[" + c.name + "]", "is zero at layer " + std::to_string(c.layer) + ": no direction");
  return c;
}

}  // namespace ts::stages
