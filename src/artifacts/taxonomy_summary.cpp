#include "artifacts/taxonomy_summary.h"

#include <cmath>
#include <sstream>

#include "core/error.h"

namespace ts::artifacts {
namespace fs = std::filesystem;

namespace {

// Column m of a [G, M] table.
std::vector<double> column(const std::vector<double>& table, size_t M, size_t m) {
  std::vector<double> out;
  for (size_t g = 0; g * M < table.size(); ++g) out.push_back(table[g * M + m]);
  return out;
}

}  // namespace

std::vector<h5::DatasetSpec> taxonomy_summary_datasets(const TaxonomySummary& s) {
  using h5::DType;
  const int64_t G = static_cast<int64_t>(s.n_groups());
  std::vector<h5::DatasetSpec> specs = {
      {"/groups/layer", DType::I64, {G}, {"group"}, {}},
      {"/groups/k", DType::I64, {G}, {"group"}, {{"description", "clusters"}}},
      {"/groups/n_seeds", DType::I64, {G}, {"group"}, {{"description", "finished seeds summarised"}}},
      {"/groups/score", DType::F64, {G}, {"group"}, {{"description", "selection score (NaN: not judged)"}}},
  };
  for (const std::string& m : s.metrics)
    for (const char* suffix : {"", "_lo", "_hi"}) specs.push_back({"/groups/" + m + suffix, DType::F64, {G}, {"group"}, {}});
  return specs;
}

void write_taxonomy_summary(const fs::path& file, const TaxonomySummary& s, const TaxonomySummaryRun& run, const json& provenance) {
  const auto specs = taxonomy_summary_datasets(s);
  const size_t M = s.metrics.size();
  std::vector<std::vector<double>> cols;
  for (size_t m = 0; m < M; ++m)
    for (const auto* table : {&s.mean, &s.lo, &s.hi}) cols.push_back(column(*table, M, m));
  std::vector<const void*> data = {s.layer.data(), s.k.data(), s.n_seeds.data(), s.score.data()};
  for (const auto& c : cols) data.push_back(c.data());
  h5::SerialFile f(file, h5::SerialFile::Mode::CREATE);
  for (size_t i = 0; i < specs.size(); ++i) f.write_dataset(specs[i], data[i]);
  f.write_strings("/groups/method", s.method, "group");
  f.write_strings("/metrics", s.metrics, "metric");
  write_h5_identity(f, provenance, TAXONOMY_SUMMARY);
  const bool sel = s.selected >= 0;
  f.set_attr("/", "rule", s.rule);
  f.set_attr("/", "selected_layer", sel ? s.layer[static_cast<size_t>(s.selected)] : int64_t{-1});
  f.set_attr("/", "selected_k", sel ? s.k[static_cast<size_t>(s.selected)] : int64_t{-1});
  f.set_attr("/", "selected_method", sel ? s.method[static_cast<size_t>(s.selected)] : std::string());
  f.set_attr("/", "partial", static_cast<int64_t>(run.partial));
  f.set_attr("/", "n_tasks", run.n_tasks);
  f.set_attr("/", "n_missing", run.n_missing);
  f.set_attr("/", "missing", run.missing);
}

std::string taxonomy_summary_csv(const TaxonomySummary& s) {
  std::ostringstream out;
  out.precision(10);
  out << "layer,k,method,n_seeds,score,selected";
  for (const std::string& m : s.metrics) out << "," << m << "," << m << "_lo," << m << "_hi";
  out << "\n";
  const size_t M = s.metrics.size();
  for (size_t g = 0; g < s.n_groups(); ++g) {
    out << s.layer[g] << "," << s.k[g] << "," << s.method[g] << "," << s.n_seeds[g] << "," << s.score[g] << ","
        << (static_cast<int64_t>(g) == s.selected ? 1 : 0);
    for (size_t m = 0; m < M; ++m) out << "," << s.mean[g * M + m] << "," << s.lo[g * M + m] << "," << s.hi[g * M + m];
    out << "\n";
  }
  return out.str();
}

TaxonomySummary read_taxonomy_summary(const fs::path& file) {
  const auto opened = open_checked(file, TAXONOMY_SUMMARY, "taxonomy summary");
  const h5::SerialFile& f = *opened;
  TaxonomySummary s;
  s.metrics = f.read_strings("/metrics");
  s.layer = f.read_i64("/groups/layer");
  s.k = f.read_i64("/groups/k");
  s.n_seeds = f.read_i64("/groups/n_seeds");
  s.method = f.read_strings("/groups/method");
  s.score = f.read_f64("/groups/score");
  const size_t G = s.layer.size(), M = s.metrics.size();
  if (s.k.size() != G || s.n_seeds.size() != G || s.method.size() != G || s.score.size() != G)
    throw InputError(file.string(), "/groups", "datasets disagree in length");
  s.mean.assign(G * M, NAN), s.lo.assign(G * M, NAN), s.hi.assign(G * M, NAN);
  for (size_t m = 0; m < M; ++m) {
    const std::string base = "/groups/" + s.metrics[m];
    const std::vector<double> mean = f.read_f64(base), lo = f.read_f64(base + "_lo"), hi = f.read_f64(base + "_hi");
    if (mean.size() != G || lo.size() != G || hi.size() != G) throw InputError(file.string(), base, "length differs from /groups/layer");
    for (size_t g = 0; g < G; ++g) s.mean[g * M + m] = mean[g], s.lo[g * M + m] = lo[g], s.hi[g * M + m] = hi[g];
  }
  s.rule = f.attr_string("/", "rule");
  const int64_t layer = f.attr_int("/", "selected_layer"), k = f.attr_int("/", "selected_k");
  const std::string method = f.attr_string("/", "selected_method");
  for (size_t g = 0; g < G; ++g)
    if (s.layer[g] == layer && s.k[g] == k && s.method[g] == method) s.selected = static_cast<int64_t>(g);
  verify_committed(file, "taxonomy summary");
  return s;
}

}  // namespace ts::artifacts
