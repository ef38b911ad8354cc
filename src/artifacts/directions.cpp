#include "artifacts/directions.h"

#include <fmt/format.h>

#include <cmath>

#include "core/error.h"

namespace ts::artifacts {
namespace fs = std::filesystem;
using h5::DType;

namespace {

void require_finite(const std::vector<double>& v, const std::string& file, const std::string& dataset, bool allow_nan) {
  for (double x : v) require(std::isfinite(x) || (allow_nan && std::isnan(x)), file, dataset, "holds a value that is not finite");
}

}  // namespace

// ---- probes -------------------------------------------------------------------------------------

std::vector<h5::DatasetSpec> probes_datasets(const ProbeResults& r) {
  const int64_t H = static_cast<int64_t>(r.n_hooks()), C = static_cast<int64_t>(r.classes.size());
  std::vector<h5::DatasetSpec> out = {{"/layer", DType::I64, {H}, {"hook"}, {}}};
  for (const char* name : {"/accuracy", "/macro_f1", "/shuffled_accuracy", "/shuffled_macro_f1"}) out.push_back({name, DType::F64, {H}, {"hook"}, {}});
  for (const char* name : {"/accuracy_ci", "/macro_f1_ci"}) out.push_back({name, DType::F64, {H, 2}, {"hook", "bound"}, {}});
  for (size_t h = 0; h < r.n_hooks(); ++h) {
    out.push_back({"/weights/" + r.hooks[h], DType::F32, {C, r.width[h]}, {"class", "feature"}, {}});
    out.push_back({"/bias/" + r.hooks[h], DType::F32, {C}, {"class"}, {}});
  }
  return out;
}

void write_probes(const fs::path& file, const ProbeResults& r, const json& provenance) {
  h5::SerialFile f(file, h5::SerialFile::Mode::CREATE);
  write_h5_identity(f, provenance, PROBES);
  const std::vector<h5::DatasetSpec> specs = probes_datasets(r);
  f.write_strings("/hooks", r.hooks, "hook");
  f.write_strings("/classes", r.classes, "class");
  f.write_dataset(specs[0], r.layer.data());
  const std::vector<const std::vector<double>*> scalars = {&r.accuracy, &r.macro_f1, &r.shuffled_accuracy, &r.shuffled_macro_f1};
  for (size_t i = 0; i < scalars.size(); ++i) f.write_dataset(specs[1 + i], scalars[i]->data());
  std::vector<double> acc_ci, f1_ci;
  for (size_t h = 0; h < r.n_hooks(); ++h) {
    acc_ci.insert(acc_ci.end(), {r.accuracy_lo[h], r.accuracy_hi[h]});
    f1_ci.insert(f1_ci.end(), {r.macro_f1_lo[h], r.macro_f1_hi[h]});
  }
  f.write_dataset(specs[5], acc_ci.data());
  f.write_dataset(specs[6], f1_ci.data());
  for (size_t h = 0; h < r.n_hooks(); ++h) {
    f.write_dataset(specs[7 + 2 * h], r.weights[h].data());
    f.write_dataset(specs[8 + 2 * h], r.bias[h].data());
  }
  for (const auto& [name, v] : {std::pair<const char*, int64_t>{"n_train", r.n_train}, {"n_test", r.n_test}, {"n_train_traces", r.n_train_traces},
                                {"n_test_traces", r.n_test_traces}, {"seed", r.seed}})
    f.set_attr("/", name, v);
  f.set_attr("/", "majority_accuracy", r.majority_accuracy);
  f.set_attr("/", "l2", r.l2);
  f.set_attr("/", "input", r.input);
}

std::string probes_csv(const ProbeResults& r) {
  std::string csv = "hook,layer,accuracy,accuracy_lo,accuracy_hi,macro_f1,macro_f1_lo,macro_f1_hi,shuffled_accuracy,shuffled_macro_f1\n";
  for (size_t h = 0; h < r.n_hooks(); ++h)
    csv += fmt::format("{},{},{},{},{},{},{},{},{},{}\n", csv_field(r.hooks[h]), r.layer[h], csv_number(r.accuracy[h]), csv_number(r.accuracy_lo[h]),
                       csv_number(r.accuracy_hi[h]), csv_number(r.macro_f1[h]), csv_number(r.macro_f1_lo[h]), csv_number(r.macro_f1_hi[h]),
                       csv_number(r.shuffled_accuracy[h]), csv_number(r.shuffled_macro_f1[h]));
  return csv;
}

ProbeResults read_probes(const fs::path& file, const std::string& key) {
  const auto opened = open_checked(file, PROBES, key);
  const h5::SerialFile& f = *opened;
  const std::string name = file.string();
  ProbeResults r;
  require(f.exists("/hooks") && f.exists("/classes"), name, "/hooks", "missing dataset");
  r.hooks = f.read_strings("/hooks");
  r.classes = f.read_strings("/classes");
  const int64_t H = static_cast<int64_t>(r.hooks.size()), C = static_cast<int64_t>(r.classes.size());
  require(H > 0 && C >= 2, name, "/classes", "a probe file needs at least one hook and two classes");
  for (const std::string& h : r.hooks) {
    require(f.exists("/weights/" + h), name, "/weights/" + h, "missing dataset");
    const std::vector<int64_t> shape = f.shape("/weights/" + h);
    require(shape.size() == 2 && shape[0] == C && shape[1] > 0, name, "/weights/" + h, "must be [classes, features]");
    r.width.push_back(shape[1]);
  }
  ProbeResults shapes = r;
  shapes.layer.assign(static_cast<size_t>(H), 0);
  for (const h5::DatasetSpec& s : probes_datasets(shapes)) require_shape(f, name, s.path, s.shape, PROBES);
  r.layer = f.read_i64("/layer");
  r.accuracy = f.read_f64("/accuracy");
  r.macro_f1 = f.read_f64("/macro_f1");
  r.shuffled_accuracy = f.read_f64("/shuffled_accuracy");
  r.shuffled_macro_f1 = f.read_f64("/shuffled_macro_f1");
  const std::vector<double> acc_ci = f.read_f64("/accuracy_ci"), f1_ci = f.read_f64("/macro_f1_ci");
  for (int64_t h = 0; h < H; ++h) {
    r.accuracy_lo.push_back(acc_ci[static_cast<size_t>(2 * h)]);
    r.accuracy_hi.push_back(acc_ci[static_cast<size_t>(2 * h + 1)]);
    r.macro_f1_lo.push_back(f1_ci[static_cast<size_t>(2 * h)]);
    r.macro_f1_hi.push_back(f1_ci[static_cast<size_t>(2 * h + 1)]);
    r.weights.push_back(f.read_f32("/weights/" + r.hooks[static_cast<size_t>(h)]));
    r.bias.push_back(f.read_f32("/bias/" + r.hooks[static_cast<size_t>(h)]));
  }
  for (const char* d : {"/accuracy", "/macro_f1", "/shuffled_accuracy", "/shuffled_macro_f1", "/accuracy_ci", "/macro_f1_ci"})
    require_finite(f.read_f64(d), name, d, false);
  r.n_train = f.attr_int("/", "n_train");
  r.n_test = f.attr_int("/", "n_test");
  r.n_train_traces = f.attr_int("/", "n_train_traces");
  r.n_test_traces = f.attr_int("/", "n_test_traces");
  r.seed = f.attr_int("/", "seed");
  r.input = f.attr_string("/", "input");
  verify_committed(file, key);
  return r;
}

// ---- logit lens ---------------------------------------------------------------------------------

std::vector<h5::DatasetSpec> lens_datasets(const LensResults& r) {
  const int64_t R = r.n_rows(), L = r.n_layers(), k = r.k;
  return {{"/layers", DType::I64, {L}, {"layer"}, {}},
          {"/sequence", DType::I64, {R}, {"row"}, {}},
          {"/token", DType::I64, {R}, {"row"}, {}},
          {"/target", DType::I32, {R}, {"row"}, {{"description", "the model's own top-1 token at the row's position"}}},
          {"/kl", DType::F32, {R, L}, {"row", "layer"}, {{"description", "KL(final || lens) in nats"}}},
          {"/target_prob", DType::F32, {R, L}, {"row", "layer"}, {}},
          {"/target_rank", DType::I32, {R, L}, {"row", "layer"}, {{"description", "0 = the lens' top token"}}},
          {"/top_ids", DType::I32, {R, L, k}, {"row", "layer", "k"}, {}},
          {"/top_probs", DType::F32, {R, L, k}, {"row", "layer", "k"}, {}}};
}

void write_lens(const fs::path& file, const LensResults& r, const json& provenance) {
  h5::SerialFile f(file, h5::SerialFile::Mode::CREATE);
  write_h5_identity(f, provenance, LOGIT_LENS);
  const std::vector<h5::DatasetSpec> s = lens_datasets(r);
  const std::vector<const void*> data = {r.layers.data(), r.sequence.data(), r.token.data(), r.target.data(), r.kl.data(),
                                         r.target_prob.data(), r.target_rank.data(), r.top_ids.data(), r.top_probs.data()};
  for (size_t i = 0; i < s.size(); ++i) f.write_dataset(s[i], data[i]);
  f.set_attr("/", "input", r.input);
}

std::string lens_csv(const LensResults& r) {
  std::string csv = "layer,kl_mean,target_prob_mean,target_rank_median,top1_agreement\n";
  const int64_t R = r.n_rows(), L = r.n_layers();
  for (int64_t l = 0; l < L; ++l) {
    double kl = 0, prob = 0, top1 = 0;
    std::vector<int32_t> ranks;
    for (int64_t i = 0; i < R; ++i) {
      const size_t x = static_cast<size_t>(i * L + l);
      kl += r.kl[x];
      prob += r.target_prob[x];
      top1 += r.target_rank[x] == 0 ? 1 : 0;
      ranks.push_back(r.target_rank[x]);
    }
    std::sort(ranks.begin(), ranks.end());
    const double median = ranks.empty() ? NAN : ranks.size() % 2 ? ranks[ranks.size() / 2] : 0.5 * (ranks[ranks.size() / 2 - 1] + ranks[ranks.size() / 2]);
    const double n = static_cast<double>(R);
    csv += fmt::format("{},{},{},{},{}\n", r.layers[static_cast<size_t>(l)], csv_number(kl / n), csv_number(prob / n), csv_number(median), csv_number(top1 / n));
  }
  return csv;
}

LensResults read_lens(const fs::path& file, const std::string& key) {
  const auto opened = open_checked(file, LOGIT_LENS, key);
  const h5::SerialFile& f = *opened;
  const std::string name = file.string();
  LensResults r;
  for (const char* d : {"/layers", "/sequence", "/top_ids"}) require(f.exists(d), name, d, "missing dataset");
  const std::vector<int64_t> top = f.shape("/top_ids");
  require(top.size() == 3, name, "/top_ids", "must be [row, layer, k]");
  r.layers = f.read_i64("/layers");
  r.sequence = f.read_i64("/sequence");
  r.k = top[2];
  r.token.assign(r.sequence.size(), 0);
  r.target.assign(r.sequence.size(), 0);
  for (const h5::DatasetSpec& s : lens_datasets(r)) require_shape(f, name, s.path, s.shape, LOGIT_LENS);
  const auto i32 = [&](const char* d) {
    const std::vector<int64_t> v = f.read_i64(d);
    return std::vector<int32_t>(v.begin(), v.end());
  };
  r.token = f.read_i64("/token");
  r.target = i32("/target");
  r.kl = f.read_f32("/kl");
  r.target_prob = f.read_f32("/target_prob");
  r.target_rank = i32("/target_rank");
  r.top_ids = i32("/top_ids");
  r.top_probs = f.read_f32("/top_probs");
  r.input = f.attr_string("/", "input");
  verify_committed(file, key);
  return r;
}

// ---- CKA ----------------------------------------------------------------------------------------

std::vector<h5::DatasetSpec> cka_datasets(const CkaResults& r) {
  const int64_t A = static_cast<int64_t>(r.hooks_a.size()), B = static_cast<int64_t>(r.hooks_b.size());
  std::vector<h5::DatasetSpec> out = {{"/layers_a", DType::I64, {A}, {"hook_a"}, {}},
                                      {"/layers_b", DType::I64, {B}, {"hook_b"}, {}},
                                      {"/linear", DType::F64, {A, B}, {"hook_a", "hook_b"}, {{"description", "linear CKA"}}}};
  if (!r.rbf.empty()) out.push_back({"/rbf", DType::F64, {A, B}, {"hook_a", "hook_b"}, {{"description", "RBF CKA (median heuristic)"}}});
  return out;
}

void write_cka(const fs::path& file, const CkaResults& r, const json& provenance) {
  h5::SerialFile f(file, h5::SerialFile::Mode::CREATE);
  write_h5_identity(f, provenance, CKA);
  const std::vector<h5::DatasetSpec> s = cka_datasets(r);
  f.write_strings("/hooks_a", r.hooks_a, "hook_a");
  f.write_strings("/hooks_b", r.hooks_b, "hook_b");
  f.write_dataset(s[0], r.layers_a.data());
  f.write_dataset(s[1], r.layers_b.data());
  f.write_dataset(s[2], r.linear.data());
  if (!r.rbf.empty()) f.write_dataset(s[3], r.rbf.data());
  for (const auto& [name, v] : {std::pair<const char*, int64_t>{"n_rows", r.n_rows}, {"n_rows_total", r.n_rows_total}, {"seed", r.seed}})
    f.set_attr("/", name, v);
  for (const auto& [name, v] : {std::pair<const char*, const std::string*>{"model_a", &r.model_a}, {"model_b", &r.model_b}, {"input_a", &r.input_a},
                                {"input_b", &r.input_b}})
    f.set_attr("/", name, *v);
}

std::string cka_csv(const CkaResults& r) {
  std::string csv = r.rbf.empty() ? "hook_a,layer_a,hook_b,layer_b,linear\n" : "hook_a,layer_a,hook_b,layer_b,linear,rbf\n";
  const size_t B = r.hooks_b.size();
  for (size_t a = 0; a < r.hooks_a.size(); ++a)
    for (size_t b = 0; b < B; ++b) {
      csv += fmt::format("{},{},{},{},{}", csv_field(r.hooks_a[a]), r.layers_a[a], csv_field(r.hooks_b[b]), r.layers_b[b], csv_number(r.linear[a * B + b]));
      if (!r.rbf.empty()) csv.append(",").append(csv_number(r.rbf[a * B + b]));  // append, not "," + s: GCC 12 warns falsely there (bug 105329)
      csv += "\n";
    }
  return csv;
}

CkaResults read_cka(const fs::path& file, const std::string& key) {
  const auto opened = open_checked(file, CKA, key);
  const h5::SerialFile& f = *opened;
  const std::string name = file.string();
  CkaResults r;
  for (const char* d : {"/hooks_a", "/hooks_b"}) require(f.exists(d), name, d, "missing dataset");
  r.hooks_a = f.read_strings("/hooks_a");
  r.hooks_b = f.read_strings("/hooks_b");
  r.rbf.assign(f.exists("/rbf") ? 1 : 0, 0.0);
  for (const h5::DatasetSpec& s : cka_datasets(r)) require_shape(f, name, s.path, s.shape, CKA);
  r.layers_a = f.read_i64("/layers_a");
  r.layers_b = f.read_i64("/layers_b");
  r.linear = f.read_f64("/linear");
  require_finite(r.linear, name, "/linear", true);  // NaN: a representation without variance
  if (!r.rbf.empty()) r.rbf = f.read_f64("/rbf");
  r.n_rows = f.attr_int("/", "n_rows");
  r.n_rows_total = f.attr_int("/", "n_rows_total");
  r.seed = f.attr_int("/", "seed");
  r.model_a = f.attr_string("/", "model_a");
  r.model_b = f.attr_string("/", "model_b");
  r.input_a = f.attr_string("/", "input_a");
  r.input_b = f.attr_string("/", "input_b");
  verify_committed(file, key);
  return r;
}

}  // namespace ts::artifacts
