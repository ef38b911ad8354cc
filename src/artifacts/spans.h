// Artifact `spans` (docs/run-layout.md): the behaviour spans `annotate` writes,
// <run.dir>/annotate/spans.h5 (format thinksteer.spans) with spans.jsonl and problems.jsonl beside it.
// /labels [K] str; /spans/{trace, label, char_begin, char_end[, token_begin, token_end]} [S];
// /traces/{id, span_offset, n_spans, part_begin, part_end, n_sentences, n_problems[, n_tokens,
// n_prompt_tokens]} [T]; root attributes annotator, annotator_identity, part, text_field, input,
// token_sequence (generation | text | none), char_units, and the artifact identity.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "artifacts/artifact.h"
#include "artifacts/generations.h"
#include "core/json.h"
#include "io/h5store.h"

namespace ts::artifacts {

inline constexpr Format SPANS{"thinksteer.spans", 1, "annotate"};
inline constexpr Location SPANS_H5{"annotate", "spans.h5"};

// The numeric datasets of a spans file with `n_spans` span rows and `n_traces` traces; the token
// columns only when the spans carry token ranges.
std::vector<h5::DatasetSpec> spans_datasets(int64_t n_spans, int64_t n_traces, bool tokens);

// A spans file with token ranges into the generation sequence, as read and checked for shape and range.
struct Spans {
  std::string file;
  std::vector<std::string> labels, trace_ids;
  std::vector<int64_t> trace, label, token_begin, token_end;            // per span row
  std::vector<int64_t> char_begin, char_end;                            // per span row: code points of the text_field text
  std::string text_field;                                               // the input's field the code points index
  std::vector<int64_t> span_offset, n_spans, n_tokens, n_prompt_tokens;  // per trace
  json provenance;
};
// `key` is the config key that points at the file (for messages). The caller verifies the file against
// its marker (verify_committed) after check_same_generations, so a mismatch is named by its dataset.
Spans read_spans(const std::filesystem::path& path, const std::string& key);

// The spans must index these very generations, tokenized by the tokenizer with SHA-256 `tok_sha`;
// `section` names the config keys in messages ("vectors", "attribute": <section>.generations and
// `spans_key`, by default <section>.spans).
void check_same_generations(const Spans& s, const std::vector<Generation>& gens, const std::filesystem::path& gen_file,
                            const std::string& gen_sha, const std::string& tok_sha, const std::string& section, const std::string& spans_key = "");

}  // namespace ts::artifacts
