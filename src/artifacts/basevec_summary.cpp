#include "artifacts/basevec_summary.h"

#include <cmath>
#include <sstream>

#include "artifacts/basevec_task.h"

namespace ts::artifacts {
namespace fs = std::filesystem;

std::vector<h5::DatasetSpec> basevec_summary_datasets(int64_t n) {
  using h5::DType;
  return {{"/task", DType::I64, {n}, {"row"}, {}},
          {"/seed", DType::I64, {n}, {"row"}, {}},
          {"/selection", DType::F64, {n}, {"row"}, {{"description", "selection metric (lower is better): top-k KL (correction) or log10 CE (linear)"}}},
          {"/selected", DType::I64, {n}, {"row"}, {{"description", "1: the task reduce chose for its method"}}}};
}

void write_basevec_summary(const fs::path& file, const BasevecSummary& s, const json& provenance) {
  const auto n = static_cast<int64_t>(s.task.size());
  const auto specs = basevec_summary_datasets(n);
  const std::vector<const void*> data = {s.task.data(), s.seed.data(), s.selection.data(), s.selected.data()};
  h5::SerialFile f(file, h5::SerialFile::Mode::CREATE);
  for (size_t i = 0; i < specs.size(); ++i) f.write_dataset(specs[i], data[i]);
  f.write_strings("/method", s.method, "row");
  f.write_strings("/key", s.key, "row");
  write_h5_identity(f, provenance, BASEVEC_SUMMARY);
  f.set_attr("/", "rule", s.rule);
  f.set_attr("/", "partial", static_cast<int64_t>(s.partial));
  f.set_attr("/", "metrics", json(s.metrics).dump());
}

std::string basevec_summary_csv(const BasevecSummary& s) {
  std::ostringstream out;
  out << "task,key,method,seed,selection,selected,holdout_unsteered,holdout_steered,holdout_random_mean\n";
  for (size_t i = 0; i < s.task.size(); ++i) {
    const json& m = s.metrics[i];
    double u = NAN, st = NAN, r = NAN;
    if (m.contains("holdout")) {
      const json& h = m["holdout"];
      if (s.method[i] == "correction") {
        u = h["unsteered"]["kl"].is_number() ? h["unsteered"]["kl"].get<double>() : NAN;
        st = h["steered"]["kl"].is_number() ? h["steered"]["kl"].get<double>() : NAN;
        double sum = 0;
        int n = 0;
        for (const json& x : h["random_kl"])
          if (x.is_number()) sum += x.get<double>(), ++n;
        r = n > 0 ? sum / n : NAN;
      } else {
        u = h["unsteered"].get<double>(), st = h["steered"].get<double>(), r = h["random"].get<double>();
      }
    }
    out << s.task[i] << "," << s.key[i] << "," << s.method[i] << "," << s.seed[i] << "," << s.selection[i] << "," << s.selected[i] << "," << u << "," << st << ","
        << r << "\n";
  }
  return out.str();
}

json basevec_selected_json(const BasevecSummary& s, const fs::path& tasks_dir) {
  json out = json::object();
  for (size_t i = 0; i < s.task.size(); ++i)
    if (s.selected[i] == 1) {
      const fs::path file = tasks_dir / (s.key[i] + ".h5");
      out[s.method[i]] = {{"key", s.key[i]}, {"task", s.task[i]}, {"seed", s.seed[i]}, {"file", file.string()}, {"vectors", basevec_vectors_file(file).string()},
                          {"selection", s.selection[i]}};
    }
  return out;
}

}  // namespace ts::artifacts
