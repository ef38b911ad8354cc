#include "stages/stage.h"

#include "core/atomic_file.h"
#include "core/done_marker.h"
#include "core/error.h"
#include "core/log.h"

namespace ts::stages {
namespace fs = std::filesystem;

StageOutput::StageOutput(const Config& cfg, Runtime& rt, std::string stage, fs::path output, std::string config_hash)
    : cfg_(cfg), rt_(rt), stage_(std::move(stage)), output_(std::move(output)), hash_(std::move(config_hash)) {}

bool StageOutput::complete(const std::vector<fs::path>& also) const {
  bool done = false;
  if (rt_.rank == 0) {
    done = done_marker_matches(output_, hash_);
    for (const fs::path& p : also) done = done && fs::exists(p);
  }
  if (!rt_.world_comm.allreduce_max(done ? 1 : 0)) return false;
  spdlog::info("{}: {} is complete for this config ({}), skipping", stage_, output_.string(), hash_.substr(0, 12));
  return true;
}

void StageOutput::begin() {
  std::string refusal_file, refusal_field, refusal, job;
  if (rt_.rank == 0) {
    try {
      lock_ = OutputLock::acquire(output_);
      fs::remove(done_marker_path(output_));
      const json self = lock_holder_self();
      job = self.value("slurm_job", "").empty() ? self.value("host", "host") + "-" + std::to_string(self.value("pid", int64_t{0}))
                                                 : "slurm" + self.value("slurm_job", "");
    } catch (const InputError& e) {
      refusal_file = e.file();
      refusal_field = e.field();
      refusal = std::string(e.what()).substr(e.file().size() + e.field().size() + 4);  // what() is "file: field: detail"
    }
  }
  rt_.world_comm.bcast(refusal, 0);
  if (!refusal.empty()) {  // every rank fails alike (exit 2), none waits for a peer
    rt_.world_comm.bcast(refusal_file, 0);
    rt_.world_comm.bcast(refusal_field, 0);
    throw InputError(refusal_file, refusal_field, refusal);
  }
  rt_.world_comm.bcast(job, 0);
  partial_ = fs::path(output_.string() + ".partial." + job);
}

void StageOutput::finish() {
  // This job holds the lock: any other partial file of this output is a dead job's leftover.
  const std::string prefix = output_.filename().string() + ".partial";
  std::error_code ec;
  for (fs::directory_iterator it(dir(), ec), end; !ec && it != end; it.increment(ec))
    if (it->path().filename().string().rfind(prefix, 0) == 0) fs::remove(it->path(), ec);
  lock_.release();
}

json StageOutput::provenance(const fs::path& model_dir) const {
  return artifacts::stage_provenance(cfg_, rt_, stage_, hash_, model_dir);
}

void StageOutput::write_sidecars(const json& prov, Sidecars sidecars) const {
  if (sidecars.resolved_config) write_file_atomic(fs::path(cfg_.run.dir) / "config.resolved.ini", config_to_ini(cfg_));
  if (sidecars.provenance_json) write_file_atomic(dir() / "provenance.json", prov.dump(2));
}

void StageOutput::commit_h5(const json& prov, const artifacts::Format& format, const std::vector<h5::DatasetSpec>& expected, Sidecars sidecars) {
  write_sidecars(prov, sidecars);
  h5::commit_h5(partial(), output_, format.name, expected, hash_, sidecars.certified);
  finish();
}

void StageOutput::commit_file(const json& prov, Sidecars sidecars) {
  write_sidecars(prov, sidecars);
  done_marker_write(output_, hash_, sidecars.certified);
  finish();
}

}  // namespace ts::stages
