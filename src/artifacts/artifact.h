// What every run artifact shares (docs/run-layout.md): its identity (format name and schema version,
// root attributes of the HDF5 file), where it lives under run.dir, the provenance it carries, and the
// check a reader makes before it trusts a file. One module per artifact sits beside this header
// (generations, spans, activations, attribution, sweep_manifest, sweep_task, sweep_summary; steering
// vectors are io/vectors.h); stages read and write artifacts only through those modules.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/json.h"
#include "dist/runtime.h"
#include "io/h5store.h"

namespace ts::artifacts {

// An artifact's identity: the root attribute `format` and the root attribute `schema_version`. A
// reader accepts exactly its own schema version; any other is refused with a message that names the
// file's version and the stage that regenerates it.
struct Format {
  const char* name;          // e.g. "thinksteer.spans"
  int64_t schema_version;    // bumped when the layout changes incompatibly
  const char* stage;         // the subcommand that writes it, for messages ("annotate")
};

// Where an artifact lives: <run.dir>/<dir>/<file>.
struct Location {
  const char* dir;   // e.g. "annotate"
  const char* file;  // e.g. "spans.h5"
  std::filesystem::path in(const Config& cfg) const { return std::filesystem::path(cfg.run.dir) / dir / file; }
};

// An input a stage reads: the path the config gives, or, when that is empty, where the stage that
// makes it writes it.
std::filesystem::path input_path(const std::string& given, const Config& cfg, const Location& where);

// Checks a committed file against the .done marker that certifies it (core/done_marker.h) before a
// stage trusts it: content changed after the commit is an InputError naming the file (and `key`, the
// config key that points at it). A file no marker certifies (made by hand or by another tool) is used
// with a warning. Readers call it after their structural checks, so a damaged file is reported with
// the dataset at fault, and a well-formed but changed one as changed.
void verify_committed(const std::filesystem::path& file, const std::string& key);

// Opens an HDF5 artifact read-only and checks its identity. Errors (InputError) name the file and say
// which config key points at it (`key`, e.g. "vectors.spans") and how to make it.
std::unique_ptr<h5::SerialFile> open_checked(const std::filesystem::path& file, const Format& format, const std::string& key);
// The same check on an open file (for readers that open it themselves).
void check_format(const h5::SerialFile& f, const std::string& file, const Format& format);

// Root attributes of an HDF5 artifact: format, schema_version, stage, config, config_sha256,
// git_commit, thinksteer_version, created_utc, world_size, pipeline_stages, seed, model_path,
// model_config_sha256, and the whole provenance JSON as the attribute `provenance`.
void write_h5_identity(h5::SerialFile& file, const json& provenance, const Format& format);

// The config hash of a stage's output: the given config sections, the inputs' identity, the code
// version. [parallel] is never part of it: results do not depend on the rank layout.
std::string output_config_hash(const Config& cfg, const std::vector<std::string>& sections, const std::string& inputs);

// Provenance of an output (docs/decisions.md "Outputs and runs"): resolved config and hash, git
// commit, library versions (torch, MPI, HDF5, NCCL), seeds, rank layout, Slurm job, model path and
// checkpoint hashes (these only when `model_dir` is not empty).
json stage_provenance(const Config& cfg, const Runtime& rt, const std::string& stage, const std::string& config_hash,
                      const std::filesystem::path& model_dir);

// A reader's checks, throwing InputError(file, field or dataset, what): `require` when `ok` is false;
// `require_shape` when `path` is not in `f` (the message names the stage that writes `format`) or is a
// dataset of another shape than `shape` (both shapes named).
void require(bool ok, const std::string& file, const std::string& field, const std::string& what);
void require_shape(const h5::SerialFile& f, const std::string& file, const std::string& path, const std::vector<int64_t>& shape, const Format& format);

// CSV cells: a field quoted when it holds a comma, quote or newline; a number in 6 significant digits,
// empty for NaN.
std::string csv_field(const std::string& s);
std::string csv_number(double x);

// Row ranges covering sorted, distinct row indices (consecutive rows merged), for hyperslab writes.
std::vector<h5::RowRange> row_ranges(const std::vector<int64_t>& sorted_rows);

}  // namespace ts::artifacts
