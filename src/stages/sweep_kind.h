// The one sweep machinery (docs/decisions.md "Sweeps are Slurm array tasks") and what differs by kind
// of sweep (basevec: stages/basevec_train.h). `sweep plan` writes the manifest, `sweep run` runs one row of it (a Slurm array task),
// `reduce` gathers the finished rows into the kind's summary and lists the missing ones;
// slurm/submit.sh drives the three, and the whole-sweep stages (`steer`, `taxonomy`) run them in
// one job. sweep.kind picks the kind: `steer` (steering points, stages/steer_sweep.h) or `taxonomy`
// (SAEs and baselines over layers × K × method × seed, stages/taxonomy_sweep.cpp), `basevec`, `hybrid`
// (stages/hybrid.h). A kind supplies the
// rows, the running of one row, and the summary; the manifest, task status, missing list, done
// markers and stop handling are the machinery's, the same for every kind.
#pragma once
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "artifacts/sweep_manifest.h"
#include "core/config.h"
#include "core/json.h"
#include "dist/runtime.h"
#include "stages/stage.h"

namespace ts::stages {

// A task's certified output: its file and the hash its done marker must hold.
struct SweepTaskId {
  std::filesystem::path file;
  std::string hash;
};

// Which rows are finished for this config (their marker holds the task's hash), and which are not.
struct SweepStatus {
  std::vector<size_t> done;               // rows finished, ascending
  std::vector<int64_t> missing;           // rows not finished, ascending
  std::vector<std::string> hash;          // per row, the hash its marker must hold
  std::string hashes;                     // the finished rows' hashes, one per line: what a summary is of
};

class SweepKind {
 public:
  virtual ~SweepKind() = default;
  virtual const char* name() const = 0;
  virtual const artifacts::SweepLayout& layout() const = 0;
  // COLLECTIVE: the manifest rows in task order (JSON objects with "task" and "key"), and what plan.json
  // records beside them (inputs, the config sections that decide the plan).
  virtual std::vector<json> plan(const Config& cfg, Runtime& rt) = 0;
  virtual json plan_record(const Config& cfg) const = 0;
  // COLLECTIVE: what every task of this process needs (model, vectors, data), loaded once.
  virtual void prepare(const Config& cfg, Runtime& rt) = 0;
  // COLLECTIVE, after prepare(): runs manifest row `row` (row number `index`, from 0, for messages)
  // unless its output is complete; false when it was.
  virtual bool run(const Config& cfg, Runtime& rt, const json& row, size_t index) = 0;
  // Rank 0, without prepare(): each row's task file and hash (rows are the manifest's, checked by the kind).
  virtual std::vector<SweepTaskId> task_ids(const Config& cfg, Runtime& rt, const std::vector<json>& rows) = 0;
  // The summary `reduce` certifies, and files written beside it (removed with it when tasks are missing).
  virtual std::filesystem::path summary(const Config& cfg) const = 0;
  virtual std::vector<std::filesystem::path> summary_extras(const Config& cfg) const = 0;
  // Rank 0: writes the summary of the finished rows to out.partial() and commits it (with the extras).
  virtual void write_summary(const Config& cfg, Runtime& rt, StageOutput& out, const std::vector<json>& rows, const SweepStatus& st) = 0;
};

// The kind sweep.kind names.
std::unique_ptr<SweepKind> make_sweep_kind(const Config& cfg);
std::unique_ptr<SweepKind> make_steer_sweep();
std::unique_ptr<SweepKind> make_taxonomy_sweep();
std::unique_ptr<SweepKind> make_basevec_sweep();
std::unique_ptr<SweepKind> make_hybrid_sweep();
std::unique_ptr<SweepKind> make_intervene_sweep();

// COLLECTIVE: the kind's rows, written to its manifest by rank 0 when they changed. Returns the rows.
std::vector<json> plan_and_write(SweepKind& kind, const Config& cfg, Runtime& rt);
// Rank 0: the status of every row from the done markers.
SweepStatus sweep_status(SweepKind& kind, const Config& cfg, Runtime& rt, const std::vector<json>& rows);
// COLLECTIVE: the `reduce` of a kind (missing.txt; exit 3 through IncompleteError when rows are missing
// unless reduce.allow_partial; else the summary).
void reduce_sweep(SweepKind& kind, const Config& cfg, Runtime& rt);
// COLLECTIVE: a whole sweep on these ranks: plan, every row not yet finished, reduce.
void run_whole_sweep(SweepKind& kind, const Config& cfg, Runtime& rt);

}  // namespace ts::stages
