#include "artifacts/sweep_manifest.h"

#include <fstream>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json.h"
#include "core/sha256.h"

namespace ts::artifacts {
namespace fs = std::filesystem;

bool write_sweep_manifest(const Config& cfg, const SweepLayout& layout, const std::vector<json>& rows, json plan) {
  const fs::path manifest = layout.manifest(cfg);
  fs::create_directories(manifest.parent_path());
  std::string text;
  for (const json& r : rows) text += r.dump() + "\n";
  if (fs::exists(manifest) && read_file(manifest) == text) return false;
  write_file_atomic(manifest, text);
  plan["n_tasks"] = rows.size();
  plan["manifest_sha256"] = sha256_hex(text);
  write_file_atomic(layout.plan(cfg), plan.dump(2) + "\n");
  return true;
}

std::vector<json> read_sweep_manifest_rows(const Config& cfg, const SweepLayout& layout) {
  const std::string path = layout.manifest(cfg).string();
  std::ifstream in(path);
  if (!in) throw InputError(path, "manifest", "cannot open the sweep manifest (run `thinksteer sweep plan` first)");
  std::vector<json> out;
  std::set<std::string> keys;
  jsonl_for_each(in, path, [&](const json& row, const std::string& where, int64_t) {
    if (!row.is_object()) throw InputError(where, "row", "must be a JSON object");
    if (json_int(row, "task", where) != static_cast<int64_t>(out.size())) throw InputError(where, "task", "tasks must be numbered 0, 1, ... in order");
    const std::string key = json_string(row, "key", where);
    if (key.size() != 16 || key.find_first_not_of("0123456789abcdef") != std::string::npos)
      throw InputError(where, "key", "'" + key + "' is not 16 hex digits");
    if (!keys.insert(key).second) throw InputError(where, "key", "'" + key + "' names an earlier task too");
    out.push_back(row);
    return true;
  });
  if (out.empty()) throw InputError(path, "manifest", "no tasks");
  return out;
}

}  // namespace ts::artifacts
