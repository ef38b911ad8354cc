#include "artifacts/sweep_manifest.h"

#include "core/atomic_file.h"
#include "core/json.h"
#include "core/sha256.h"

namespace ts::artifacts {
namespace fs = std::filesystem;

bool write_sweep_manifest(const Config& cfg, const std::vector<SweepPoint>& points, const std::string& vectors_file) {
  const fs::path manifest = SWEEP_MANIFEST.in(cfg);
  fs::create_directories(manifest.parent_path());
  const std::string text = manifest_text(points);
  if (fs::exists(manifest) && read_file(manifest) == text) return false;
  write_file_atomic(manifest, text);
  const json plan = {{"n_tasks", points.size()}, {"manifest_sha256", sha256_hex(text)}, {"vectors_file", vectors_file},
                     {"config", config_to_ini(cfg, {"model", "run", "data", "generate", "annotate", "steer", "sweep"})}};
  write_file_atomic(SWEEP_PLAN.in(cfg), plan.dump(2) + "\n");
  return true;
}

std::vector<SweepPoint> read_sweep_manifest(const Config& cfg) { return manifest_read(SWEEP_MANIFEST.in(cfg).string()); }

}  // namespace ts::artifacts
