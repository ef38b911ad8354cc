#include "artifacts/sweep_summary.h"

#include <cmath>

#include "core/error.h"
#include "core/log.h"

namespace ts::artifacts {
namespace fs = std::filesystem;

namespace {

const char* const DELTA_DESCRIPTION = "paired difference from the baseline (mean, bootstrap interval)";

std::string num(double x) { return csv_number(x); }

// The per-point x label deltas and the per-point deltas, in dataset order: name and values.
std::vector<std::pair<std::string, const std::vector<double>*>> delta_columns(const SweepSummary& s, bool per_label) {
  std::vector<std::pair<std::string, const std::vector<double>*>> out;
  const std::pair<const char*, const Delta*> deltas[] = {{"token_share", &s.d_token_share}, {"span_share", &s.d_span_share},
                                                         {"accuracy", &s.d_accuracy},       {"think_tokens", &s.d_think_tokens}};
  for (size_t i = per_label ? 0 : 2; i < (per_label ? 2u : 4u); ++i) {
    const auto& [name, d] = deltas[i];
    out.push_back({name, &d->mean});
    out.push_back({std::string(name) + "_lo", &d->lo});
    out.push_back({std::string(name) + "_hi", &d->hi});
  }
  return out;
}

}  // namespace

std::vector<h5::DatasetSpec> sweep_summary_datasets(int64_t P, int64_t K) {
  using h5::DType;
  std::vector<h5::DatasetSpec> specs = {
      {"/steerable", DType::U8, {K}, {"label"}, {{"description", "1: in the token-share denominator (the four steerable labels)"}}},
      {"/points/task", DType::I64, {P}, {"point"}, {}},
      {"/points/layer", DType::I64, {P}, {"point"}, {{"description", "first layer (-1: baseline)"}}},
      {"/points/seed", DType::I64, {P}, {"point"}, {}},
      {"/points/n_prompts", DType::I64, {P}, {"point"}, {}},
      {"/points/baseline", DType::I64, {P}, {"point"}, {{"description", "row of this point's baseline (-1: none)"}}},
      {"/points/coef", DType::F64, {P}, {"point"}, {{"description", "coefficient per layer (coef x layer_scale)"}}},
      {"/points/accuracy", DType::F64, {P}, {"point"}, {{"description", "share correct among prompts with a reference answer"}}},
      {"/points/think_tokens", DType::F64, {P}, {"point"}, {{"description", "mean generated tokens before </think>"}}},
      {"/points/closed", DType::F64, {P}, {"point"}, {{"description", "share of traces that closed </think>"}}},
      {"/fraction/token_share", DType::F64, {P, K}, {"point", "label"}, {{"description", "mean token share among steerable labels (S1)"}}},
      {"/fraction/span_share", DType::F64, {P, K}, {"point", "label"}, {{"description", "mean span share among all labels (S2)"}}},
  };
  for (const char* name : {"token_share", "token_share_lo", "token_share_hi", "span_share", "span_share_lo", "span_share_hi"})
    specs.push_back({std::string("/delta/") + name, DType::F64, {P, K}, {"point", "label"}, {{"description", DELTA_DESCRIPTION}}});
  for (const char* name : {"accuracy", "accuracy_lo", "accuracy_hi", "think_tokens", "think_tokens_lo", "think_tokens_hi"})
    specs.push_back({std::string("/delta/") + name, DType::F64, {P}, {"point"}, {{"description", DELTA_DESCRIPTION}}});
  return specs;
}

void write_sweep_summary(const fs::path& file, const SweepSummary& s, const SummaryRun& run, const json& provenance) {
  const std::vector<h5::DatasetSpec> specs = sweep_summary_datasets(static_cast<int64_t>(s.n_points()), static_cast<int64_t>(s.labels.size()));
  std::vector<const void*> data = {s.steerable.data(), s.task.data(),     s.layer.data(),    s.seed.data(),         s.n_prompts.data(),   s.baseline.data(),
                                   s.coef.data(),      s.accuracy.data(), s.think_tokens.data(), s.closed.data(), s.token_share.data(), s.span_share.data()};
  for (bool per_label : {true, false})
    for (const auto& [name, v] : delta_columns(s, per_label)) data.push_back(v->data());
  h5::SerialFile f(file, h5::SerialFile::Mode::CREATE);
  for (size_t i = 0; i < specs.size(); ++i) f.write_dataset(specs[i], data[i]);
  f.write_strings("/labels", s.labels, "label");
  const std::pair<const char*, const std::vector<std::string>*> strings[] = {{"key", &s.key},       {"dataset", &s.dataset}, {"kind", &s.kind}, {"vector", &s.vector},
                                                                             {"layers", &s.layers}, {"hook", &s.hook},       {"op", &s.op},     {"positions", &s.positions}};
  for (const auto& [name, v] : strings) f.write_strings(std::string("/points/") + name, *v, "point");
  write_h5_identity(f, provenance, SWEEP_SUMMARY);
  f.set_attr("/", "format_version", int64_t{1});
  f.set_attr("/", "partial", int64_t{run.partial ? 1 : 0});
  f.set_attr("/", "n_tasks", run.n_tasks);
  f.set_attr("/", "n_missing", run.n_missing);
  f.set_attr("/", "missing", run.missing);
  f.set_attr("/", "bootstrap", run.bootstrap);
  f.set_attr("/", "ci", run.ci);
}

std::string sweep_summary_csv(const SweepSummary& s) {
  std::string csv =
      "task,key,dataset,kind,vector,layers,hook,op,positions,coef,seed,n_prompts,accuracy,think_tokens,closed,baseline_task,label,steerable,"
      "token_share,token_share_delta,token_share_lo,token_share_hi,span_share,span_share_delta,span_share_lo,span_share_hi,"
      "accuracy_delta,accuracy_lo,accuracy_hi,think_tokens_delta,think_tokens_lo,think_tokens_hi\n";
  const size_t K = s.labels.size();
  for (size_t r = 0; r < s.n_points(); ++r)
    for (size_t k = 0; k < K; ++k) {
      const size_t x = r * K + k;
      const std::string base_task = s.baseline[r] < 0 ? "" : std::to_string(s.task[static_cast<size_t>(s.baseline[r])]);
      csv += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},", s.task[r], s.key[r], csv_field(s.dataset[r]), s.kind[r], s.vector[r],
                         s.layers[r], s.hook[r], s.op[r], s.positions[r], num(s.coef[r]), s.seed[r], s.n_prompts[r], num(s.accuracy[r]),
                         num(s.think_tokens[r]), num(s.closed[r]), base_task, s.labels[k], static_cast<int>(s.steerable[k]));
      csv += fmt::format("{},{},{},{},{},{},{},{},", num(s.token_share[x]), num(s.d_token_share.mean[x]), num(s.d_token_share.lo[x]),
                         num(s.d_token_share.hi[x]), num(s.span_share[x]), num(s.d_span_share.mean[x]), num(s.d_span_share.lo[x]), num(s.d_span_share.hi[x]));
      csv += fmt::format("{},{},{},{},{},{}\n", num(s.d_accuracy.mean[r]), num(s.d_accuracy.lo[r]), num(s.d_accuracy.hi[r]), num(s.d_think_tokens.mean[r]),
                         num(s.d_think_tokens.lo[r]), num(s.d_think_tokens.hi[r]));
    }
  return csv;
}

