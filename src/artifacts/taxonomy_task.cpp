#include "artifacts/taxonomy_task.h"

#include "core/error.h"

namespace ts::artifacts {
namespace fs = std::filesystem;

std::vector<h5::DatasetSpec> taxonomy_task_datasets(int64_t n, int64_t k, int64_t d, int64_t epochs, bool sae) {
  using h5::DType;
  std::vector<h5::DatasetSpec> specs = {
      {"/assign", DType::I64, {n}, {"sentence"}, {{"description", "cluster of each sentence (row of the sentences file)"}}},
      {"/sizes", DType::I64, {k}, {"cluster"}, {{"description", "sentences per cluster (0: dead)"}}},
      {"/centres", DType::F32, {k, d}, {"cluster", "d_model"}, {{"description", "unit cluster directions (SAE decoder rows or k-means centres)"}}},
      {"/loss", DType::F64, {epochs}, {"epoch"}, {{"description", "SAE: epoch-average training FVU per epoch; k-means: objective / N"}}},
  };
  if (sae) {
    specs.push_back({"/sae/w_enc", DType::F32, {k, d}, {"cluster", "d_model"}, {}});
    specs.push_back({"/sae/b_enc", DType::F32, {k}, {"cluster"}, {}});
    specs.push_back({"/sae/w_dec", DType::F32, {k, d}, {"cluster", "d_model"}, {}});
    specs.push_back({"/sae/b_dec", DType::F32, {d}, {"d_model"}, {}});
  }
  return specs;
}

void write_taxonomy_task(const fs::path& file, const TaxonomyTask& t, const taxonomy::TaxonomyPoint& p, const json& provenance) {
  const bool sae = !t.w_enc.empty();
  const auto specs = taxonomy_task_datasets(t.n, t.k, t.d, static_cast<int64_t>(t.loss.size()), sae);
  std::vector<const void*> data = {t.assign.data(), t.sizes.data(), t.centres.data(), t.loss.data()};
  if (sae) data.insert(data.end(), {t.w_enc.data(), t.b_enc.data(), t.w_dec.data(), t.b_dec.data()});
  h5::SerialFile f(file, h5::SerialFile::Mode::CREATE);
  for (size_t i = 0; i < specs.size(); ++i) f.write_dataset(specs[i], data[i]);
  write_h5_identity(f, provenance, TAXONOMY_TASK);
  f.set_attr("/", "task", p.task);
  f.set_attr("/", "key", p.key);
  f.set_attr("/", "point", p.to_json().dump());
  f.set_attr("/", "metrics", t.metrics.dump());
  f.set_attr("/", "sentences_file", t.sentences_file);
  f.set_attr("/", "sentences_hash", t.sentences_hash);
}

TaxonomyTask read_taxonomy_task(const fs::path& file) {
  const auto opened = open_checked(file, TAXONOMY_TASK, "taxonomy task");
  const h5::SerialFile& f = *opened;
  const std::string name = file.string();
  TaxonomyTask t;
  t.key = f.attr_string("/", "key");
  t.point = f.attr_string("/", "point");
  t.config_sha256 = f.attr_string("/", "config_sha256");
  t.sentences_file = f.attr_string("/", "sentences_file");
  t.sentences_hash = f.attr_string("/", "sentences_hash");
  t.metrics = json_parse_strict(f.attr_string("/", "metrics"), name + " (attribute metrics)");
  if (!t.metrics.is_object()) throw InputError(name, "metrics", "is not a JSON object");
  t.assign = f.read_i64("/assign");
  t.sizes = f.read_i64("/sizes");
  const std::vector<int64_t> shape = f.shape("/centres");
  if (shape.size() != 2) throw InputError(name, "/centres", "must be [K, d]");
  t.k = shape[0], t.d = shape[1], t.n = static_cast<int64_t>(t.assign.size());
  t.centres = f.read_f32("/centres");
  t.loss = f.read_f64("/loss");
  if (static_cast<int64_t>(t.sizes.size()) != t.k) throw InputError(name, "/sizes", "length differs from /centres' K");
  std::vector<int64_t> count(static_cast<size_t>(t.k), 0);
  for (size_t i = 0; i < t.assign.size(); ++i) {
    if (t.assign[i] < 0 || t.assign[i] >= t.k) throw InputError(name, "/assign", "row " + std::to_string(i) + ": cluster " + std::to_string(t.assign[i]) + " is outside [0, K)");
    ++count[static_cast<size_t>(t.assign[i])];
  }
  if (count != t.sizes) throw InputError(name, "/sizes", "do not count the assignments");
  if (f.exists("/sae/w_enc")) {
    t.w_enc = f.read_f32("/sae/w_enc"), t.b_enc = f.read_f32("/sae/b_enc"), t.w_dec = f.read_f32("/sae/w_dec"), t.b_dec = f.read_f32("/sae/b_dec");
    const size_t kd = static_cast<size_t>(t.k * t.d);
    if (t.w_enc.size() != kd || t.w_dec.size() != kd || t.b_enc.size() != static_cast<size_t>(t.k) || t.b_dec.size() != static_cast<size_t>(t.d))
      throw InputError(name, "/sae", "parameter shapes disagree with /centres [K, d]");
  }
  verify_committed(file, "taxonomy task");
  return t;
}

void check_taxonomy_task(const fs::path& file, const TaxonomyTask& t, const taxonomy::TaxonomyPoint& p, const std::string& hash) {
  const std::string f = file.string();
  if (t.key != p.key) throw InputError(f, "key", "is '" + t.key + "', but the file stands for point " + p.key + ": a copy of another task's file?");
  json got = json_parse_strict(t.point, f + " (attribute point)"), want = p.to_json();
  got.erase("task"), want.erase("task");
  if (got != want) throw InputError(f, "point", "the parameters differ from the manifest row of " + p.key);
  if (t.config_sha256 != hash) throw InputError(f, "config_sha256", "is not the hash of this task's config and inputs (its .done marker vouches for another run)");
  if (t.k != p.k) throw InputError(f, "/centres", "has " + std::to_string(t.k) + " clusters, the point " + std::to_string(p.k));
}

}  // namespace ts::artifacts
