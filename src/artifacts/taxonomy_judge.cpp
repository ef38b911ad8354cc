#include "artifacts/taxonomy_judge.h"

#include <spdlog/spdlog.h>

#include "artifacts/taxonomy_task.h"
#include "core/atomic_file.h"
#include "core/error.h"

namespace ts::artifacts {
namespace fs = std::filesystem;

fs::path judge_record_path(const Config& cfg, const std::string& key) { return TAXONOMY_SWEEP.root(cfg) / "judge" / (key + ".json"); }

void write_judge_record(const fs::path& file, const json& record) { write_file_atomic(file, record.dump(1) + "\n"); }

std::optional<json> read_judge_record(const fs::path& file, const std::string& task_hash, const std::string* backend, const json* options) {
  if (!fs::exists(file)) return std::nullopt;
  try {
    const json j = json_read_file(file);
    const std::string name = file.string();
    if (json_string(j, "format", name) != TAXONOMY_JUDGE_FORMAT) throw InputError(name, "format", "is not a judge record");
    if (json_int(j, "version", name) != 1) throw InputError(name, "version", "unsupported version (this build reads 1)");
    if (!json_require(j, "repetitions", name).is_array()) throw InputError(name, "repetitions", "must be an array");
    if (json_string(j, "task_hash", name) != task_hash) return std::nullopt;
    if (backend && json_string(j, "backend", name) != *backend) return std::nullopt;
    if (options && json_require(j, "options", name) != *options) return std::nullopt;
    return j;
  } catch (const std::exception& e) {
    spdlog::warn("taxonomy: {} is not a usable judge record ({}); the task is judged again", file.string(), e.what());
    return std::nullopt;
  }
}

std::vector<std::optional<JudgeTitle>> judge_record_titles(const json& record, const std::string& file) {
  std::vector<std::optional<JudgeTitle>> out;
  if (record["repetitions"].empty()) return out;
  const json& titles = json_require(record["repetitions"][0], "titles", file, "repetitions[0]");
  if (!titles.is_array()) throw InputError(file, "repetitions[0].titles", "must be an array");
  for (size_t c = 0; c < titles.size(); ++c) {
    const std::string at = "repetitions[0].titles[" + std::to_string(c) + "]";
    if (titles[c].is_null()) {
      out.emplace_back(std::nullopt);
      continue;
    }
    out.push_back(JudgeTitle{json_string(titles[c], "title", file, at), json_string(titles[c], "description", file, at)});
  }
  return out;
}

}  // namespace ts::artifacts
