#include "artifacts/hybrid_task.h"

#include <cmath>

#include "core/error.h"

namespace ts::artifacts {
namespace fs = std::filesystem;

std::vector<h5::DatasetSpec> hybrid_task_datasets(const HybridTask& t) {
  using h5::DType;
  const int64_t P = t.prompts(), N = static_cast<int64_t>(t.token_id.size());
  return {
      {"/prompts/correct", DType::I64, {P}, {"prompt"}, {{"description", "1 right, 0 wrong, -1 no reference answer"}}},
      {"/prompts/closed", DType::I64, {P}, {"prompt"}, {{"description", "the thinking part ended"}}},
      {"/prompts/new_tokens", DType::I64, {P}, {"prompt"}, {}},
      {"/prompts/think_tokens", DType::I64, {P}, {"prompt"}, {}},
      {"/prompts/steered", DType::I64, {P}, {"prompt"}, {{"description", "steered steps"}}},
      {"/prompts/disagree", DType::I64, {P}, {"prompt"}, {{"description", "thinking-part steps where the base's token is not the thinking model's"}}},
      {"/prompts/hits", DType::I64, {P}, {"prompt"}, {{"description", "steered steps that emitted the thinking model's token"}}},
      {"/prompts/category_counts", DType::I64, {P, t.categories}, {"prompt", "category"}, {{"description", "steered steps per category"}}},
      {"/tokens/offsets", DType::I64, {P + 1}, {"prompt_edge"}, {}},
      {"/tokens/id", DType::I32, {N}, {"token"}, {}},
      {"/tokens/kind", DType::I32, {N}, {"token"}, {{"description", "0 agree, 1 steered, 2 skipped disagreement, 3 forced, 4 answer/unsteered model, 5 randpos unsteered"}}},
      {"/tokens/category", DType::I32, {N}, {"token"}, {}},
      {"/tokens/coef", DType::F32, {N}, {"token"}, {}},
      {"/tokens/base", DType::I32, {N}, {"token"}, {{"description", "the base model's unsteered greedy token (-1: not computed)"}}},
      {"/tokens/thinking", DType::I32, {N}, {"token"}, {{"description", "the thinking model's greedy token (-1: not computed)"}}},
  };
}

void write_hybrid_task(const fs::path& file, const HybridTask& t, const json& provenance) {
  const auto specs = hybrid_task_datasets(t);
  const std::vector<const void*> data = {t.correct.data(),       t.closed.data(),         t.new_tokens.data(), t.think_tokens.data(),
                                         t.steered.data(),       t.disagree.data(),       t.hits.data(),       t.category_counts.data(),
                                         t.token_offsets.data(), t.token_id.data(),       t.token_kind.data(), t.token_category.data(),
                                         t.token_coef.data(),    t.token_base.data(),     t.token_thinking.data()};
  h5::SerialFile f(file, h5::SerialFile::Mode::CREATE);
  for (size_t i = 0; i < specs.size(); ++i) f.write_dataset(specs[i], data[i]);
  f.write_strings("/prompts/id", t.ids, "prompt");
  f.write_strings("/prompts/answer", t.answers, "prompt");
  f.write_strings("/prompts/reference", t.references, "prompt");
  f.write_strings("/prompts/text", t.texts, "prompt");
  write_h5_identity(f, provenance, HYBRID_TASK);
  f.set_attr("/", "task", t.task);
  f.set_attr("/", "key", t.key);
  f.set_attr("/", "point", t.point);
  f.set_attr("/", "role", t.role);
  f.set_attr("/", "rule", t.rule);
  f.set_attr("/", "ablation", t.ablation);
  f.set_attr("/", "dataset", t.dataset);
  f.set_attr("/", "layer", t.layer);
  f.set_attr("/", "seed", t.seed);
  f.set_attr("/", "randpos_fraction", std::to_string(t.randpos_fraction));
  f.set_attr("/", "categories", t.categories);
  f.set_attr("/", "vectors_file", t.vectors_file);
  f.set_attr("/", "vectors_hash", t.vectors_hash);
  f.set_attr("/", "metrics", t.metrics.dump());
}

HybridTask read_hybrid_task(const fs::path& file) {
  const auto opened = open_checked(file, HYBRID_TASK, "hybrid task");
  const h5::SerialFile& f = *opened;
  const std::string name = file.string();
  HybridTask t;
  t.task = f.attr_int("/", "task"), t.key = f.attr_string("/", "key"), t.point = f.attr_string("/", "point");
  t.role = f.attr_string("/", "role"), t.rule = f.attr_string("/", "rule"), t.ablation = f.attr_string("/", "ablation");
  t.dataset = f.attr_string("/", "dataset"), t.layer = f.attr_int("/", "layer"), t.seed = f.attr_int("/", "seed");
  t.randpos_fraction = std::stod(f.attr_string("/", "randpos_fraction"));
  t.categories = f.attr_int("/", "categories");
  t.vectors_file = f.attr_string("/", "vectors_file"), t.vectors_hash = f.attr_string("/", "vectors_hash");
  t.config_sha256 = f.attr_string("/", "config_sha256");
  t.metrics = json_parse_strict(f.attr_string("/", "metrics"), name + " (attribute metrics)");
  t.ids = f.read_strings("/prompts/id"), t.answers = f.read_strings("/prompts/answer");
  t.references = f.read_strings("/prompts/reference"), t.texts = f.read_strings("/prompts/text");
  t.correct = f.read_i64("/prompts/correct"), t.closed = f.read_i64("/prompts/closed");
  t.new_tokens = f.read_i64("/prompts/new_tokens"), t.think_tokens = f.read_i64("/prompts/think_tokens");
  t.steered = f.read_i64("/prompts/steered"), t.disagree = f.read_i64("/prompts/disagree"), t.hits = f.read_i64("/prompts/hits");
  t.category_counts = f.read_i64("/prompts/category_counts");
  t.token_offsets = f.read_i64("/tokens/offsets");
  auto i32 = [&](const char* path) {
    const std::vector<int64_t> v = f.read_i64(path);
    return std::vector<int32_t>(v.begin(), v.end());
  };
  t.token_id = i32("/tokens/id"), t.token_kind = i32("/tokens/kind"), t.token_category = i32("/tokens/category");
  t.token_base = i32("/tokens/base"), t.token_thinking = i32("/tokens/thinking");
  t.token_coef = f.read_f32("/tokens/coef");
  const size_t P = t.ids.size(), N = t.token_id.size();
  for (const auto* v : {&t.correct, &t.closed, &t.new_tokens, &t.think_tokens, &t.steered, &t.disagree, &t.hits})
    if (v->size() != P) throw InputError(name, "/prompts", "per-prompt datasets differ in length from /prompts/id");
  if (t.answers.size() != P || t.references.size() != P || t.texts.size() != P) throw InputError(name, "/prompts", "string datasets differ in length");
  if (t.categories < 0 || t.category_counts.size() != P * static_cast<size_t>(t.categories)) throw InputError(name, "/prompts/category_counts", "must be [P, C]");
  if (t.token_offsets.size() != P + 1 || t.token_offsets.front() != 0 || t.token_offsets.back() != static_cast<int64_t>(N))
    throw InputError(name, "/tokens/offsets", "must be P + 1 offsets from 0 to the number of tokens");
  for (size_t p = 0; p < P; ++p)
    if (t.token_offsets[p + 1] < t.token_offsets[p]) throw InputError(name, "/tokens/offsets", "must not decrease");
  for (const auto* v : {&t.token_kind, &t.token_category, &t.token_base, &t.token_thinking})
    if (v->size() != N) throw InputError(name, "/tokens", "per-token datasets differ in length");
  if (t.token_coef.size() != N) throw InputError(name, "/tokens/coef", "length differs from /tokens/id");
  for (int64_t c : t.correct)
    if (c < -1 || c > 1) throw InputError(name, "/prompts/correct", "holds a value other than -1, 0, 1");
  verify_committed(file, "hybrid task");
  return t;
}

}  // namespace ts::artifacts
