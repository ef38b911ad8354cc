#include "artifacts/spans.h"

#include <map>

#include "core/error.h"

namespace ts::artifacts {
namespace fs = std::filesystem;

std::vector<h5::DatasetSpec> spans_datasets(int64_t n_spans, int64_t n_traces, bool tokens) {
  using h5::DType;
  const std::map<std::string, std::string> cps = {{"units", "code points of the trace text"}};
  std::vector<h5::DatasetSpec> s = {
      {"/spans/trace", DType::I64, {n_spans}, {"span"}, {{"description", "row in /traces"}}},
      {"/spans/label", DType::I32, {n_spans}, {"span"}, {{"description", "index into /labels"}}},
      {"/spans/char_begin", DType::I64, {n_spans}, {"span"}, cps},
      {"/spans/char_end", DType::I64, {n_spans}, {"span"}, {{"units", "code points of the trace text"}, {"description", "exclusive"}}},
      {"/traces/span_offset", DType::I64, {n_traces}, {"trace"}, {{"description", "first row of the trace in /spans"}}},
      {"/traces/n_spans", DType::I64, {n_traces}, {"trace"}, {}},
      {"/traces/part_begin", DType::I64, {n_traces}, {"trace"}, {{"units", "code points of the trace text"}, {"description", "annotated part"}}},
      {"/traces/part_end", DType::I64, {n_traces}, {"trace"}, {{"units", "code points of the trace text"}, {"description", "annotated part, exclusive"}}},
      {"/traces/n_sentences", DType::I64, {n_traces}, {"trace"}, {{"description", "sentences the annotator considered"}}},
      {"/traces/n_problems", DType::I64, {n_traces}, {"trace"}, {{"description", "lines of the trace in problems.jsonl"}}},
  };
  if (tokens) {
    const std::string rule = "[first token overlapping the span, one past the last); -1 when none";
    s.push_back({"/spans/token_begin", DType::I64, {n_spans}, {"span"}, {{"description", rule}}});
    s.push_back({"/spans/token_end", DType::I64, {n_spans}, {"span"}, {{"description", rule}}});
    s.push_back({"/traces/n_tokens", DType::I64, {n_traces}, {"trace"}, {{"description", "tokens of the trace's sequence"}}});
    s.push_back({"/traces/n_prompt_tokens", DType::I64, {n_traces}, {"trace"}, {{"description", "tokens before the trace text (generation source)"}}});
  }
  return s;
}

namespace {

void require_size(const Spans& s, const std::string& dataset, size_t got, size_t want, const std::string& what) {
  if (got != want) throw InputError(s.file, dataset, "holds " + std::to_string(got) + " rows, but " + what + " has " + std::to_string(want));
}

// Shapes agree, indices are in range, each trace's rows are where /traces says.
void check_span_rows(const Spans& s) {
  const size_t n = s.trace.size(), t = s.trace_ids.size();
  using Column = std::pair<const char*, const std::vector<int64_t>*>;
  for (const auto& [name, v] : {Column{"/spans/label", &s.label}, Column{"/spans/token_begin", &s.token_begin}, Column{"/spans/token_end", &s.token_end},
                                Column{"/spans/char_begin", &s.char_begin}, Column{"/spans/char_end", &s.char_end}})
    require_size(s, name, v->size(), n, "/spans/trace");
  for (const auto& [name, v] : {Column{"/traces/span_offset", &s.span_offset}, Column{"/traces/n_spans", &s.n_spans},
                                Column{"/traces/n_tokens", &s.n_tokens}, Column{"/traces/n_prompt_tokens", &s.n_prompt_tokens}})
    require_size(s, name, v->size(), t, "/traces/id");
  int64_t next = 0;
  for (size_t i = 0; i < t; ++i) {
    if (s.span_offset[i] != next || s.n_spans[i] < 0)
      throw InputError(s.file, "/traces/span_offset", "trace " + std::to_string(i) + ": rows [" + std::to_string(s.span_offset[i]) + ", +" +
                                                          std::to_string(s.n_spans[i]) + ") do not follow the previous trace's (expected offset " + std::to_string(next) + ")");
    next += s.n_spans[i];
  }
  require_size(s, "/spans/trace", n, static_cast<size_t>(next), "the sum of /traces/n_spans");
  for (size_t r = 0; r < n; ++r) {
    const std::string row = "row " + std::to_string(r) + ": ";
    const int64_t tr = s.trace[r];
    if (tr < 0 || static_cast<size_t>(tr) >= t || r < static_cast<size_t>(s.span_offset[static_cast<size_t>(tr)]) ||
        r >= static_cast<size_t>(s.span_offset[static_cast<size_t>(tr)] + s.n_spans[static_cast<size_t>(tr)]))
      throw InputError(s.file, "/spans/trace", row + std::to_string(tr) + " is not the trace whose rows /traces/span_offset places here");
    if (s.label[r] < 0 || static_cast<size_t>(s.label[r]) >= s.labels.size())
      throw InputError(s.file, "/spans/label", row + std::to_string(s.label[r]) + " is not an index into /labels (" + std::to_string(s.labels.size()) + " labels)");
    const int64_t b = s.token_begin[r], e = s.token_end[r], len = s.n_tokens[static_cast<size_t>(tr)];
    if ((b == -1) != (e == -1) || b < -1 || e < b)
      throw InputError(s.file, "/spans/token_begin", row + "token range [" + std::to_string(b) + ", " + std::to_string(e) + ") is neither a range nor (-1, -1)");
    if (e > len) throw InputError(s.file, "/spans/token_end", row + std::to_string(e) + " is past the trace's " + std::to_string(len) + " tokens (/traces/n_tokens)");
    if (s.char_begin[r] < 0 || s.char_end[r] < s.char_begin[r])
      throw InputError(s.file, "/spans/char_begin", row + "[" + std::to_string(s.char_begin[r]) + ", " + std::to_string(s.char_end[r]) + ") is not a code-point range");
  }
}

}  // namespace

Spans read_spans(const fs::path& path, const std::string& key) {
  Spans s;
  s.file = path.string();
  const auto file = open_checked(path, SPANS, key);
  const h5::SerialFile& f = *file;
  if (const std::string seq = f.attr_string("/", "token_sequence"); seq != "generation")
    throw InputError(s.file, "token_sequence", "is '" + seq + "': the token ranges must index the generation sequence (run `thinksteer annotate` with model.path on generations.jsonl)");
  s.labels = f.read_strings("/labels");
  s.trace_ids = f.read_strings("/traces/id");
  s.trace = f.read_i64("/spans/trace");
  s.label = f.read_i64("/spans/label");
  s.token_begin = f.read_i64("/spans/token_begin");
  s.token_end = f.read_i64("/spans/token_end");
  s.char_begin = f.read_i64("/spans/char_begin");
  s.char_end = f.read_i64("/spans/char_end");
  s.text_field = f.attr_string("/", "text_field");
  s.span_offset = f.read_i64("/traces/span_offset");
  s.n_spans = f.read_i64("/traces/n_spans");
  s.n_tokens = f.read_i64("/traces/n_tokens");
  s.n_prompt_tokens = f.read_i64("/traces/n_prompt_tokens");
  s.provenance = json_parse_strict(f.attr_string("/", "provenance"), s.file + " (attribute provenance)");
  if (!s.provenance.is_object()) throw InputError(s.file, "provenance", "is not a JSON object");
  check_span_rows(s);
  return s;
}

namespace {
std::string short_hash(const std::string& h) { return h.substr(0, 12); }
}  // namespace

void check_same_generations(const Spans& s, const std::vector<Generation>& gens, const fs::path& gen_file, const std::string& gen_sha,
                            const std::string& tok_sha, const std::string& section, const std::string& spans_key) {
  const std::string their_sha = s.provenance.value("input_sha256", ""), their_input = s.provenance.value("input", "?");
  if (their_sha != gen_sha)
    throw InputError(s.file, "input_sha256", "the spans were annotated from " + their_input + " (sha256 " + short_hash(their_sha) + "), not from " +
                                                 gen_file.string() + " (sha256 " + short_hash(gen_sha) +
                                                 "): run `thinksteer annotate` on these generations, or set " + (spans_key.empty() ? section + ".spans" : spans_key) + " and " +
                                                 section + ".generations to matching files");
  if (const std::string t = s.provenance.value("tokenizer_sha256", ""); t != tok_sha)
    throw InputError(s.file, "tokenizer_sha256", "the token ranges were computed with another tokenizer (sha256 " + short_hash(t) + ") than model.path's (" +
                                                     short_hash(tok_sha) + ")");
  require_size(s, "/traces/id", s.trace_ids.size(), gens.size(), gen_file.string());
  for (size_t i = 0; i < gens.size(); ++i) {
    const std::string at = "trace " + std::to_string(i) + " ('" + s.trace_ids[i] + "'): ";
    if (s.trace_ids[i] != gens[i].id) throw InputError(s.file, "/traces/id", at + "generation " + std::to_string(i) + " of " + gen_file.string() + " is '" + gens[i].id + "'");
    if (s.n_tokens[i] != static_cast<int64_t>(gens[i].ids.size()) || s.n_prompt_tokens[i] != gens[i].n_prompt)
      throw InputError(s.file, "/traces/n_tokens", at + std::to_string(s.n_tokens[i]) + " tokens (" + std::to_string(s.n_prompt_tokens[i]) +
                                                       " prompt), but the generation runs as " + std::to_string(gens[i].ids.size()) + " (" + std::to_string(gens[i].n_prompt) + ")");
  }
}

}  // namespace ts::artifacts
