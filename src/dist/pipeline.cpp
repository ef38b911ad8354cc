#include "dist/pipeline.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <climits>
#include <exception>
#include <memory>

#ifdef THINKSTEER_HAVE_NCCL
#include "dist/nccl.h"
#endif

namespace ts {
namespace {

constexpr int TAG_HIDDEN = 17;
constexpr int64_t MPI_CHUNK = int64_t{1} << 30;  // MPI counts are int: move big tensors in 1 GiB pieces

}  // namespace

Pipeline::Pipeline(const Transformer& stage_model, Runtime& rt) : model_(stage_model), rt_(rt) {}

Pipeline::~Pipeline() {
  // While an exception unwinds, the job is about to abort: the receiver may never come.
  if (pending_ != MPI_REQUEST_NULL && mpi::active() && std::uncaught_exceptions() == 0) MPI_Wait(&pending_, MPI_STATUS_IGNORE);
}

void Pipeline::wait_send() {
  if (pending_ == MPI_REQUEST_NULL) return;
  mpi::check(MPI_Wait(&pending_, MPI_STATUS_IGNORE), "MPI_Wait(pipeline send)");
  pending_tensor_ = at::Tensor();
}

void Pipeline::send_next(const at::Tensor& hidden) {
  const int next = rt_.stage + 1;
#ifdef THINKSTEER_HAVE_NCCL
  if (hidden.is_cuda()) {
    rt_.pipeline_nccl->send(hidden, next);
    return;
  }
#endif
  wait_send();
  pending_tensor_ = hidden.contiguous();
  const int64_t bytes = static_cast<int64_t>(pending_tensor_.nbytes());
  auto* data = static_cast<char*>(pending_tensor_.data_ptr());
  if (bytes <= MPI_CHUNK) {
    mpi::check(MPI_Isend(data, static_cast<int>(bytes), MPI_BYTE, next, TAG_HIDDEN, rt_.pipeline.get(), &pending_), "MPI_Isend(hidden)");
    return;
  }
  for (int64_t at = 0; at < bytes; at += MPI_CHUNK)
    mpi::check(MPI_Send(data + at, static_cast<int>(std::min(MPI_CHUNK, bytes - at)), MPI_BYTE, next, TAG_HIDDEN, rt_.pipeline.get()),
               "MPI_Send(hidden)");
}

at::Tensor Pipeline::recv_prev(int64_t B, int64_t T) {
  const int prev = rt_.stage - 1;
  at::Tensor h = at::empty({B, T, model_.config().d_model}, model_.options());
#ifdef THINKSTEER_HAVE_NCCL
  if (h.is_cuda()) {
    rt_.pipeline_nccl->recv(h, prev);
    return h;
  }
#endif
  const int64_t bytes = static_cast<int64_t>(h.nbytes());
  auto* data = static_cast<char*>(h.data_ptr());
  for (int64_t at = 0; at < bytes; at += MPI_CHUNK)
    mpi::check(MPI_Recv(data + at, static_cast<int>(std::min(MPI_CHUNK, bytes - at)), MPI_BYTE, prev, TAG_HIDDEN, rt_.pipeline.get(),
                        MPI_STATUS_IGNORE),
               "MPI_Recv(hidden)");
  return h;
}

at::Tensor Pipeline::forward(ForwardArgs args) {
  if (!first()) args.hidden_in = recv_prev(args.tokens.size(0), args.tokens.size(1));
  if (!last()) args.logits = LogitsMode::NONE;
  at::Tensor out = model_.forward(args);
  if (last()) return out;
  send_next(out);
  return {};
}

void Pipeline::share_from_last(std::vector<int64_t>& tokens) {
  if (rt_.n_stages == 1) return;
  rt_.pipeline.bcast(std::span<int64_t>(tokens), rt_.n_stages - 1);
}

std::vector<GenerateResult> generate_pipelined(Pipeline& pipeline, const std::vector<GenerateRequest>& requests,
                                               const GenerateOptions& opt, int64_t micro_batches) {
  if (requests.empty()) return {};
  c10::InferenceMode inference;
  const Transformer& model = pipeline.model();
  const std::vector<Range> parts = even_ranges(static_cast<int64_t>(requests.size()), micro_batches);
  const size_t M = parts.size();
  std::vector<std::vector<GenerateRequest>> sub(M);
  std::vector<std::unique_ptr<Decoder>> dec(M);
  std::vector<std::vector<int64_t>> next(M);
  std::vector<bool> running(M, true);
  for (size_t m = 0; m < M; ++m) {
    sub[m].assign(requests.begin() + parts[m].begin, requests.begin() + parts[m].end);
    dec[m] = std::make_unique<Decoder>(sub[m], opt, model.config(), model.n_layer_held(), model.options(), nullptr);
  }
  // Prefill every micro-batch, then decode round-robin: micro-batch m's tokens come back from the last
  // stage while the stages work on m+1, ..., so each stage stays busy when M >= P.
  auto step = [&](size_t m) {
    at::Tensor logits = pipeline.forward(dec[m]->args());
    next[m].assign(static_cast<size_t>(dec[m]->rows()), 0);
    if (pipeline.last()) next[m] = dec[m]->choose(logits);
  };
  for (size_t m = 0; m < M; ++m) step(m);
  for (size_t left = M; left > 0;) {
    for (size_t m = 0; m < M; ++m) {
      if (!running[m]) continue;
      pipeline.share_from_last(next[m]);
      if (!dec[m]->advance(next[m])) {
        running[m] = false;
        --left;
        continue;
      }
      step(m);
    }
  }
  std::vector<GenerateResult> out;
  for (size_t m = 0; m < M; ++m)
    for (auto& r : dec[m]->take_results()) out.push_back(std::move(r));
  return out;
}

}  // namespace ts
