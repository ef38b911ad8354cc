// Layer-sharded execution (parallel.pipeline_stages = P): stage s holds decoder layers
// rt.layers(n_layer) (embeddings on the first stage, final norm and lm_head on the last; nothing else
// is read from the checkpoint) and passes the residual stream [B, T, D] on to stage s+1: over MPI for
// CPU tensors, over NCCL for CUDA tensors. Sends are non-blocking, so a stage computes micro-batch
// m+1 while m travels; with at least P micro-batches in flight every stage has work (GPipe order).
#pragma once
#include <ATen/core/Tensor.h>

#include <vector>

#include "dist/runtime.h"
#include "model/generate.h"
#include "model/transformer.h"

namespace ts {

class Pipeline {
 public:
  Pipeline(const Transformer& stage_model, Runtime& rt);
  ~Pipeline();  // completes the last pending send

  // COLLECTIVE over rt.pipeline, micro-batches in the same order on every stage. The first stage
  // embeds args.tokens; the others receive the previous stage's hidden state (shape from
  // args.tokens: every stage has the micro-batch's tokens). Returns the last stage's output (per
  // args.logits), an undefined tensor on the other stages.
  at::Tensor forward(ForwardArgs args);

  // COLLECTIVE over rt.pipeline: the last stage's `tokens` replace `tokens` on every stage
  // (every stage passes a vector of the same size).
  void share_from_last(std::vector<int64_t>& tokens);

  const Transformer& model() const { return model_; }
  bool first() const { return rt_.first_stage(); }
  bool last() const { return rt_.last_stage(); }

 private:
  void send_next(const at::Tensor& hidden);
  at::Tensor recv_prev(int64_t B, int64_t T);
  void wait_send();

  const Transformer& model_;
  Runtime& rt_;
  MPI_Request pending_ = MPI_REQUEST_NULL;
  at::Tensor pending_tensor_;  // kept alive until its send completes
};

// Generation over a pipeline: the batch is cut into `micro_batches` (>= 1) micro-batches with a
// Decoder (and KV cache) each on every stage; the last stage chooses tokens and shares them, so
// every stage returns the same results, equal to generate_batch on the whole model.
// COLLECTIVE over rt.pipeline (every stage passes the same requests).
std::vector<GenerateResult> generate_pipelined(Pipeline& pipeline, const std::vector<GenerateRequest>& requests,
                                               const GenerateOptions& options, int64_t micro_batches);

}  // namespace ts
