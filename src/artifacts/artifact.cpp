#include "artifacts/artifact.h"

#include <H5public.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "core/done_marker.h"
#include "core/error.h"
#include "core/log.h"
#include "core/provenance.h"
#include "core/sha256.h"
#ifdef THINKSTEER_HAVE_NCCL
#include "dist/nccl.h"
#endif

namespace ts::artifacts {
namespace fs = std::filesystem;

namespace {

// SHA-256 of a safetensors file's 8-byte length and JSON header (cheap; names, dtypes, shapes, offsets).
std::string safetensors_header_sha256(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  uint64_t n = 0;
  in.read(reinterpret_cast<char*>(&n), 8);
  if (!in || n > 100'000'000) return "unreadable";
  std::string head(8 + n, '\0');
  in.seekg(0);
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  return in ? sha256_hex(head) : "unreadable";
}

std::string mpi_library_version() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(text, &len);
  std::string mpi(text, static_cast<size_t>(len));
  if (auto nl = mpi.find_first_of(",\n"); nl != std::string::npos) mpi.resize(nl);
  return mpi;
}

std::string hdf5_library_version() {
  unsigned maj = 0, min = 0, rel = 0;
  H5get_libversion(&maj, &min, &rel);
  return std::to_string(maj) + "." + std::to_string(min) + "." + std::to_string(rel);
}

json checkpoint_provenance(const fs::path& model_dir) {
  json prov;
  prov["model_path"] = fs::absolute(model_dir).string();
  prov["model_config_sha256"] = fs::exists(model_dir / "config.json") ? sha256_file(model_dir / "config.json") : "absent";
  prov["tokenizer_sha256"] = sha256_file(model_dir / "tokenizer.json");
  json shards = json::object();
  for (const auto& entry : fs::directory_iterator(model_dir))
    if (entry.path().extension() == ".safetensors")
      shards[entry.path().filename().string()] = {{"bytes", static_cast<int64_t>(entry.file_size())},
                                                  {"header_sha256", safetensors_header_sha256(entry.path())}};
  prov["checkpoint_shards"] = shards;
  return prov;
}

}  // namespace

fs::path input_path(const std::string& given, const Config& cfg, const Location& where) {
  return given.empty() ? where.in(cfg) : fs::path(given);
}

void verify_committed(const fs::path& file, const std::string& key) {
  const std::optional<std::string> verdict = done_marker_verify(file);
  if (!verdict) {
    spdlog::warn("{}: no .done marker certifies this file (not written by a finished thinksteer stage?); using it as it is", file.string());
    return;
  }
  if (!verdict->empty()) throw InputError(file.string(), key, *verdict + "; rerun the stage that makes it");
}

void check_format(const h5::SerialFile& f, const std::string& file, const Format& format) {
  const std::string name = f.attr_string("/", "format");
  if (name != format.name)
    throw InputError(file, "format", "is '" + name + "', not " + format.name + " (the file `thinksteer " + format.stage + "` writes)");
  const int64_t version = f.attr_int("/", "schema_version");
  if (version != format.schema_version)
    throw InputError(file, "schema_version", std::to_string(version) + " of " + format.name + " is not the version this build reads (" +
                                                 std::to_string(format.schema_version) + "): regenerate it with `thinksteer " + format.stage + "`");
}

std::unique_ptr<h5::SerialFile> open_checked(const fs::path& file, const Format& format, const std::string& key) {
  if (!fs::is_regular_file(file))
    throw InputError(file.string(), key, std::string("no such file (run `thinksteer ") + format.stage + "` first, or set " + key + ")");
  auto f = std::make_unique<h5::SerialFile>(file, h5::SerialFile::Mode::READ_ONLY);
  check_format(*f, file.string(), format);
  return f;
}

void write_h5_identity(h5::SerialFile& f, const json& prov, const Format& format) {
  f.set_attr("/", "format", std::string(format.name));
  f.set_attr("/", "schema_version", format.schema_version);
  f.set_attr("/", "stage", prov.value("stage", ""));
  f.set_attr("/", "config", prov.value("config", ""));
  f.set_attr("/", "config_sha256", prov.value("config_sha256", ""));
  f.set_attr("/", "git_commit", prov.value("git_commit", ""));
  f.set_attr("/", "thinksteer_version", prov.value("thinksteer_version", ""));
  f.set_attr("/", "created_utc", prov.value("created_utc", ""));
  f.set_attr("/", "world_size", prov.value("world_size", int64_t{1}));
  f.set_attr("/", "pipeline_stages", prov.value("pipeline_stages", int64_t{1}));
  f.set_attr("/", "seed", static_cast<int64_t>(prov.value("seed", uint64_t{0})));
  f.set_attr("/", "model_path", prov.value("model_path", ""));
  f.set_attr("/", "model_config_sha256", prov.value("model_config_sha256", ""));
  f.set_attr("/", "provenance", prov.dump());
}

std::string output_config_hash(const Config& cfg, const std::vector<std::string>& sections, const std::string& inputs) {
  return sha256_hex(config_to_ini(cfg, sections) + "\n" + inputs + "\n" + git_commit());
}

json stage_provenance(const Config& cfg, const Runtime& rt, const std::string& stage, const std::string& config_hash, const fs::path& model_dir) {
  json prov = provenance_json(cfg, config_hash);
  prov["stage"] = stage;
  prov["world_size"] = rt.world;
  prov["pipeline_stages"] = rt.n_stages;
  prov["data_parallel_replicas"] = rt.n_replicas;
  prov["device"] = rt.device.str();
  if (!model_dir.empty()) prov.update(checkpoint_provenance(model_dir));
  prov["prompts"] = cfg.data.prompts;
  if (cfg.data.prompts.rfind("builtin:", 0) != 0 && fs::exists(cfg.data.prompts)) prov["prompts_sha256"] = sha256_file(cfg.data.prompts);
  prov["versions"]["mpi"] = mpi_library_version();
  prov["versions"]["hdf5"] = hdf5_library_version();
#ifdef THINKSTEER_HAVE_NCCL
  prov["versions"]["nccl"] = NcclComm::version();
#endif
  for (const char* var : {"SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_RESTART_COUNT", "SLURM_JOB_NODELIST"})
    if (const char* v = std::getenv(var)) prov["slurm"][var] = v;
  return prov;
}

std::vector<h5::RowRange> row_ranges(const std::vector<int64_t>& rows) {
  std::vector<h5::RowRange> out;
  for (int64_t r : rows) {
    if (!out.empty() && out.back().begin + out.back().count == r) ++out.back().count;
    else out.push_back({r, 1});
  }
  return out;
}

void require(bool ok, const std::string& file, const std::string& field, const std::string& what) {
  if (!ok) throw InputError(file, field, what);
}

void require_shape(const h5::SerialFile& f, const std::string& file, const std::string& path, const std::vector<int64_t>& shape, const Format& format) {
  const auto text = [](const std::vector<int64_t>& v) {
    std::string out = "[";
    for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + std::to_string(v[i]);
    return out + "]";
  };
  require(f.exists(path), file, path, std::string("missing (a ") + format.name + " file holds it; regenerate it with `thinksteer " + format.stage + "`)");
  const std::vector<int64_t> got = f.shape(path);
  require(got == shape, file, path, "has shape " + text(got) + ", expected " + text(shape));
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string csv_number(double x) { return std::isnan(x) ? "" : fmt::format("{:.6g}", x); }

}  // namespace ts::artifacts
