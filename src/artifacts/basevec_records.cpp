#include "artifacts/basevec_records.h"

#include <cmath>

#include "core/error.h"

namespace ts::artifacts {
namespace fs = std::filesystem;

std::vector<h5::DatasetSpec> basevec_records_datasets(int64_t e, int64_t n, int64_t r, int64_t k, int64_t s) {
  using h5::DType;
  return {
      {"/examples/split", DType::I64, {e}, {"example"}, {{"description", "0 train, 1 holdout (epoch choice), 2 selection (seed choice)"}}},
      {"/examples/token_offset", DType::I64, {e + 1}, {"example_edge"}, {{"description", "first row of each example in /tokens; last: the total"}}},
      {"/examples/base_first", DType::I64, {e}, {"example"}, {{"description", "base token at the alignment anchor"}}},
      {"/examples/think_first", DType::I64, {e}, {"example"}, {{"description", "thinking-model token at the alignment anchor"}}},
      {"/tokens", DType::I32, {n}, {"token"}, {{"description", "base sequence of each example (base prompt + thinking text)"}}},
      {"/corrections/example", DType::I64, {r}, {"correction"}, {}},
      {"/corrections/position", DType::I64, {r}, {"correction"}, {{"description", "base position p whose next token the base gets wrong"}}},
      {"/corrections/category", DType::I64, {r}, {"correction"}, {{"description", "SAE class of the thinking model at the aligned position"}}},
      {"/corrections/target", DType::I64, {r}, {"correction"}, {{"description", "the rollout's next token (tokens[p + 1])"}}},
      {"/corrections/base_top", DType::I64, {r}, {"correction"}, {{"description", "the base model's argmax at p"}}},
      {"/corrections/label", DType::I64, {r}, {"correction"}, {{"description", "reference label of the rollout's next token (attribute labels), -1 none"}}},
      {"/corrections/topk_ids", DType::I32, {r, k}, {"correction", "topk"}, {{"description", "the thinking model's top-K token ids at the aligned position"}}},
      {"/corrections/topk_logp", DType::F32, {r, k}, {"correction", "topk"}, {{"description", "their log-probabilities"}}},
      {"/sentences/example", DType::I64, {s}, {"sentence"}, {}},
      {"/sentences/begin", DType::I64, {s}, {"sentence"}, {{"description", "first base token of the sentence"}}},
      {"/sentences/end", DType::I64, {s}, {"sentence"}, {{"description", "one past its last base token"}}},
      {"/sentences/category", DType::I64, {s}, {"sentence"}, {{"description", "SAE class at its last token; -1: the whole thinking text (bias)"}}},
  };
}

void write_basevec_records(const fs::path& file, const BasevecRecords& r, const json& provenance) {
  const auto specs = basevec_records_datasets(r.n_examples(), static_cast<int64_t>(r.tokens.size()), r.n_corrections(), r.k, r.n_sentences());
  const std::vector<const void*> data = {r.split.data(),      r.token_offset.data(), r.base_first.data(), r.think_first.data(), r.tokens.data(),
                                         r.c_example.data(),  r.c_position.data(),   r.c_category.data(), r.c_target.data(),    r.c_base_top.data(),
                                         r.c_label.data(),    r.topk_ids.data(),   r.topk_logp.data(),    r.s_example.data(),  r.s_begin.data(),     r.s_end.data(),
                                         r.s_category.data()};
  h5::SerialFile f(file, h5::SerialFile::Mode::CREATE);
  for (size_t i = 0; i < specs.size(); ++i) f.write_dataset(specs[i], data[i]);
  f.write_strings("/examples/id", r.id, "example");
  write_h5_identity(f, provenance, BASEVEC_RECORDS);
  f.set_attr("/", "n_categories", r.n_categories);
  f.set_attr("/", "cache_topk", r.k);
  f.set_attr("/", "sae_dir", r.sae_dir);
  f.set_attr("/", "sae_key", r.sae_key);
  f.set_attr("/", "sae_layer", r.sae_layer);
  f.set_attr("/", "thinking_model", r.thinking_model);
  f.set_attr("/", "base_model", r.base_model);
  f.set_attr("/", "base_prompt", r.base_prompt);
  f.set_attr("/", "stats", r.stats.dump());
  f.set_attr("/", "labels", json(r.labels).dump());
}

namespace {

std::vector<int32_t> narrow32(const std::vector<int64_t>& v) { return {v.begin(), v.end()}; }

void need(bool ok, const std::string& file, const std::string& field, const std::string& what) {
  if (!ok) throw InputError(file, field, what);
}

}  // namespace

BasevecRecords read_basevec_records(const fs::path& file, const std::string& key) {
  const auto opened = open_checked(file, BASEVEC_RECORDS, key);
  const h5::SerialFile& f = *opened;
  const std::string name = file.string();
  BasevecRecords r;
  r.n_categories = f.attr_int("/", "n_categories");
  r.k = f.attr_int("/", "cache_topk");
  r.sae_dir = f.attr_string("/", "sae_dir"), r.sae_key = f.attr_string("/", "sae_key");
  r.sae_layer = f.attr_int("/", "sae_layer");
  r.thinking_model = f.attr_string("/", "thinking_model"), r.base_model = f.attr_string("/", "base_model");
  r.base_prompt = f.attr_string("/", "base_prompt");
  r.stats = json_parse_strict(f.attr_string("/", "stats"), name + " (attribute stats)");
  r.id = f.read_strings("/examples/id");
  r.split = f.read_i64("/examples/split"), r.token_offset = f.read_i64("/examples/token_offset");
  r.base_first = f.read_i64("/examples/base_first"), r.think_first = f.read_i64("/examples/think_first");
  r.tokens = narrow32(f.read_i64("/tokens"));
  r.c_example = f.read_i64("/corrections/example"), r.c_position = f.read_i64("/corrections/position");
  r.c_category = f.read_i64("/corrections/category"), r.c_target = f.read_i64("/corrections/target");
  r.c_base_top = f.read_i64("/corrections/base_top");
  r.c_label = f.read_i64("/corrections/label");
  const json labels = json_parse_strict(f.attr_string("/", "labels"), name + " (attribute labels)");
  if (!labels.is_array()) throw InputError(name, "labels", "is not a JSON list");
  for (const json& l : labels) {
    if (!l.is_string()) throw InputError(name, "labels", "holds a value that is not a string");
    r.labels.push_back(l.get<std::string>());
  }
  r.topk_ids = narrow32(f.read_i64("/corrections/topk_ids"));
  r.topk_logp = f.read_f32("/corrections/topk_logp");
  r.s_example = f.read_i64("/sentences/example"), r.s_begin = f.read_i64("/sentences/begin");
  r.s_end = f.read_i64("/sentences/end"), r.s_category = f.read_i64("/sentences/category");
  const int64_t e = r.n_examples(), rr = r.n_corrections(), s = r.n_sentences();
  need(r.n_categories >= 1, name, "n_categories", "must be >= 1");
  need(r.k >= 1, name, "cache_topk", "must be >= 1");
  for (const auto* v : {&r.split, &r.base_first, &r.think_first})
    need(static_cast<int64_t>(v->size()) == e, name, "/examples", "datasets disagree with /examples/id in length");
  need(static_cast<int64_t>(r.token_offset.size()) == e + 1 && r.token_offset.front() == 0 &&
           r.token_offset.back() == static_cast<int64_t>(r.tokens.size()),
       name, "/examples/token_offset", "must have E + 1 entries from 0 to the length of /tokens");
  for (int64_t i = 0; i < e; ++i) {
    const auto u = static_cast<size_t>(i);
    need(r.token_offset[u + 1] > r.token_offset[u], name, "/examples/token_offset", "example " + std::to_string(i) + " has no tokens");
    need(r.split[u] >= 0 && r.split[u] <= 2, name, "/examples/split", "row " + std::to_string(i) + " is not 0, 1 or 2");
    need(r.base_first[u] >= 1 && r.base_first[u] < r.token_offset[u + 1] - r.token_offset[u], name, "/examples/base_first",
         "row " + std::to_string(i) + " is outside its example");
  }
  for (const auto* v : {&r.c_position, &r.c_category, &r.c_target, &r.c_base_top, &r.c_label})
    need(static_cast<int64_t>(v->size()) == rr, name, "/corrections", "datasets disagree in length");
  need(static_cast<int64_t>(r.topk_ids.size()) == rr * r.k && static_cast<int64_t>(r.topk_logp.size()) == rr * r.k, name, "/corrections/topk_ids",
       "must be [R, cache_topk]");
  for (int64_t i = 0; i < rr; ++i) {
    const auto u = static_cast<size_t>(i);
    const int64_t ex = r.c_example[u];
    need(ex >= 0 && ex < e, name, "/corrections/example", "row " + std::to_string(i) + " names no example");
    const int64_t len = r.token_offset[static_cast<size_t>(ex) + 1] - r.token_offset[static_cast<size_t>(ex)];
    need(r.c_position[u] >= 0 && r.c_position[u] + 1 < len, name, "/corrections/position", "row " + std::to_string(i) + " is outside its example");
    need(r.c_category[u] >= 0 && r.c_category[u] < r.n_categories, name, "/corrections/category", "row " + std::to_string(i) + " is outside [0, n_categories)");
    need(r.c_label[u] >= -1 && r.c_label[u] < static_cast<int64_t>(r.labels.size()), name, "/corrections/label", "row " + std::to_string(i) + " names no label");
    need(r.c_target[u] == r.tokens[static_cast<size_t>(r.token_offset[static_cast<size_t>(ex)] + r.c_position[u] + 1)], name, "/corrections/target",
         "row " + std::to_string(i) + " is not the next token of its example");
  }
  for (float v : r.topk_logp) need(std::isfinite(v) && v <= 1e-4f, name, "/corrections/topk_logp", "holds a value that is not a finite log-probability");
  for (const auto* v : {&r.s_begin, &r.s_end, &r.s_category}) need(static_cast<int64_t>(v->size()) == s, name, "/sentences", "datasets disagree in length");
  for (int64_t i = 0; i < s; ++i) {
    const auto u = static_cast<size_t>(i);
    const int64_t ex = r.s_example[u];
    need(ex >= 0 && ex < e, name, "/sentences/example", "row " + std::to_string(i) + " names no example");
    const int64_t len = r.token_offset[static_cast<size_t>(ex) + 1] - r.token_offset[static_cast<size_t>(ex)];
    need(r.s_begin[u] >= 1 && r.s_begin[u] < r.s_end[u] && r.s_end[u] <= len, name, "/sentences/begin", "row " + std::to_string(i) + " is not a token range of its example after its first token");
    need(r.s_category[u] >= -1 && r.s_category[u] < r.n_categories, name, "/sentences/category", "row " + std::to_string(i) + " is outside [-1, n_categories)");
  }
  verify_committed(file, key);
  return r;
}

}  // namespace ts::artifacts
