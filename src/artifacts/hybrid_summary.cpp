#include "artifacts/hybrid_summary.h"

#include <sstream>

namespace ts::artifacts {
namespace fs = std::filesystem;

std::vector<h5::DatasetSpec> hybrid_summary_datasets(int64_t r, int64_t c) {
  using h5::DType;
  std::vector<h5::DatasetSpec> s;
  for (const char* name : {"/task", "/layer", "/seed", "/n"}) s.push_back({name, DType::I64, {r}, {"row"}, {}});
  for (const char* name : {"/accuracy", "/accuracy_lo", "/accuracy_hi", "/gap", "/gap_lo", "/gap_hi", "/vs_hybrid", "/vs_hybrid_lo", "/vs_hybrid_hi",
                           "/steered_share", "/disagree_share", "/hit_share", "/think_tokens"})
    s.push_back({name, DType::F64, {r}, {"row"}, {}});
  s.push_back({"/category_usage", DType::F64, {r, c}, {"row", "category"}, {{"description", "share of steered steps per category"}}});
  return s;
}

void write_hybrid_summary(const fs::path& file, const HybridSummary& s, const json& provenance) {
  const auto specs = hybrid_summary_datasets(static_cast<int64_t>(s.rows()), s.categories);
  const std::vector<const void*> data = {s.task.data(),         s.layer.data(),        s.seed.data(),           s.n.data(),
                                         s.accuracy.data(),     s.accuracy_lo.data(),  s.accuracy_hi.data(),    s.gap.data(),
                                         s.gap_lo.data(),       s.gap_hi.data(),       s.vs_hybrid.data(),      s.vs_hybrid_lo.data(),
                                         s.vs_hybrid_hi.data(), s.steered_share.data(), s.disagree_share.data(), s.hit_share.data(),
                                         s.think_tokens.data(), s.category_usage.data()};
  h5::SerialFile f(file, h5::SerialFile::Mode::CREATE);
  for (size_t i = 0; i < specs.size(); ++i) f.write_dataset(specs[i], data[i]);
  f.write_strings("/key", s.key, "row");
  f.write_strings("/dataset", s.dataset, "row");
  f.write_strings("/role", s.role, "row");
  f.write_strings("/rule", s.rule, "row");
  f.write_strings("/ablation", s.ablation, "row");
  write_h5_identity(f, provenance, HYBRID_SUMMARY);
  f.set_attr("/", "partial", static_cast<int64_t>(s.partial));
  f.set_attr("/", "bootstrap", s.bootstrap);
  f.set_attr("/", "ci", std::to_string(s.ci));
  f.set_attr("/", "categories", s.categories);
}

std::string hybrid_summary_csv(const HybridSummary& s) {
  std::ostringstream out;
  out << "task,key,dataset,role,rule,ablation,layer,seed,n,accuracy,accuracy_lo,accuracy_hi,gap,gap_lo,gap_hi,vs_hybrid,vs_hybrid_lo,vs_hybrid_hi,"
         "steered_share,disagree_share,hit_share,think_tokens\n";
  for (size_t i = 0; i < s.rows(); ++i)
    out << s.task[i] << "," << s.key[i] << "," << s.dataset[i] << "," << s.role[i] << "," << s.rule[i] << "," << s.ablation[i] << "," << s.layer[i] << ","
        << s.seed[i] << "," << s.n[i] << "," << s.accuracy[i] << "," << s.accuracy_lo[i] << "," << s.accuracy_hi[i] << "," << s.gap[i] << "," << s.gap_lo[i]
        << "," << s.gap_hi[i] << "," << s.vs_hybrid[i] << "," << s.vs_hybrid_lo[i] << "," << s.vs_hybrid_hi[i] << "," << s.steered_share[i] << ","
        << s.disagree_share[i] << "," << s.hit_share[i] << "," << s.think_tokens[i] << "\n";
  return out.str();
}

}  // namespace ts::artifacts
