// The base-vector kind of sweep (stages/sweep_kind.h; sweep.kind = basevec) and its tasks: a row is
// (method, seed); a task trains one vector set on the frozen base model from `basevec collect`'s
// records (docs/algorithms.md §B.10 correction vectors with the coefficient MLP, §B.8 linear vectors),
// data parallel over the ranks (each rank a slice of every batch, gradients allreduced), resumable at
// every evaluation (correction) or epoch (linear); `reduce` keeps the best seed per method on the
// selection rollouts. Plan and summary: stages/basevec_sweep.cpp; training: stages/basevec_task.cpp
// (correction, shared pieces) and stages/basevec_linear.cpp.
#pragma once
#include <ATen/ATen.h>

#include <filesystem>
#include <string>
#include <vector>

#include "artifacts/basevec_records.h"
#include "artifacts/basevec_task.h"
#include "basevec/trainer.h"
#include "core/config.h"
#include "core/json.h"
#include "dist/rank_model.h"
#include "dist/runtime.h"
#include "model/adamw.h"

namespace ts::stages {

struct BasevecPoint {
  int64_t task = 0, seed = 0;
  std::string key, method;
  json to_json() const;
  static BasevecPoint from_json(const json& row, const std::string& where);
};
std::vector<BasevecPoint> basevec_points(const Config& cfg);

// What every task of a process uses: the records and the base model.
struct BasevecData {
  std::filesystem::path records_file;
  std::string records_hash;
  artifacts::BasevecRecords records;
  StageModel base;
};
std::filesystem::path basevec_records_path(const Config& cfg);
std::string basevec_task_hash(const Config& cfg, const BasevecPoint& p, const std::string& records_hash);
// COLLECTIVE: runs one point unless its task file is complete; false when it was.
bool run_basevec_task(const Config& cfg, Runtime& rt, const BasevecPoint& p, BasevecData& data);

// --- shared by the trainers ---------------------------------------------------------------------

// One sequence of a batch: the example's base tokens [0, len), the rows shifted (position, category;
// category -1: the vector itself) and the rows whose logits are wanted.
struct TrainItem {
  int64_t example = 0, len = 0;
  std::vector<int64_t> shift_pos, shift_cat, loss_pos;
};
// Logits [N, V] at every item's loss rows (items in order, rows in order), with the shift
// (vectors [C, d], bias [d] or undefined, mlp optional) at blocks.{layer}.hook_resid_post; no shift
// when vectors is undefined.
at::Tensor batch_logits(const StageModel& m, const Runtime& rt, const artifacts::BasevecRecords& r, const std::vector<TrainItem>& items, int64_t layer,
                        const at::Tensor& vectors, const at::Tensor& bias, const basevec::CoefMlp& mlp);
// This rank's slice [begin, end) of n items (even split, the same for any n).
std::pair<size_t, size_t> rank_slice(size_t n, const Runtime& rt);
// COLLECTIVE: the optimizers' gradients and `extras` summed over ranks; every gradient divided by
// `divisor_index`'s extra (the global count); returns the extras' sums.
std::vector<double> allreduce_grads(Runtime& rt, std::vector<AdamW*> opts, std::vector<double> extras, size_t divisor_index);
// A seeded stream for (seed, what, a, b): reproducible sampling and shuffles.
uint64_t stream_seed(int64_t seed, const char* what, int64_t a = 0, int64_t b = 0);

// The resumable state: named tensors and a progress JSON, saved by rank 0 for the task hash.
struct TrainState {
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  json progress;
};
void save_train_state(const std::filesystem::path& file, const TrainState& s, const std::string& hash);
// The saved state for this hash, or nullopt (and a warning) when there is none usable; every rank reads it
// and the ranks agree.
std::optional<TrainState> load_train_state(const std::filesystem::path& file, const std::string& hash, Runtime& rt);

std::vector<float> tensor_values(const at::Tensor& t);

// The trainers: fill t's vectors, counts, bias / MLP, curves and metrics.
void train_correction(const Config& cfg, Runtime& rt, const BasevecPoint& p, const BasevecData& data, const std::filesystem::path& state,
                      const std::string& hash, artifacts::BasevecTask& t);
void train_linear(const Config& cfg, Runtime& rt, const BasevecPoint& p, const BasevecData& data, const std::filesystem::path& state,
                  const std::string& hash, artifacts::BasevecTask& t);

}  // namespace ts::stages
