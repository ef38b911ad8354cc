// Forward passes over whole traces, for the stages that average token windows of them (`vectors`,
// docs/algorithms.md §A.4; `sentences`, §B.3): the block hook and layers the stage
// measures, the batches of traces (longest first, the same whatever the rank layout), this replica's
// share of them, and one forward pass per micro-batch (right padded; several micro-batches on a
// pipeline) with the stage's hooks attached. Not a stage: a helper of stages/.
#pragma once
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "artifacts/generations.h"
#include "core/config.h"
#include "dist/partition.h"
#include "dist/pipeline.h"
#include "dist/rank_model.h"
#include "dist/runtime.h"
#include "model/hooks.h"

namespace ts::stages {

// A d_model-sized block hook at some layers: "blocks.*.hook_X" over `layers` (empty: every layer), or
// one "blocks.N.hook_X" (then `layers` must be empty). `pattern` is "blocks.{l}.hook_X".
struct BlockHook {
  HookSite site = HookSite::RESID_POST;
  std::string pattern;
  std::vector<int64_t> layers;  // ascending, distinct
};
// `section` names the config keys in messages ("vectors" -> vectors.hook, vectors.layers). Throws InputError.
BlockHook resolve_block_hook(const std::string& name, const std::vector<std::string>& layers, int64_t n_layer, const std::string& section);

// The traces (indices into gens) cut into batches of batch_size, longest first (less padding).
std::vector<std::vector<int64_t>> trace_batches(const std::vector<artifacts::Generation>& gens, std::vector<int64_t> traces, int64_t batch_size);
// This replica's contiguous share of the batches, balanced by padded tokens.
Range trace_batch_share(const std::vector<std::vector<int64_t>>& batches, const std::vector<artifacts::Generation>& gens, const Runtime& rt);

struct TraceModel {
  StageModel m;
  std::unique_ptr<Pipeline> pipeline;
  int64_t micro = 1;  // micro-batches per batch (pipeline stages > 1: parallel.micro_batches or the stage count)
};
TraceModel load_trace_model(const Config& cfg, Runtime& rt);

// Per micro-batch: its traces and padded length T; the callback builds what its hooks need, attaches
// them to `hooks` and calls `run()` (the forward pass) while that state is alive.
using WithHooks = std::function<void(HookSet& hooks, std::span<const int64_t> traces, int64_t T, const std::function<void()>& run)>;
// COLLECTIVE over the pipeline stages: the forward passes of one batch (logits not computed).
void forward_traces(TraceModel& model, Runtime& rt, const std::vector<artifacts::Generation>& gens, const std::vector<int64_t>& batch,
                    const WithHooks& with_hooks);

}  // namespace ts::stages
