#include "artifacts/intervene.h"

#include <fmt/format.h>

#include <cmath>

#include "core/error.h"

namespace ts::artifacts {
namespace fs = std::filesystem;
using h5::DType;

namespace {
const char* const TASK_F64[] = {"/logp", "/logp_clean", "/logp_source"};
const char* const TASK_U8[] = {"/exact", "/exact_clean"};
const char* const SUMMARY_F64[] = {"logp", "logp_clean", "delta_logp", "delta_logp_lo", "delta_logp_hi", "exact", "exact_clean", "delta_exact",
                                   "delta_exact_lo", "delta_exact_hi", "recovery", "recovery_lo", "recovery_hi"};

std::vector<const std::vector<double>*> summary_columns(const InterveneSummary& s) {
  return {&s.logp, &s.logp_clean, &s.delta_logp, &s.delta_logp_lo, &s.delta_logp_hi, &s.exact, &s.exact_clean, &s.delta_exact,
          &s.delta_exact_lo, &s.delta_exact_hi, &s.recovery, &s.recovery_lo, &s.recovery_hi};
}
}  // namespace

std::vector<h5::DatasetSpec> intervene_task_datasets(int64_t n) {
  std::vector<h5::DatasetSpec> out;
  for (const char* d : TASK_F64) out.push_back({d, DType::F64, {n}, {"prompt"}, {{"description", "log-probability of the answer tokens (nats)"}}});
  for (const char* d : TASK_U8) out.push_back({d, DType::U8, {n}, {"prompt"}, {{"description", "every answer token is the argmax"}}});
  out.push_back({"/n_answer_tokens", DType::I64, {n}, {"prompt"}, {}});
  return out;
}

void write_intervene_task(const fs::path& file, const InterveneTask& t, const json& provenance) {
  h5::SerialFile f(file, h5::SerialFile::Mode::CREATE);
  write_h5_identity(f, provenance, INTERVENE_TASK);
  const std::vector<h5::DatasetSpec> s = intervene_task_datasets(static_cast<int64_t>(t.n()));
  f.write_strings("/prompt_id", t.prompt_id, "prompt");
  const std::vector<const void*> data = {t.logp.data(), t.logp_clean.data(), t.logp_source.data(), t.exact.data(), t.exact_clean.data(),
                                         t.n_answer_tokens.data()};
  for (size_t i = 0; i < s.size(); ++i) f.write_dataset(s[i], data[i]);
  f.set_attr("/", "task", t.task);
  f.set_attr("/", "layer", t.layer);
  for (const auto& [name, v] : {std::pair<const char*, const std::string*>{"key", &t.key}, {"dataset", &t.dataset}, {"mode", &t.mode}, {"site", &t.site},
                                {"positions", &t.positions}, {"config_sha256", &t.config_sha256}})
    f.set_attr("/", name, *v);
}

InterveneTask read_intervene_task(const fs::path& file) {
  const auto opened = open_checked(file, INTERVENE_TASK, "intervene task");
  const h5::SerialFile& f = *opened;
  const std::string name = file.string();
  require(f.exists("/prompt_id"), name, "/prompt_id", "missing dataset");
  InterveneTask t;
  t.prompt_id = f.read_strings("/prompt_id");
  for (const h5::DatasetSpec& s : intervene_task_datasets(static_cast<int64_t>(t.n()))) require_shape(f, name, s.path, s.shape, INTERVENE_TASK);
  t.logp = f.read_f64("/logp");
  t.logp_clean = f.read_f64("/logp_clean");
  t.logp_source = f.read_f64("/logp_source");
  for (const auto& [d, dst] : {std::pair{"/exact", &t.exact}, std::pair{"/exact_clean", &t.exact_clean}}) {
    const std::vector<int64_t> v = f.read_i64(d);
    dst->assign(v.begin(), v.end());
  }
  t.n_answer_tokens = f.read_i64("/n_answer_tokens");
  t.task = f.attr_int("/", "task");
  t.layer = f.attr_int("/", "layer");
  t.key = f.attr_string("/", "key");
  t.dataset = f.attr_string("/", "dataset");
  t.mode = f.attr_string("/", "mode");
  t.site = f.attr_string("/", "site");
  t.positions = f.attr_string("/", "positions");
  t.config_sha256 = f.attr_string("/", "config_sha256");
  verify_committed(file, "intervene task");
  return t;
}

std::vector<h5::DatasetSpec> intervene_summary_datasets(int64_t rows) {
  std::vector<h5::DatasetSpec> out = {{"/task", DType::I64, {rows}, {"row"}, {}}, {"/layer", DType::I64, {rows}, {"row"}, {{"description", "-1: every layer"}}},
                                      {"/n", DType::I64, {rows}, {"row"}, {}}};
  for (const char* c : SUMMARY_F64) out.push_back({std::string("/") + c, DType::F64, {rows}, {"row"}, {}});
  return out;
}

void write_intervene_summary(const fs::path& file, const InterveneSummary& s, const json& provenance) {
  h5::SerialFile f(file, h5::SerialFile::Mode::CREATE);
  write_h5_identity(f, provenance, INTERVENE_SUMMARY);
  const std::vector<h5::DatasetSpec> specs = intervene_summary_datasets(static_cast<int64_t>(s.rows()));
  f.write_strings("/dataset", s.dataset, "row");
  f.write_strings("/mode", s.mode, "row");
  f.write_strings("/site", s.site, "row");
  f.write_dataset(specs[0], s.task.data());
  f.write_dataset(specs[1], s.layer.data());
  f.write_dataset(specs[2], s.n.data());
  const auto cols = summary_columns(s);
  for (size_t i = 0; i < cols.size(); ++i) f.write_dataset(specs[3 + i], cols[i]->data());
  f.set_attr("/", "partial", static_cast<int64_t>(s.partial));
}

std::string intervene_summary_csv(const InterveneSummary& s) {
  std::string csv = "dataset,mode,layer,site,n";
  for (const char* c : SUMMARY_F64) csv += std::string(",") + c;
  csv += "\n";
  const auto cols = summary_columns(s);
  for (size_t r = 0; r < s.rows(); ++r) {
    csv += fmt::format("{},{},{},{},{}", csv_field(s.dataset[r]), s.mode[r], s.layer[r], s.site[r], s.n[r]);
    for (const auto* c : cols) csv.append(",").append(csv_number((*c)[r]));
    csv += "\n";
  }
  return csv;
}

}  // namespace ts::artifacts
