#include "artifacts/sentences.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace ts::artifacts {
namespace fs = std::filesystem;

namespace {

std::string layer_group(int64_t layer) { return "/layer_" + std::to_string(layer); }

// The per-sentence numeric columns with their descriptions.
std::vector<h5::DatasetSpec> index_datasets(int64_t n) {
  using h5::DType;
  const std::string text = "code points of the trace's generated text (generations.jsonl `text`)";
  const std::string tokens = "tokens of prompt + generated; the raw vector averages [token_begin - 1, token_end)";
  return {
      {"/sentences/trace", DType::I64, {n}, {"sentence"}, {{"description", "row of the trace in the generations file"}}},
      {"/sentences/char_begin", DType::I64, {n}, {"sentence"}, {{"units", text}}},
      {"/sentences/char_end", DType::I64, {n}, {"sentence"}, {{"units", text}, {"description", "exclusive"}}},
      {"/sentences/token_begin", DType::I64, {n}, {"sentence"}, {{"description", "the token holding the first character; " + tokens}}},
      {"/sentences/token_end", DType::I64, {n}, {"sentence"}, {{"description", "the token holding the character after the sentence; " + tokens}}},
  };
}

std::string shape_text(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

}  // namespace

std::string sentence_vectors_path(int64_t layer) { return layer_group(layer) + "/vectors"; }
std::string sentence_norm_path(int64_t layer) { return layer_group(layer) + "/norm"; }
std::string sentence_mean_path(int64_t layer) { return layer_group(layer) + "/mean"; }

std::vector<h5::DatasetSpec> sentences_layer_datasets(const SentencesMeta& m) {
  using h5::DType;
  std::vector<h5::DatasetSpec> out;
  for (int64_t l : m.layers) {
    const std::string layer = std::to_string(l);
    out.push_back({sentence_vectors_path(l), DType::F32, {m.n_sentences, m.d_model}, {"sentence", "d_model"},
                   {{"layer", layer}, {"description", "(raw - mean) / |raw - mean|: centred, unit rows (docs/algorithms.md §B.3)"}}});
    out.push_back({sentence_norm_path(l), DType::F32, {m.n_sentences}, {"sentence"},
                   {{"layer", layer}, {"description", "|raw - mean|: raw = mean + norm * vectors"}}});
    out.push_back({sentence_mean_path(l), DType::F32, {m.d_model}, {"d_model"},
                   {{"layer", layer}, {"description", "mean over traces of each trace's overall mean over [min token_begin, max token_end)"}}});
  }
  return out;
}

std::vector<h5::DatasetSpec> sentences_datasets(const SentencesMeta& m) {
  std::vector<h5::DatasetSpec> out = sentences_layer_datasets(m);
  for (h5::DatasetSpec& s : index_datasets(m.n_sentences)) out.push_back(std::move(s));
  return out;
}

void write_sentences_index(h5::SerialFile& f, const SentencesMeta& m, const SentenceIndex& index) {
  const std::vector<const std::vector<int64_t>*> columns = {&index.trace, &index.char_begin, &index.char_end, &index.token_begin, &index.token_end};
  const std::vector<h5::DatasetSpec> specs = index_datasets(index.size());
  for (size_t k = 0; k < specs.size(); ++k) f.write_dataset(specs[k], columns[k]->data());
  f.write_strings("/sentences/trace_id", index.trace_id, "sentence");
  f.write_strings("/sentences/text", index.text, "sentence");
  if (!index.label.empty()) f.write_strings("/sentences/label", index.label, "sentence");
  f.set_attr("/", "hook", m.hook);
  f.set_attr("/", "position", m.position);
  f.set_attr_ints("/", "layers", m.layers);
  f.set_attr("/", "d_model", m.d_model);
  f.set_attr("/", "n_sentences", m.n_sentences);
  f.set_attr("/", "n_traces", m.n_traces);
  f.set_attr("/", "n_mean_traces", m.n_mean_traces);
  f.set_attr("/", "model_path", m.model_path);
}

SentencesMeta read_sentences_meta(const fs::path& path, const std::string& key) {
  const auto opened = open_checked(path, SENTENCES, key);
  const h5::SerialFile& f = *opened;
  const std::string file = path.string();
  SentencesMeta m;
  m.hook = f.attr_string("/", "hook");
  m.position = f.attr_string("/", "position");
  m.layers = f.attr_ints("/", "layers");
  m.d_model = f.attr_int("/", "d_model");
  m.n_sentences = f.attr_int("/", "n_sentences");
  m.n_traces = f.attr_int("/", "n_traces");
  m.model_path = f.attr_string("/", "model_path");
  require(!m.layers.empty() && std::is_sorted(m.layers.begin(), m.layers.end()) &&
              std::adjacent_find(m.layers.begin(), m.layers.end()) == m.layers.end() && m.layers.front() >= 0,
          file, "layers", "must list distinct layers >= 0 in ascending order");
  require(m.d_model > 0, file, "d_model", "must be positive");
  require(m.position == "mean" || m.position == "last_token", file, "position", "must be mean or last_token, got '" + m.position + "'");
  require(m.n_sentences >= 0 && m.n_traces >= 0, file, "n_sentences", "counts must not be negative");
  for (int64_t l : m.layers) {
    require_shape(f, file, sentence_vectors_path(l), {m.n_sentences, m.d_model}, SENTENCES);
    require_shape(f, file, sentence_norm_path(l), {m.n_sentences}, SENTENCES);
    require_shape(f, file, sentence_mean_path(l), {m.d_model}, SENTENCES);
  }
  for (const h5::DatasetSpec& s : index_datasets(m.n_sentences)) require_shape(f, file, s.path, s.shape, SENTENCES);
  for (const char* strings : {"/sentences/trace_id", "/sentences/text"}) require_shape(f, file, strings, {m.n_sentences}, SENTENCES);
  if (f.exists("/sentences/label")) {
    m.labels = f.read_strings("/sentences/label");
    require(static_cast<int64_t>(m.labels.size()) == m.n_sentences, file, "/sentences/label", "does not hold one label per sentence");
  }
  verify_committed(path, key);
  return m;
}

std::vector<std::string> read_sentence_texts(const fs::path& path) {
  return open_checked(path, SENTENCES, "sentences file")->read_strings("/sentences/text");
}

SentenceIndex read_sentence_index(const fs::path& path) {
  const auto f = open_checked(path, SENTENCES, "sentences file");
  SentenceIndex x;
  x.trace = f->read_i64("/sentences/trace");
  x.char_begin = f->read_i64("/sentences/char_begin");
  x.char_end = f->read_i64("/sentences/char_end");
  x.token_begin = f->read_i64("/sentences/token_begin");
  x.token_end = f->read_i64("/sentences/token_end");
  x.trace_id = f->read_strings("/sentences/trace_id");
  x.text = f->read_strings("/sentences/text");
  if (f->exists("/sentences/label")) x.label = f->read_strings("/sentences/label");
  return x;
}

std::vector<float> read_sentence_norms(const fs::path& path, int64_t layer) {
  const auto f = open_checked(path, SENTENCES, "sentences file");
  require(f->exists(sentence_norm_path(layer)), path.string(), sentence_norm_path(layer), "no such layer in the file");
  return f->read_f32(sentence_norm_path(layer));
}

std::vector<float> read_sentence_mean(const fs::path& path, int64_t layer) {
  const auto f = open_checked(path, SENTENCES, "sentences file");
  require(f->exists(sentence_mean_path(layer)), path.string(), sentence_mean_path(layer), "no such layer in the file");
  return f->read_f32(sentence_mean_path(layer));
}

SentenceRowReader::SentenceRowReader(const fs::path& path, int64_t layer)
    : path_(path), dataset_(sentence_vectors_path(layer)), file_(open_checked(path, SENTENCES, "sentences file")) {
  require(file_->exists(dataset_), path.string(), dataset_, "no such layer in the file (its layers are the root attribute `layers`)");
  const std::vector<int64_t> shape = file_->shape(dataset_);
  require(shape.size() == 2, path.string(), dataset_, "has shape " + shape_text(shape) + ", expected [n_sentences, d_model]");
  rows_ = shape[0];
}

std::vector<float> SentenceRowReader::read(int64_t begin, int64_t count) const {
  require(begin >= 0 && count >= 0 && begin + count <= rows_, path_.string(), dataset_,
          "rows [" + std::to_string(begin) + ", " + std::to_string(begin + count) + ") are not among its " + std::to_string(rows_) + " rows");
  std::vector<float> v = file_->read_f32_rows(dataset_, begin, count);
  const auto bad = std::find_if(v.begin(), v.end(), [](float x) { return !std::isfinite(x); });
  if (bad != v.end()) {
    const int64_t row = begin + static_cast<int64_t>(bad - v.begin()) / std::max<int64_t>(1, static_cast<int64_t>(v.size()) / std::max<int64_t>(count, 1));
    throw InputError(path_.string(), dataset_, "row " + std::to_string(row) + " holds NaN or Inf (a sentence vector must be finite: rewrite the file with `thinksteer sentences`)");
  }
  return v;
}

std::vector<float> read_sentence_rows(const fs::path& path, int64_t layer, int64_t begin, int64_t count) {
  return SentenceRowReader(path, layer).read(begin, count);
}

}  // namespace ts::artifacts
