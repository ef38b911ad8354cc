// Stage `directions cka`: centred kernel alignment between every pair of layers (docs/directions.md;
// docs/algorithms.md §E; directions/cka.h) — of one model (directions.a against itself) or of two models
// run on the same token stream (directions.a against directions.b: e.g. the toy thinker against its
// base, R1-Distill against QwQ).
//   in : directions.a (default <run.dir>/collect/activations.h5), directions.b (optional); the two must hold
//        the same sequences, tokens and rows. directions.cka_rows bounds the rows used (a seeded subsample
//        above it); directions.cka_kernel = linear | both (RBF with the median heuristic too)
//   out: <run.dir>/directions/cka.h5 ([A, B] matrices), cka.csv, and the .done marker
// Sample space: one n x n centred Gram matrix per hook (fp64, unit Frobenius norm), so a pair costs n^2
// whatever the width; memory is B such matrices (n = 2048: 32 MiB each). A's hooks are dealt over the ranks.
#include <ATen/ATen.h>
#include <fmt/format.h>

#include <filesystem>
#include <random>

#include "artifacts/directions.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "directions/cka.h"
#include "stages/directions_inputs.h"
#include "stages/stage.h"

namespace ts::stages::directions_cka {
namespace fs = std::filesystem;

namespace {

// The two files must index the same inputs: sequence ids, token ids and row ranges.
void check_same_stream(const ActivationInput& a, const ActivationInput& b) {
  const auto& sa = a.index.sequences;
  const auto& sb = b.index.sequences;
  const std::string where = b.file.string();
  if (sa.size() != sb.size())
    throw InputError(where, "/sequences/id", fmt::format("holds {} sequences, directions.a {}: CKA compares two models on the same token stream", sb.size(), sa.size()));
  for (size_t s = 0; s < sa.size(); ++s) {
    if (sa[s].id != sb[s].id) throw InputError(where, "/sequences/id", fmt::format("sequence {} is '{}', directions.a has '{}' there", s, sb[s].id, sa[s].id));
    if (sa[s].ids != sb[s].ids)
      throw InputError(where, "/tokens/id", "sequence '" + sa[s].id + "' has other tokens than in directions.a (another tokenizer or prompt format): "
                                            "CKA compares two models on the same token stream");
    bool same_rows = sa[s].rows.size() == sb[s].rows.size();
    for (size_t r = 0; same_rows && r < sa[s].rows.size(); ++r)
      same_rows = sa[s].rows[r].token_begin == sb[s].rows[r].token_begin && sa[s].rows[r].token_end == sb[s].rows[r].token_end;
    if (!same_rows) throw InputError(where, "/activations/token_begin", "sequence '" + sa[s].id + "' has other rows than in directions.a (collect.positions)");
  }
}

// All rows, or a seeded subsample of `n` of them (ascending).
std::vector<int64_t> pick_rows(int64_t total, int64_t n, uint64_t seed) {
  std::vector<int64_t> rows(static_cast<size_t>(total));
  std::iota(rows.begin(), rows.end(), int64_t{0});
  if (total <= n) return rows;
  std::mt19937_64 rng(seed);
  for (int64_t i = 0; i < n; ++i) {  // a partial Fisher-Yates: the first n places
    const int64_t j = i + static_cast<int64_t>(rng() % static_cast<uint64_t>(total - i));
    std::swap(rows[static_cast<size_t>(i)], rows[static_cast<size_t>(j)]);
  }
  rows.resize(static_cast<size_t>(n));
  std::sort(rows.begin(), rows.end());
  return rows;
}

std::vector<at::Tensor> grams(const ActivationInput& in, const at::Tensor& rows, bool rbf, double sigma) {
  std::vector<at::Tensor> out;
  for (const auto& h : in.hooks) out.push_back(directions::unit_centred_gram(hook_rows(in, h.name).index({rows}), rbf, sigma));
  return out;
}

// [A, B] CKA of one kernel; rows of A dealt over the ranks. With one file (`same`) A's matrices are B's.
std::vector<double> cka_matrix(Runtime& rt, const ActivationInput& a, const std::vector<at::Tensor>& gb, bool same, const at::Tensor& rows, bool rbf,
                               double sigma) {
  const size_t A = a.hooks.size(), B = gb.size();
  std::vector<double> m(A * B, 0.0);
  for (size_t i = 0; i < A; ++i) {
    if (!my_hook(rt, i)) continue;
    const at::Tensor g = same ? gb[i] : directions::unit_centred_gram(hook_rows(a, a.hooks[i].name).index({rows}), rbf, sigma);
    for (size_t j = 0; j < B; ++j) m[i * B + j] = (g * gb[j]).sum().item<double>();
  }
  rt.world_comm.allreduce_sum(std::span<double>(m));
  return m;
}

}  // namespace

void run(const Config& cfg, Runtime& rt) {
  const Config::Directions& d = cfg.directions;
  const ActivationInput a = read_activation_input(cfg, directions_a(cfg), "directions.a");
  const ActivationInput b = d.b.empty() ? a : read_activation_input(cfg, d.b, "directions.b");
  if (!d.b.empty()) check_same_stream(a, b);
  if (a.n_rows() < 3) throw InputError(a.file.string(), "/activations", "holds fewer than 3 rows: CKA needs at least 3 inputs");
  const std::string hash = artifacts::output_config_hash(cfg, {"directions"}, fmt::format("cka\n{}\n{}", a.sha256, d.b.empty() ? "" : b.sha256));
  StageOutput out(cfg, rt, "directions cka", artifacts::CKA_H5.in(cfg), hash);
  if (out.complete()) return;
  out.begin();
  const std::vector<int64_t> picked = pick_rows(a.n_rows(), d.cka_rows, d.seed);
  const at::Tensor rows = at::tensor(picked, at::kLong);
  spdlog::info("directions cka: {} x {} hooks on {} of {} rows", a.hooks.size(), b.hooks.size(), picked.size(), a.n_rows());
  artifacts::CkaResults r;
  const bool same = d.b.empty();
  r.linear = cka_matrix(rt, a, grams(b, rows, false, 1.0), same, rows, false, 1.0);
  if (d.cka_kernel == CkaKernel::both) r.rbf = cka_matrix(rt, a, grams(b, rows, true, d.rbf_sigma), same, rows, true, d.rbf_sigma);
  if (rt.rank == 0) {
    for (const auto& h : a.hooks) r.hooks_a.push_back(h.name), r.layers_a.push_back(h.layer);
    for (const auto& h : b.hooks) r.hooks_b.push_back(h.name), r.layers_b.push_back(h.layer);
    r.n_rows = static_cast<int64_t>(picked.size());
    r.n_rows_total = a.n_rows();
    r.seed = static_cast<int64_t>(d.seed);
    r.model_a = a.model;
    r.model_b = b.model;
    r.input_a = fs::absolute(a.file).string();
    r.input_b = fs::absolute(b.file).string();
    const json prov = out.provenance();
    artifacts::write_cka(out.partial(), r, prov);
    const fs::path csv = artifacts::CKA_CSV.in(cfg);
    write_file_atomic(csv, artifacts::cka_csv(r));
    out.commit_h5(prov, artifacts::CKA, artifacts::cka_datasets(r), {.certified = {csv}});
  }
  rt.world_comm.barrier();
}

}  // namespace ts::stages::directions_cka
