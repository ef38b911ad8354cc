// Artifact `taxonomy judge record` (docs/run-layout.md): the LLM judge's verdicts on one taxonomy task
// (stages/taxonomy_judge.h; docs/algorithms.md "The LLM judge"), <run.dir>/taxonomy/judge/<key>.json,
// written atomically by reduce and reused while it matches.
//   format "thinksteer.taxonomy_judge", version 1, key, task_hash, backend (the judge's identity), options
//   (repetitions, autograder, completeness, traces, title_examples), repetitions [{titles [{title,
//   description} | null per cluster], f1 [per cluster | null], avg_f1, avg_confidence, final, failed}],
//   avg_f1, avg_confidence, final (means over repetitions; null where nothing parsed), failed
#pragma once
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/json.h"

namespace ts::artifacts {

inline constexpr const char* TAXONOMY_JUDGE_FORMAT = "thinksteer.taxonomy_judge";

std::filesystem::path judge_record_path(const Config& cfg, const std::string& key);
void write_judge_record(const std::filesystem::path& file, const json& record);
// The record when the file holds one for this task hash (and, when given, this backend and these
// options); nullopt when absent, stale or malformed (a malformed file is logged, then judged again).
std::optional<json> read_judge_record(const std::filesystem::path& file, const std::string& task_hash, const std::string* backend = nullptr,
                                      const json* options = nullptr);

struct JudgeTitle {
  std::string title, description;
};
// Repetition 0's titles per cluster (nullopt where the judge gave none), checked for shape.
std::vector<std::optional<JudgeTitle>> judge_record_titles(const json& record, const std::string& file);

}  // namespace ts::artifacts
