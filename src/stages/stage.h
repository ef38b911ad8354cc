// The skeleton every stage is written on (docs/decisions.md "Outputs and runs").
//
// A stage is a function `void run(const Config&, Runtime&)` in namespace ts::stages::<id>, listed once
// in stages/stage_list.inc, which feeds main's dispatch, `--help` and the config sections. Every run()
// is COLLECTIVE over rt.world_comm: all ranks call it with the same Config.
//
// A stage's certified output goes through one StageOutput:
//   StageOutput out(cfg, rt, "collect", path, hash);   hash = artifacts::output_config_hash(...)
//   if (out.complete()) return;                          the marker holds this hash: nothing to do
//   ... read and validate every input (bad input fails before anything is written) ...
//   out.begin();                                         the output's lock taken (one writer per
//                                                        output), stale marker gone, directory made
//   ... write out.partial() ...
//   out.commit_h5(prov, FORMAT, specs);                  rank 0: provenance.json, config.resolved.ini,
//                                                        verify, rename, .done marker, lock released
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "artifacts/artifact.h"
#include "core/config.h"
#include "core/json.h"
#include "dist/runtime.h"
#include "io/h5store.h"
#include "io/output_lock.h"

namespace ts::stages {

// The run function of a subcommand of stages/stage_list.inc; nullptr for an unknown name.
using StageFn = void (*)(const Config&, Runtime&);
StageFn stage_function(const std::string& name);

// What a commit writes beside the output.
struct Sidecars {
  bool provenance_json = true;   // <dir>/provenance.json
  bool resolved_config = true;   // <run.dir>/config.resolved.ini
  std::vector<std::filesystem::path> certified;  // files beside the output that its marker certifies too
};

class StageOutput {
 public:
  // `output` is the file whose `.done` marker certifies the stage's work; `config_hash` says for which
  // config and inputs (artifacts::output_config_hash).
  StageOutput(const Config& cfg, Runtime& rt, std::string stage, std::filesystem::path output, std::string config_hash);

  // COLLECTIVE: true when the output's marker holds this config hash and every path in `also`
  // exists (logged: the stage then returns without work).
  bool complete(const std::vector<std::filesystem::path>& also = {}) const;
  // COLLECTIVE: rank 0 takes the output's lock (io/output_lock.h; when another job holds it, every
  // rank throws the same InputError naming the holder), makes the output directory and removes a
  // stale marker, so from here on the run directory claims nothing for this output until commit.
  // Every rank learns partial().
  void begin();

  const std::filesystem::path& path() const { return output_; }
  std::filesystem::path dir() const { return output_.parent_path(); }
  // Where this job writes the output before commit: "<output>.partial.<job>", unique per job (the
  // Slurm job id, so a requeued job finds its own file; else rank 0's host and pid). After begin().
  const std::filesystem::path& partial() const { return partial_; }
  const std::string& config_hash() const { return hash_; }
  // Provenance of this output (artifacts::stage_provenance); `model_dir` empty: no checkpoint.
  json provenance(const std::filesystem::path& model_dir = {}) const;

  // Rank 0: the sidecars, then partial() verified (format and every expected dataset), renamed to
  // path() and certified by its marker; other jobs' leftover partial files of this output removed;
  // the lock released. Throws naming the file and dataset on a failed check.
  void commit_h5(const json& prov, const artifacts::Format& format, const std::vector<h5::DatasetSpec>& expected, Sidecars sidecars = {});
  // Rank 0: the sidecars and the marker, for an output already written atomically at path().
  void commit_file(const json& prov, Sidecars sidecars = {});

 private:
  void write_sidecars(const json& prov, Sidecars sidecars) const;
  void finish();

  const Config& cfg_;
  Runtime& rt_;
  std::string stage_;
  std::filesystem::path output_;
  std::string hash_;
  std::filesystem::path partial_;
  OutputLock lock_;  // rank 0, between begin() and commit
};

}  // namespace ts::stages
