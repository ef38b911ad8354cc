// Stage `directions contrast`: a contrastive direction per layer (docs/directions.md; docs/algorithms.md
// §E: mean(reasoning) - mean(control), unit-normalised), from two activation files of the same model
// and hook site.
//   in : directions.a (default <run.dir>/collect/activations.h5; set A) and directions.b (set B), the
//        same hooks in both; directions.pool (rows | sequences), directions.normalize, directions.compare
//        (optional: a vectors file whose vectors get per-layer cosines)
//   out: <run.dir>/directions/contrast.h5 (+ .safetensors; io/vectors.h, name directions.name, measured and
//        applied at the hook site, counts = set A's rows or sequences), contrast.csv, and the .done marker
// Positions are collect's choice (collect.positions: last, spans, generated...); the mean is fp64
// (vectors/contrast.h). Hooks are dealt over the ranks; the directions are added up into one buffer.
#include <ATen/ATen.h>
#include <fmt/format.h>

#include <filesystem>
#include <regex>

#include "artifacts/directions.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "core/sha256.h"
#include "io/vectors.h"
#include "stages/directions_inputs.h"
#include "stages/stage.h"
#include "vectors/contrast.h"

namespace ts::stages::directions_contrast {
namespace fs = std::filesystem;

namespace {

struct Setup {
  ActivationInput a, b;
  std::string pattern;            // the hook site with {l}
  std::vector<int64_t> layers;    // per chosen hook
  std::optional<VectorSet> compare;
};

// One site at several layers; B holds every hook of A with the same width.
void check_inputs(Setup& in) {
  const std::regex layer_re("^blocks\\.(\\d+)\\.");
  for (const artifacts::ActivationHook& h : in.a.hooks) {
    if (h.layer < 0) continue;  // ln_final has no layer to steer at
    const std::string pattern = std::regex_replace(h.name, layer_re, "blocks.{l}.", std::regex_constants::format_first_only);
    if (!in.pattern.empty() && pattern != in.pattern)
      throw InputError(in.a.file.string(), "directions.hooks", "holds hooks of two sites (" + in.pattern + ", " + pattern +
                                                                   "): a contrast is one site; choose its layers with directions.hooks");
    in.pattern = pattern;
    in.layers.push_back(h.layer);
    require_hook(in.b, h);
  }
  if (in.layers.empty()) throw InputError(in.a.file.string(), "directions.hooks", "no block hook to take a contrast at");
  if (in.a.n_rows() == 0 || in.b.n_rows() == 0) throw InputError((in.a.n_rows() == 0 ? in.a : in.b).file.string(), "/activations", "holds no rows");
}

// The fp64 sum and count of a set's rows, or of its sequences' means (pool = sequences).
std::pair<at::Tensor, int64_t> set_sum(const ActivationInput& in, const at::Tensor& rows, DirectionPool pool) {
  const at::Tensor x = rows.to(at::kDouble);
  if (pool == DirectionPool::rows) return {x.sum(0), x.size(0)};
  const int64_t S = static_cast<int64_t>(in.index.sequences.size());
  const at::Tensor seq = at::tensor(in.row_sequence, at::kLong);
  const at::Tensor sums = at::zeros({S, x.size(1)}, at::kDouble).index_add_(0, seq, x);
  const at::Tensor counts = at::zeros({S}, at::kDouble).index_add_(0, seq, at::ones({x.size(0)}, at::kDouble));
  const at::Tensor has = counts > 0;
  return {(sums.index({has}) / counts.index({has}).unsqueeze(1)).sum(0), has.sum().item<int64_t>()};
}

struct Result {
  at::Tensor direction;  // [n_layers, D] fp64
  at::Tensor norm;       // [n_layers] the raw difference's norm
  int64_t n_a = 0, n_b = 0;
};

Result compute(const Config& cfg, Runtime& rt, const Setup& in) {
  const int64_t n = static_cast<int64_t>(in.layers.size()), D = in.a.hooks.front().width;
  Result r{at::zeros({n, D}, at::kDouble), at::zeros({n}, at::kDouble)};
  std::vector<int64_t> counts(2, 0);
  size_t i = 0;
  for (const artifacts::ActivationHook& h : in.a.hooks) {
    if (h.layer < 0) continue;
    const int64_t row = static_cast<int64_t>(i);
    if (my_hook(rt, i++)) {
      const auto [sa, na] = set_sum(in.a, hook_rows(in.a, h.name), cfg.directions.pool);
      const auto [sb, nb] = set_sum(in.b, hook_rows(in.b, h.name), cfg.directions.pool);
      const std::vector<double> va(sa.data_ptr<double>(), sa.data_ptr<double>() + D), vb(sb.data_ptr<double>(), sb.data_ptr<double>() + D);
      const std::vector<double> raw = contrast_direction({va, na}, {vb, nb}, false);
      r.norm[row] = l2_norm(raw);
      const std::vector<double> d = cfg.directions.normalize ? contrast_direction({va, na}, {vb, nb}, true) : raw;
      r.direction[row].copy_(at::tensor(d, at::kDouble));
      counts = {na, nb};
    }
  }
  rt.world_comm.allreduce_sum(std::span<double>(r.direction.data_ptr<double>(), static_cast<size_t>(r.direction.numel())));
  rt.world_comm.allreduce_sum(std::span<double>(r.norm.data_ptr<double>(), static_cast<size_t>(n)));
  r.n_a = rt.world_comm.allreduce_max(counts[0]);
  r.n_b = rt.world_comm.allreduce_max(counts[1]);
  return r;
}

VectorSet direction_set(const Config& cfg, const Setup& in, const Result& r, const json& prov) {
  VectorSet s;
  s.hook_measured = s.hook_applied = in.pattern;
  s.layers = in.layers;
  s.d_model = r.direction.size(1);
  s.names = {cfg.directions.name};
  const at::Tensor f = r.direction.to(at::kFloat).contiguous();
  s.values.assign(f.data_ptr<float>(), f.data_ptr<float>() + f.numel());
  s.counts.assign(in.layers.size(), r.n_a);
  s.model = in.a.model;
  s.provenance_json = prov.dump();
  return s;
}

std::string contrast_csv(const Setup& in, const Result& r) {
  std::string csv = "layer,hook,n_a,n_b,norm";
  if (in.compare)
    for (const std::string& name : in.compare->names) csv += ",cos_" + name;
  csv += "\n";
  for (size_t i = 0; i < in.layers.size(); ++i) {
    csv += fmt::format("{},{},{},{},{}", in.layers[i], hook_at(in.pattern, in.layers[i]), r.n_a, r.n_b, artifacts::csv_number(r.norm[static_cast<int64_t>(i)].item<double>()));
    if (in.compare) {
      const VectorSet& c = *in.compare;
      const at::Tensor d = r.direction[static_cast<int64_t>(i)];
      for (size_t k = 0; k < c.n_names(); ++k) {
        const auto li = c.layer_index(in.layers[i]);
        double cos = NAN;
        if (li && c.count(k, *li) != 0) {
          const at::Tensor v = at::from_blob(const_cast<float*>(c.vector(k, *li)), {c.d_model}, at::kFloat).to(at::kDouble);
          cos = (d.dot(v) / (d.norm() * v.norm())).item<double>();
        }
        csv.append(",").append(artifacts::csv_number(cos));
      }
    }
    csv += "\n";
  }
  return csv;
}

}  // namespace

void run(const Config& cfg, Runtime& rt) {
  const Config::Directions& d = cfg.directions;
  if (d.b.empty()) throw InputError("<config>", "directions.b", "the contrast needs set B's activations (directions.b)");
  Setup in;
  in.a = read_activation_input(cfg, directions_a(cfg), "directions.a");
  in.b = read_activation_input(cfg, d.b, "directions.b");
  check_inputs(in);
  if (!d.compare.empty()) {
    in.compare = vectors_read_h5(d.compare);
    if (in.compare->d_model != in.a.hooks.front().width)
      throw InputError(d.compare, "d_model", "the compared vectors have d_model " + std::to_string(in.compare->d_model) + ", the activations " +
                                                 std::to_string(in.a.hooks.front().width));
  }
  const std::string hash = artifacts::output_config_hash(  // [directions]: the keys; the files by content
      cfg, {"directions"}, fmt::format("contrast\n{}\n{}\n{}", in.a.sha256, in.b.sha256, d.compare.empty() ? "" : sha256_file(d.compare)));
  StageOutput out(cfg, rt, "directions contrast", artifacts::CONTRAST_H5.in(cfg), hash);
  if (out.complete()) return;
  out.begin();
  const Result r = compute(cfg, rt, in);
  if (rt.rank == 0) {
    json prov = out.provenance();
    prov.update({{"set_a", fs::absolute(in.a.file).string()}, {"set_a_sha256", in.a.sha256}, {"set_b", fs::absolute(in.b.file).string()},
                 {"set_b_sha256", in.b.sha256}, {"n_a", r.n_a}, {"n_b", r.n_b}, {"pool", option_text(d.pool)}, {"normalized", d.normalize}});
    const VectorSet set = direction_set(cfg, in, r, prov);
    const fs::path csv = artifacts::CONTRAST_CSV.in(cfg), st = artifacts::CONTRAST_SAFETENSORS.in(cfg);
    write_file_atomic(csv, contrast_csv(in, r));
    vectors_write_safetensors(st, set);
    vectors_write_h5(out.path(), set);
    out.commit_file(prov, {.certified = {csv, st}});
    spdlog::info("directions contrast: {} layers of {} ({} against {} {}), wrote {}", in.layers.size(), in.pattern, r.n_a, r.n_b,
                 option_text(d.pool), out.path().string());
  }
  rt.world_comm.barrier();
}

}  // namespace ts::stages::directions_contrast
