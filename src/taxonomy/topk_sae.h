// The TopK sparse autoencoder whose latents are the clusters of a reasoning taxonomy
// (docs/algorithms.md §B.4), trained data parallel: every rank takes an even slice of each
// minibatch, and one allreduce per step adds up the gradients, the batch statistics and the loss.
//
//   encode   a = W_enc (x − b_dec) + b_enc            (no ReLU)            [N, K]
//   decode   x̂ = Σ_{j ∈ top_k(a)} a_j W_dec[j] + b_dec                    [N, d]
//   loss     FVU = Σ ‖x̂ − x‖² / Σ ‖x − mean_batch(x)‖²   over the minibatch
//   cluster  argmax_j a_j (the full encoder output, before top-k)
//
// Adam (β 0.9/0.999, ε 1e-8) with lr = 2e-4 / sqrt(K / 2^14); decoder rows renormalised to unit norm
// (‖row‖ + 1e-5) at init and after every step; one seeded permutation of the rows per epoch, minibatches
// of batch_size consecutive rows of it (the last one smaller); early stopping when the epoch-average loss
// has not improved for `patience` epochs, and the best epoch's state is the result. The inputs are the
// centred, unit-normalised sentence vectors (§B.3). Everything is a pure function of (data, options,
// seed): 1 and N ranks agree up to the order of floating-point sums. The backward pass is written out
// (SaeTrainer::step), checked against PyTorch autograd in tests/taxonomy.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "model/adamw.h"

namespace ts::taxonomy {

struct TopkSae {
  at::Tensor w_enc, b_enc, w_dec, b_dec;  // [K, d], [K], [K, d], [d]; float32
  int64_t top_k = 3;

  int64_t n_latents() const { return w_enc.size(0); }
  int64_t d_in() const { return w_enc.size(1); }
  at::Tensor encode(const at::Tensor& x) const;         // [N, K], before top-k
  at::Tensor assign(const at::Tensor& x) const;         // [N] int64: the cluster of each row
  // Rows per cluster; a zero is a dead latent (no row's argmax), which a caller reports.
  std::vector<int64_t> cluster_sizes(const at::Tensor& x) const;
  TopkSae clone() const;
};

// nn.Linear(d, K)'s default init for W_enc (uniform in ±1/sqrt(d), from splitmix64(seed)), W_dec a copy
// with unit rows, zero biases.
TopkSae topk_sae_init(int64_t d_in, int64_t n_latents, int64_t top_k, uint64_t seed);
double topk_sae_default_lr(int64_t n_latents);

// The rows of epoch `epoch`'s permutation of [0, n), a pure function of (n, seed, epoch).
std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch);

struct SaeTrainOptions {
  int64_t batch_size = 512;
  int64_t max_epochs = 300;
  int64_t patience = 10;
  double lr = 0;              // 0: topk_sae_default_lr(K)
  uint64_t seed = 0;          // the permutations (the init has its own seed, in topk_sae_init)
};

// Rows by global index (sorted ascending): [rows.size(), d] float32. A caller streams them from disk.
using RowFetcher = std::function<at::Tensor(std::span<const int64_t> rows)>;
// Sums a buffer over the data-parallel replicas in place (nothing to do on one process).
using AllreduceSum = std::function<void(std::span<float>)>;

struct SaeEpoch {
  int64_t epoch = 0;          // 0-based, the one just finished
  double loss = 0;            // its average minibatch FVU
  double best_loss = 0;
  int64_t bad_epochs = 0;     // epochs since the best one
};

// One SAE's training, an epoch at a time, so that a caller can log progress and save a resumable
// state between epochs (state_tensors / load_state_tensors).
// Throws std::invalid_argument for fewer rows than latents, std::runtime_error naming the step when a
// loss is not finite (NaN or Inf in the vectors).
class SaeTrainer {
 public:
  SaeTrainer(TopkSae init, int64_t n_rows, SaeTrainOptions opt, RowFetcher rows, int rank = 0, int world = 1,
             AllreduceSum sum = {});
  bool done() const { return epoch_ >= opt_.max_epochs || bad_epochs_ >= opt_.patience; }
  SaeEpoch run_epoch();
  // One optimizer step on the given minibatch rows (this rank's share is cut here); its FVU.
  double step(std::span<const int64_t> batch);
  const TopkSae& current() const { return sae_; }
  const TopkSae& best() const { return best_; }
  int64_t epoch() const { return epoch_; }
  int64_t steps() const { return step_; }
  int64_t best_epoch() const { return best_epoch_; }
  const std::vector<double>& epoch_losses() const { return losses_; }
  // Everything a resumed run needs, as named tensors (parameters, Adam moments, best state, counters).
  std::vector<std::pair<std::string, at::Tensor>> state_tensors() const;
  void load_state_tensors(const std::function<at::Tensor(const std::string&)>& get);

 private:
  TopkSae sae_, best_;
  AdamW adam_;
  int64_t n_;
  SaeTrainOptions opt_;
  RowFetcher rows_;
  int rank_, world_;
  AllreduceSum sum_;
  double lr_;
  int64_t epoch_ = 0, step_ = 0, bad_epochs_ = 0, best_epoch_ = -1;
  double best_loss_ = 0;
  std::vector<double> losses_;
};

}  // namespace ts::taxonomy