SweepSummary read_sweep_summary(const fs::path& file) {
  const auto opened = open_checked(file, SWEEP_SUMMARY, "sweep summary");
  const h5::SerialFile& f = *opened;
  SweepSummary s;
  s.labels = f.read_strings("/labels");
  s.task = f.read_i64("/points/task");
  const int64_t P = static_cast<int64_t>(s.task.size()), K = static_cast<int64_t>(s.labels.size());
  for (const h5::DatasetSpec& spec : sweep_summary_datasets(P, K))
    if (f.shape(spec.path) != spec.shape) throw InputError(file.string(), spec.path, "does not have the shape of " + std::to_string(P) + " points and " + std::to_string(K) + " labels");
  for (int64_t v : f.read_i64("/steerable")) s.steerable.push_back(static_cast<uint8_t>(v));
  s.layer = f.read_i64("/points/layer");
  s.seed = f.read_i64("/points/seed");
  s.n_prompts = f.read_i64("/points/n_prompts");
  s.baseline = f.read_i64("/points/baseline");
  auto doubles = [&](const std::string& path) { return f.read_f64(path); };
  s.coef = doubles("/points/coef");
  s.accuracy = doubles("/points/accuracy");
  s.think_tokens = doubles("/points/think_tokens");
  s.closed = doubles("/points/closed");
  s.token_share = doubles("/fraction/token_share");
  s.span_share = doubles("/fraction/span_share");
  const std::pair<const char*, Delta*> deltas[] = {{"token_share", &s.d_token_share}, {"span_share", &s.d_span_share},
                                                   {"accuracy", &s.d_accuracy}, {"think_tokens", &s.d_think_tokens}};
  for (const auto& [name, d] : deltas) {
    d->mean = doubles(std::string("/delta/") + name);
    d->lo = doubles(std::string("/delta/") + name + "_lo");
    d->hi = doubles(std::string("/delta/") + name + "_hi");
  }
  const std::pair<const char*, std::vector<std::string>*> strings[] = {{"key", &s.key},       {"dataset", &s.dataset}, {"kind", &s.kind}, {"vector", &s.vector},
                                                                       {"layers", &s.layers}, {"hook", &s.hook},       {"op", &s.op},     {"positions", &s.positions}};
  for (const auto& [name, v] : strings) {
    *v = f.read_strings(std::string("/points/") + name);
    if (static_cast<int64_t>(v->size()) != P) throw InputError(file.string(), std::string("/points/") + name, "does not have one entry per point");
  }
  for (int64_t b : s.baseline)
    if (b < -1 || b >= P) throw InputError(file.string(), "/points/baseline", std::to_string(b) + " is not a row of the summary");
  verify_committed(file, "sweep summary");
  return s;
}

}  // namespace ts::artifacts
