// Artifact `basevec task` (docs/run-layout.md): one trained vector set of a base-vector sweep,
// <run.dir>/basevec/tasks/<key>.h5 (format thinksteer.basevec_task) and its `.done` marker, with the
// same vectors as a steering-vector file beside it, <key>.vectors.h5 (io/vectors.h: names idx0..,
// and "bias" for linear sets; one layer), which the marker certifies too.
//   /vectors [C, d] f32          one vector per category (idx<c>), added at `hook` (zero where counts = 0)
//   /counts [C] i64              training positions (correction) or sentences (linear) per category;
//                                0: no data, the vector is zero and listed in metrics.skipped
//   /norms [C] f32               ‖vectors[c]‖
//   /bias [d] f32                linear sets: the bias vector, added with every category's
//   /mlp/{w1 [H, d], b1 [H], w2 [C, H], b2 [C]} f32   the coefficient MLP (correction with basevec.mlp):
//                                α(h, c) = softplus(w2[c] · gelu(w1 h + b1) + b2[c]), h = the base model's
//                                residual at `hook` before the shift
//   /curves/{step i64, epoch f64, phase i64, train f64, holdout f64} [E]   per evaluation (correction:
//                                train = mean loss since the last one, holdout = the holdout KL) or per
//                                epoch of each phase (linear: phase -1 bias, c category; holdout NaN)
//   root attributes: task, key, point (JSON), method, seed, hook, layer, categories (JSON list), mlp_input,
//   metrics (JSON), records_file, records_hash, base_model, and the artifact identity.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "artifacts/artifact.h"
#include "artifacts/sweep_manifest.h"
#include "core/json.h"

namespace ts::artifacts {

inline constexpr Format BASEVEC_TASK{"thinksteer.basevec_task", 1, "sweep run"};
inline constexpr SweepLayout BASEVEC_SWEEP{"basevec"};

struct BasevecTask {
  std::string key, point, method, hook, config_sha256, records_file, records_hash, base_model;
  int64_t task = 0, seed = 0, layer = 0, c = 0, d = 0, hidden = 0;
  std::vector<float> vectors, norms, bias;  // bias empty unless linear
  std::vector<int64_t> counts;
  std::vector<float> w1, b1, w2, b2;        // empty without the MLP
  std::vector<int64_t> curve_step, curve_phase;
  std::vector<double> curve_epoch, curve_train, curve_holdout;
  json metrics = json::object();
};

std::filesystem::path basevec_vectors_file(const std::filesystem::path& task_file);  // <key>.vectors.h5
std::vector<h5::DatasetSpec> basevec_task_datasets(const BasevecTask& t);
// The task file and the steering-vector file beside it (io/vectors.h), both before commit.
void write_basevec_task(const std::filesystem::path& file, const std::filesystem::path& vectors_file, const BasevecTask& t, const json& provenance);
// Checked for identity, shapes and finite values. Throws InputError naming the file and the dataset.
BasevecTask read_basevec_task(const std::filesystem::path& file);

}  // namespace ts::artifacts
