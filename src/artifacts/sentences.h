// Artifact `sentences` (docs/run-layout.md): the sentence activations of docs/algorithms.md §B.3 that
// `thinksteer sentences` writes and the taxonomy (§B.4) clusters, <run.dir>/sentences/sentences.h5
// (format thinksteer.sentences). N sentences, one row each: the traces in the order of the
// generations file, each trace's sentences in text order (the same file for any rank layout).
//   /layer_<l>/vectors [N, d] float32  (raw - mean) / |raw - mean|: every row centred and of unit norm
//                                      (a zero row where raw == mean)
//   /layer_<l>/norm    [N] float32     |raw - mean|, so raw = mean + norm * vectors
//   /layer_<l>/mean    [d] float32     mean: the mean over traces of each trace's overall mean
//   /sentences/trace [N] int64         row of the trace in the generations file
//   /sentences/trace_id [N] str        its id
//   /sentences/text [N] str            the sentence (UTF-8)
//   /sentences/char_begin, char_end [N] int64    [begin, end) in code points of the trace's generated
//                                      text: the `text` field of generations.jsonl (= decode(token_ids),
//                                      special tokens kept), the text the thinking part is cut from
//   /sentences/token_begin, token_end [N] int64  §B.3 tokens of the sequence the model saw (prompt
//                                      tokens, then generated tokens): the token holding the first
//                                      character, the token holding the character after the sentence;
//                                      the raw vector is the mean over [token_begin - 1, token_end)
//   /sentences/label [N] str           only with a reference annotation: the label of the span that
//                                      covers the sentence, "" where none does
// Root attributes: hook (blocks.{l}.hook_X), position (sentences.position: "mean", raw as above, or
// "last_token", raw = the activation at token_end - 1 alone, §B.7's classifier input; `mean` is the
// mean of the traces' overall means either way), layers (int64 list, ascending), d_model, n_sentences,
// n_traces (rows of the generations file), n_mean_traces (traces with a sentence: the mean's count),
// model_path, and the identity and provenance of artifacts/artifact.h.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "artifacts/artifact.h"
#include "io/h5store.h"

namespace ts::artifacts {

inline constexpr Format SENTENCES{"thinksteer.sentences", 1, "sentences"};
inline constexpr Location SENTENCES_H5{"sentences", "sentences.h5"};

// What the root attributes say, and the reference labels when the file holds them.
struct SentencesMeta {
  std::string hook;                 // "blocks.{l}.hook_resid_post"
  std::string position = "mean";    // mean (§B.3 window mean) | last_token (at token_end - 1, §B.7)
  std::vector<int64_t> layers;      // ascending
  int64_t d_model = 0, n_sentences = 0, n_traces = 0, n_mean_traces = 0;
  std::string model_path;
  std::vector<std::string> labels;  // per sentence ("" none); empty when the file has no /sentences/label
};

// The per-sentence table, shared by the layers.
struct SentenceIndex {
  std::vector<int64_t> trace, char_begin, char_end, token_begin, token_end;
  std::vector<std::string> trace_id, text, label;  // label: empty without a reference annotation
  int64_t size() const { return static_cast<int64_t>(trace.size()); }
};

std::string sentence_vectors_path(int64_t layer);  // "/layer_<l>/vectors"
std::string sentence_norm_path(int64_t layer);     // "/layer_<l>/norm"
std::string sentence_mean_path(int64_t layer);     // "/layer_<l>/mean"

// The datasets the ranks write collectively: per layer vectors, norm and mean.
std::vector<h5::DatasetSpec> sentences_layer_datasets(const SentencesMeta& m);
// Every numeric dataset of the file (what the commit checks): the layer datasets and /sentences/*.
std::vector<h5::DatasetSpec> sentences_datasets(const SentencesMeta& m);

// Phase 2 (rank 0, serial): /sentences/* and the root attributes of `m` (the identity and provenance
// are write_h5_identity's).
void write_sentences_index(h5::SerialFile& f, const SentencesMeta& m, const SentenceIndex& index);

// The root attributes and the labels of a sentences file, every dataset checked for its shape
// (InputError naming the file and the attribute or dataset). `key` is the config key that points at it.
SentencesMeta read_sentences_meta(const std::filesystem::path& file, const std::string& key);
// The sentence texts and one layer's mean μ, from a file read_sentences_meta has checked.
std::vector<std::string> read_sentence_texts(const std::filesystem::path& file);
SentenceIndex read_sentence_index(const std::filesystem::path& file);  // /sentences/* (label when present)
std::vector<float> read_sentence_norms(const std::filesystem::path& file, int64_t layer);
std::vector<float> read_sentence_mean(const std::filesystem::path& file, int64_t layer);
// One layer's unit vectors, read by blocks of rows from a file kept open (the taxonomy's SAE streams
// them when they do not fit in memory). InputError when the layer or the rows are not in the file.
class SentenceRowReader {
 public:
  SentenceRowReader(const std::filesystem::path& file, int64_t layer);
  // Rows [begin, begin + count), [count, d] float32 row-major. InputError naming the row when one holds
  // NaN or Inf (zero rows, sentences equal to the mean, are valid).
  std::vector<float> read(int64_t begin, int64_t count) const;

 private:
  std::filesystem::path path_;
  std::string dataset_;
  int64_t rows_ = 0;
  std::shared_ptr<const h5::SerialFile> file_;
};
// The same for one block, opening the file for it.
std::vector<float> read_sentence_rows(const std::filesystem::path& file, int64_t layer, int64_t begin, int64_t count);

}  // namespace ts::artifacts
