// Taxonomy benchmark, thinksteer side: the §B.4 TopK SAE and spherical k-means on the vectors of a
// safetensors file (tensor "x", [N, d] float32, unit rows), as bench/bench_sae.py writes them.
//
//   bench_sae VECTORS.safetensors --k K --epochs E --batch B --threads T [--kmeans-k K2]
//
// Trains one SAE for exactly E epochs (no early stop: the same number of steps as the reference loop)
// and runs spherical k-means (n_init 1), then prints ONE JSON line: seconds and steps/s of the SAE,
// its last epoch loss, seconds and iterations of k-means, and the peak resident memory (ru_maxrss).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/json.h"
#include "model/safetensors.h"
#include "model/weights.h"
#include "taxonomy/spherical_kmeans.h"
#include "taxonomy/topk_sae.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s VECTORS.safetensors --k K --epochs E --batch B --threads T [--kmeans-k K2]\n", argv[0]);
    return 2;
  }
  int64_t k = 20, epochs = 5, batch = 512, threads = 2, kmeans_k = -1;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const int64_t v = std::atoll(argv[i + 1]);
    if (a == "--k") k = v;
    else if (a == "--epochs") epochs = v;
    else if (a == "--batch") batch = v;
    else if (a == "--threads") threads = v;
    else if (a == "--kmeans-k") kmeans_k = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (kmeans_k < 0) kmeans_k = k;
  at::set_num_threads(static_cast<int>(threads));
  const ts::SafetensorsFile file(argv[1]);
  const ts::TensorInfo* info = file.find("x");
  if (info == nullptr) {
    std::fprintf(stderr, "%s: no tensor 'x'\n", argv[1]);
    return 2;
  }
  const at::Tensor x = ts::tensor_from_safetensors(*info, file.bytes(*info)).to(at::kFloat).contiguous();
  using Clock = std::chrono::steady_clock;
  ts::taxonomy::SaeTrainOptions opt;
  opt.batch_size = batch;
  opt.max_epochs = epochs;
  opt.patience = epochs + 1;
  ts::taxonomy::SaeTrainer trainer(ts::taxonomy::topk_sae_init(x.size(1), k, 3, 0), x.size(0), opt, [&x](std::span<const int64_t> rows) {
    return x.index_select(0, at::from_blob(const_cast<int64_t*>(rows.data()), {static_cast<int64_t>(rows.size())}, at::kLong));
  });
  const auto t0 = Clock::now();
  double loss = 0;
  while (!trainer.done()) loss = trainer.run_epoch().loss;
  const double sae_s = std::chrono::duration<double>(Clock::now() - t0).count();
  const auto t1 = Clock::now();
  const auto km = ts::taxonomy::spherical_kmeans(x, kmeans_k, 0, 1);
  const double km_s = std::chrono::duration<double>(Clock::now() - t1).count();
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const ts::json out = {{"sae_s", sae_s}, {"sae_steps", trainer.steps()}, {"sae_steps_per_s", static_cast<double>(trainer.steps()) / sae_s},
                        {"sae_last_loss", loss}, {"kmeans_s", km_s}, {"kmeans_iterations", km.iterations},
                        {"kmeans_objective", km.objective}, {"peak_rss_mb", static_cast<double>(ru.ru_maxrss) / 1024.0}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
