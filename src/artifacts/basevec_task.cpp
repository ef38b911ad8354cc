#include "artifacts/basevec_task.h"

#include <cmath>

#include "core/error.h"
#include "io/vectors.h"

namespace ts::artifacts {
namespace fs = std::filesystem;

fs::path basevec_vectors_file(const fs::path& task_file) {
  fs::path p = task_file;
  return p.replace_extension(".vectors.h5");
}

std::vector<h5::DatasetSpec> basevec_task_datasets(const BasevecTask& t) {
  using h5::DType;
  const auto e = static_cast<int64_t>(t.curve_step.size());
  std::vector<h5::DatasetSpec> s = {
      {"/vectors", DType::F32, {t.c, t.d}, {"category", "d_model"}, {{"description", "one vector per category, added at the hook"}}},
      {"/counts", DType::I64, {t.c}, {"category"}, {{"description", "training positions or sentences per category (0: none, zero vector)"}}},
      {"/norms", DType::F32, {t.c}, {"category"}, {}},
      {"/curves/step", DType::I64, {e}, {"point"}, {}},
      {"/curves/epoch", DType::F64, {e}, {"point"}, {}},
      {"/curves/phase", DType::I64, {e}, {"point"}, {{"description", "linear: -1 bias, c category; correction: 0"}}},
      {"/curves/train", DType::F64, {e}, {"point"}, {{"description", "mean training loss since the previous point"}}},
      {"/curves/holdout", DType::F64, {e}, {"point"}, {{"description", "holdout top-k KL (correction); NaN for linear"}}},
  };
  if (!t.bias.empty()) s.push_back({"/bias", DType::F32, {t.d}, {"d_model"}, {{"description", "linear: added with every category's vector"}}});
  if (!t.w1.empty()) {
    s.push_back({"/mlp/w1", DType::F32, {t.hidden, t.d}, {"hidden", "d_model"}, {}});
    s.push_back({"/mlp/b1", DType::F32, {t.hidden}, {"hidden"}, {}});
    s.push_back({"/mlp/w2", DType::F32, {t.c, t.hidden}, {"category", "hidden"}, {}});
    s.push_back({"/mlp/b2", DType::F32, {t.c}, {"category"}, {}});
  }
  return s;
}

void write_basevec_task(const fs::path& file, const fs::path& vectors_file, const BasevecTask& t, const json& provenance) {
  const auto specs = basevec_task_datasets(t);
  std::vector<const void*> data = {t.vectors.data(),     t.counts.data(),      t.norms.data(),       t.curve_step.data(),
                                   t.curve_epoch.data(), t.curve_phase.data(), t.curve_train.data(), t.curve_holdout.data()};
  if (!t.bias.empty()) data.push_back(t.bias.data());
  if (!t.w1.empty()) data.insert(data.end(), {t.w1.data(), t.b1.data(), t.w2.data(), t.b2.data()});
  {
    h5::SerialFile f(file, h5::SerialFile::Mode::CREATE);
    for (size_t i = 0; i < specs.size(); ++i) f.write_dataset(specs[i], data[i]);
    write_h5_identity(f, provenance, BASEVEC_TASK);
    f.set_attr("/", "task", t.task);
    f.set_attr("/", "key", t.key);
    f.set_attr("/", "point", t.point);
    f.set_attr("/", "method", t.method);
    f.set_attr("/", "seed", t.seed);
    f.set_attr("/", "hook", t.hook);
    f.set_attr("/", "layer", t.layer);
    json cats = json::array();
    for (int64_t c = 0; c < t.c; ++c) cats.push_back("idx" + std::to_string(c));
    f.set_attr("/", "categories", cats.dump());
    f.set_attr("/", "mlp_input", t.w1.empty() ? std::string() : t.hook + " of the base model at the shifted position, before the shift");
    f.set_attr("/", "metrics", t.metrics.dump());
    f.set_attr("/", "records_file", t.records_file);
    f.set_attr("/", "records_hash", t.records_hash);
    f.set_attr("/", "base_model", t.base_model);
  }
  VectorSet v;
  v.hook_measured = v.hook_applied = "blocks.{l}.hook_resid_post";
  v.layers = {t.layer};
  v.d_model = t.d;
  for (int64_t c = 0; c < t.c; ++c) v.names.push_back("idx" + std::to_string(c));
  v.values = t.vectors;
  v.counts = t.counts;
  if (!t.bias.empty()) {
    v.names.push_back("bias");
    v.values.insert(v.values.end(), t.bias.begin(), t.bias.end());
    v.counts.push_back(1);
  }
  v.model = t.base_model;
  v.provenance_json = provenance.dump();
  vectors_write_h5(vectors_file, v);
}

BasevecTask read_basevec_task(const fs::path& file) {
  const auto opened = open_checked(file, BASEVEC_TASK, "basevec task");
  const h5::SerialFile& f = *opened;
  const std::string name = file.string();
  BasevecTask t;
  t.task = f.attr_int("/", "task");
  t.key = f.attr_string("/", "key"), t.point = f.attr_string("/", "point"), t.method = f.attr_string("/", "method");
  t.seed = f.attr_int("/", "seed"), t.hook = f.attr_string("/", "hook"), t.layer = f.attr_int("/", "layer");
  t.config_sha256 = f.attr_string("/", "config_sha256");
  t.records_file = f.attr_string("/", "records_file"), t.records_hash = f.attr_string("/", "records_hash");
  t.base_model = f.attr_string("/", "base_model");
  t.metrics = json_parse_strict(f.attr_string("/", "metrics"), name + " (attribute metrics)");
  if (!t.metrics.is_object()) throw InputError(name, "metrics", "is not a JSON object");
  const std::vector<int64_t> shape = f.shape("/vectors");
  if (shape.size() != 2 || shape[0] < 1 || shape[1] < 1) throw InputError(name, "/vectors", "must be [C, d]");
  t.c = shape[0], t.d = shape[1];
  t.vectors = f.read_f32("/vectors"), t.norms = f.read_f32("/norms"), t.counts = f.read_i64("/counts");
  if (static_cast<int64_t>(t.norms.size()) != t.c || static_cast<int64_t>(t.counts.size()) != t.c) throw InputError(name, "/norms", "length differs from C");
  for (float v : t.vectors)
    if (!std::isfinite(v)) throw InputError(name, "/vectors", "holds a value that is not finite");
  if (f.exists("/bias")) {
    t.bias = f.read_f32("/bias");
    if (static_cast<int64_t>(t.bias.size()) != t.d) throw InputError(name, "/bias", "must be [d]");
  }
  if (f.exists("/mlp/w1")) {
    const std::vector<int64_t> s = f.shape("/mlp/w1");
    if (s.size() != 2 || s[1] != t.d) throw InputError(name, "/mlp/w1", "must be [H, d]");
    t.hidden = s[0];
    t.w1 = f.read_f32("/mlp/w1"), t.b1 = f.read_f32("/mlp/b1"), t.w2 = f.read_f32("/mlp/w2"), t.b2 = f.read_f32("/mlp/b2");
    if (static_cast<int64_t>(t.b1.size()) != t.hidden || static_cast<int64_t>(t.w2.size()) != t.c * t.hidden || static_cast<int64_t>(t.b2.size()) != t.c)
      throw InputError(name, "/mlp", "shapes disagree with [H, d] and C");
  }
  t.curve_step = f.read_i64("/curves/step"), t.curve_phase = f.read_i64("/curves/phase");
  t.curve_epoch = f.read_f64("/curves/epoch"), t.curve_train = f.read_f64("/curves/train"), t.curve_holdout = f.read_f64("/curves/holdout");
  verify_committed(file, "basevec task");
  return t;
}

}  // namespace ts::artifacts
