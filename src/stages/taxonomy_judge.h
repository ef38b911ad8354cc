// The taxonomy's language-model judge (taxonomy.judge = llm; docs/algorithms.md §B.5, §B.6 and
// "The LLM judge"): per finished task and repetition, a title and description per cluster from its
// representative sentences, the accuracy autograder's F1 per cluster and the completeness ratings, and
// the final score = mean(avg_f1, avg_confidence). The prompts go to the llm annotator's backends (an
// OpenAI-compatible endpoint, or a local checkpoint). Results are cached per task in
// <run.dir>/taxonomy/judge/<key>.json (artifacts/taxonomy_judge.h), so a rerun of `reduce` asks nothing
// again unless the task, the backend or the judge options changed.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "annotate/llm.h"
#include "artifacts/taxonomy_task.h"
#include "core/config.h"
#include "core/json.h"
#include "stages/taxonomy_sweep.h"

namespace ts::stages {

// What every task's judge reads besides the task: sentence texts and whole traces (the sentences of a
// trace joined, the nearest the sentences file comes to the trace).
struct JudgeData {
  std::vector<std::string> texts;      // per sentence
  std::vector<int64_t> trace;          // per sentence: its trace's index in `traces`
  std::vector<std::string> traces;
};
JudgeData load_judge_data(const SentenceSet& set);

// Each row's squared distance to the unit direction of its own cluster (blocks of rows from the file).
std::vector<double> cluster_distances(const SentenceSet& set, int64_t layer, const artifacts::TaxonomyTask& t, int64_t budget_bytes);

// The task's judge record: the cached one when it matches (key, task hash, backend identity, options),
// else computed through `backend` and cached. Rank 0.
json judge_task(const Config& cfg, const LlmBackend& backend, const SentenceSet& set, const JudgeData& data, const taxonomy::TaxonomyPoint& p,
                const artifacts::TaxonomyTask& t, const std::string& task_hash);

}  // namespace ts::stages
