// The taxonomy kind of sweep (stages/sweep_kind.h; sweep.kind = taxonomy): its rows are clusterings of
// the sentence vectors of `sentences` (docs/algorithms.md §B.3) per (layer, K, method, seed); a task
// trains a TopK SAE (§B.4, data parallel over the ranks) or runs spherical k-means, and writes
// artifacts/taxonomy_task.h; `reduce` summarises each (layer, K, method) over seeds and chooses
// (layer, K) (artifacts/taxonomy_summary.h). Plan and summary: stages/taxonomy_sweep.cpp; one task:
// stages/taxonomy_task.cpp.
#pragma once
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "artifacts/sentences.h"
#include "artifacts/taxonomy_task.h"
#include "core/config.h"
#include "dist/runtime.h"
#include "taxonomy/sweep_point.h"

namespace ts::stages {

// The sentences file a taxonomy sweep reads (taxonomy.sentences or <run.dir>/sentences/sentences.h5),
// with what the tasks need of it.
struct SentenceSet {
  std::filesystem::path file;
  std::string hash;                 // the hash its .done marker certifies (the file's identity)
  std::vector<int64_t> layers;      // the layers it holds
  int64_t n = 0, d = 0;             // sentences, d_model
  std::vector<int64_t> reference;   // reference label id per sentence (-1: none); empty without labels
  std::vector<std::string> reference_labels;
};
SentenceSet open_sentence_set(const Config& cfg);

// One layer's vectors for a task: held in memory when n × d × 4 bytes fit taxonomy.memory_mb, else read
// from the file per request. Either way the rows are the same, so results do not depend on the budget.
class LayerRows {
 public:
  LayerRows(const SentenceSet& set, int64_t layer, int64_t budget_bytes);
  int64_t n() const { return n_; }
  int64_t d() const { return d_; }
  bool in_memory() const { return all_.defined(); }
  at::Tensor fetch(std::span<const int64_t> sorted_rows) const;  // [rows, d] float32
  at::Tensor block(int64_t begin, int64_t count) const;            // [count, d] float32

 private:
  artifacts::SentenceRowReader reader_;
  int64_t n_, d_;
  at::Tensor all_;
};

// The hash a task's done marker holds: the point, the options that decide its result (not the axes,
// not the memory budget), the sentences file's identity and the code version.
std::string taxonomy_task_hash(const Config& cfg, const taxonomy::TaxonomyPoint& p, const SentenceSet& set);

// COLLECTIVE: runs one point unless its task file is complete; false when it was.
bool run_taxonomy_task(const Config& cfg, Runtime& rt, const taxonomy::TaxonomyPoint& p, const SentenceSet& set);

}  // namespace ts::stages
