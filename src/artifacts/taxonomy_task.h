// Artifact `taxonomy task` (docs/run-layout.md): one finished clustering of a taxonomy sweep,
// <run.dir>/taxonomy/tasks/<key>.h5 (format thinksteer.taxonomy_task) and its `.done` marker. Named by
// the point's key (taxonomy/sweep_point.h), so a re-plan that adds axis values still finds it.
//   /assign [N] i64        the cluster of each sentence (rows of the sentences file): the argmax of the
//                          SAE's encoder output, or the k-means centre of largest cosine
//   /sizes [K] i64         sentences per cluster (0: a dead latent)
//   /centres [K, d] f32    unit cluster directions: the SAE's decoder rows, or the k-means centres
//   /loss [E] f64          the SAE's epoch-average training FVU per epoch; k-means: [1], its objective / N
//   /sae/{w_enc [K, d], b_enc [K], w_dec [K, d], b_dec [d]} f32   the SAE's best state (method sae only)
//   root attributes: task, key, point (JSON), metrics (JSON: fvu, orthogonality, dead, epochs, best_epoch,
//   steps, objective, reseeded, and nmi, ari, majority, matched when the sentences carry reference
//   labels), sentences_file, sentences_hash, and the artifact identity.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "artifacts/artifact.h"
#include "artifacts/sweep_manifest.h"
#include "taxonomy/sweep_point.h"

namespace ts::artifacts {

inline constexpr Format TAXONOMY_TASK{"thinksteer.taxonomy_task", 1, "sweep run"};
inline constexpr SweepLayout TAXONOMY_SWEEP{"taxonomy"};

struct TaxonomyTask {
  std::string key, point, config_sha256;  // root attributes
  int64_t n = 0, k = 0, d = 0;
  std::vector<int64_t> assign, sizes;
  std::vector<float> centres;             // [K, d]
  std::vector<double> loss;
  std::vector<float> w_enc, b_enc, w_dec, b_dec;  // empty for k-means
  json metrics = json::object();
  std::string sentences_file, sentences_hash;
};

std::vector<h5::DatasetSpec> taxonomy_task_datasets(int64_t n, int64_t k, int64_t d, int64_t epochs, bool sae);
void write_taxonomy_task(const std::filesystem::path& file, const TaxonomyTask& t, const taxonomy::TaxonomyPoint& p, const json& provenance);
// A finished task file, checked for identity, shapes and values (assignments in [0, K), sizes that add
// up to N and match the assignments). Throws InputError naming the file and the dataset.
TaxonomyTask read_taxonomy_task(const std::filesystem::path& file);
// The file is the one of point `p` with task hash `hash` (not a copy of another task's file).
void check_taxonomy_task(const std::filesystem::path& file, const TaxonomyTask& t, const taxonomy::TaxonomyPoint& p, const std::string& hash);

}  // namespace ts::artifacts
