// Stage `annotate`: behaviour spans of thinking traces (annotate/annotator.h), written to one
// parallel HDF5 file by every rank.
//   in : annotate.input, a JSONL of traces (default <run.dir>/generate/generations.jsonl; any JSONL
//        with annotate.id_field and annotate.text_field, e.g. the toy corpus); the annotator
//        (annotate.annotator = lexicon, rules from annotate.lexicon, by default the compiled-in
//        configs/annotate/lexicon.txt; toy, the toy world's planted-truth templates; or llm, the
//        §A.3 prompt on annotate.llm_endpoint or the local checkpoint annotate.llm_model_path);
//        model.path, optional: its tokenizer.json gives token ranges (model.device and model.dtype
//        also place the llm annotator's local checkpoint)
//   out: <run.dir>/annotate/spans.h5 (format thinksteer.spans), spans.jsonl (one line per trace, for
//        people), problems.jsonl (one line per thing skipped), provenance.json, .done marker with the
//        config hash; <run.dir>/config.resolved.ini
//
// What is annotated: with annotate.part = thinking, the text between the first "<think>" and the first
// "</think>" after it (from the start without "<think>", to the end without "</think>"); with all,
// the whole text. Character offsets are code points of the trace's text (the text_field value).
//
// Token ranges (only with model.path) index the trace's token sequence:
//   - generation: when text_field = text and the rows carry token_ids (generations.jsonl): the
//     sequence `collect` runs with source = generations, prompt_text's tokens then token_ids
//     (artifacts/generations.h generation_sequence); the text starts at token /traces/n_prompt_tokens and at
//     code point len(prompt_text) of that sequence's text. text must equal decode(token_ids).
//   - text: otherwise, tokenizer(text) with its special tokens (BOS), as HF `tokenizer(text)` does.
// A span's token range is [first token overlapping the span, one past the last token overlapping it),
// where a token with code-point range [cb, ce) overlaps [b, e) iff ce > b and cb < e, the rule
// `collect` uses for positions = spans; (-1, -1) when no token overlaps (recorded as a problem).
//
// Work: every rank reads and validates the whole input (so a bad file fails alike on every rank,
// before anything is written), annotates an even contiguous share of the traces, and writes its
// span and trace rows collectively; rank 0 writes the strings, provenance and the JSONL files and
// commits. A rerun whose marker matches skips the work. A stopped run (SIGUSR1, SIGTERM, STOP file)
// exits 75 having stored nothing, and the rerun starts over (llm requests in flight are abandoned).
// The traces go to the annotator in rounds (annotate_batch: 256 traces, llm: 4 * llm_concurrency).
//
// The llm annotator's failed requests (kind request_failed, the trace gets no spans) are recorded
// like every other problem while they are at most annotate.llm_max_failed_fraction of the traces (a
// warning says how many); above it the stage exits 1 and writes nothing (no spans.h5, no marker), so
// an unreachable endpoint never yields a complete-looking empty annotation. The config hash covers
// what decides the spans (prompt, endpoint URL and model name, or the local checkpoint's identity
// and chat format, max tokens), not the transport settings (API key variable, timeout, retries,
// back-off, concurrency, failure fraction).
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>

#include "annotate/factory.h"
#include "annotate/llm.h"
#include "core/sentences.h"
#include "artifacts/generations.h"
#include "artifacts/spans.h"
#include "core/atomic_file.h"
#include "core/done_marker.h"
#include "core/error.h"
#include "core/log.h"
#include "core/sha256.h"
#include "dist/batch_loop.h"
#include "dist/partition.h"
#include "io/prompts.h"  // row_id: the id rule of every input row
#include "stages/annotate_taxonomy.h"
#include "stages/stage.h"
#include "core/utf8.h"

namespace ts::stages::annotate {
namespace fs = std::filesystem;

namespace {

constexpr int64_t TRACES_PER_ROUND = 256;

enum class TokenSource { NONE, GENERATION, TEXT };
const char* token_source_name(TokenSource s) { return s == TokenSource::GENERATION ? "generation" : s == TokenSource::TEXT ? "text" : "none"; }

// One validated input row.
struct InputTrace {
  std::string id, text, where;
  std::string prompt_text;         // generation token source only
  std::vector<int32_t> token_ids;  // generation token source only
};

struct SpanRow {
  int32_t label = 0;
  int64_t begin = 0, end = 0;             // code points of the trace text
  int64_t token_begin = -1, token_end = -1;
  std::string rule;
};

// One annotated trace, as this rank computed it.
struct TraceResult {
  std::vector<SpanRow> spans;
  std::vector<AnnotationProblem> problems;
  int64_t part_begin = 0, part_end = 0, sentences = 0, n_tokens = 0, n_prompt_tokens = 0;
};

fs::path input_path(const Config& cfg) { return artifacts::input_path(cfg.annotate.input, cfg, artifacts::GENERATIONS_JSONL); }

// The config as hashed: the llm keys that only say how requests are made (not what they ask) are
// left at their defaults, and every llm key when another annotator runs.
Config hashed_config(const Config& cfg) {
  Config h = cfg;
  const Config::Annotate d;
  Config::Annotate& a = h.annotate;
  a.llm_api_key_env = d.llm_api_key_env;
  a.llm_timeout_seconds = d.llm_timeout_seconds;
  a.llm_retries = d.llm_retries;
  a.llm_retry_seconds = d.llm_retry_seconds;
  a.llm_concurrency = d.llm_concurrency;
  a.llm_max_failed_fraction = d.llm_max_failed_fraction;
  if (a.annotator != AnnotatorKind::llm) {
    a.llm_endpoint = d.llm_endpoint;
    a.llm_model = d.llm_model;
    a.llm_model_path = d.llm_model_path;
    a.llm_chat_format = d.llm_chat_format;
    a.llm_max_tokens = d.llm_max_tokens;
  } else if (a.llm_endpoint.empty()) {
    a.llm_model = d.llm_model;
  } else {
    a.llm_model_path = d.llm_model_path;
    a.llm_chat_format = d.llm_chat_format;
  }
  return h;
}

// Every row of the input, validated; the first row decides the token source when a tokenizer is given.
std::vector<InputTrace> read_traces(const Config& cfg, const fs::path& file, const Tokenizer* tok, TokenSource& source) {
  std::ifstream in(file);
  if (!in) throw InputError(file.string(), "annotate.input", "cannot open the traces (run `thinksteer generate` first, or set annotate.input)");
  std::vector<InputTrace> out;
  std::map<std::string, std::string> seen;  // id -> where
  source = TokenSource::NONE;
  jsonl_for_each(in, file.string(), [&](const json& row, const std::string& where, int64_t) {
    InputTrace t;
    t.where = where;
    t.id = row_id(json_require(row, cfg.annotate.id_field, where), where, cfg.annotate.id_field);
    if (auto [it, fresh] = seen.emplace(t.id, where); !fresh) throw InputError(where, cfg.annotate.id_field, "duplicate id '" + t.id + "' (first at " + it->second + ")");
    t.text = json_string(row, cfg.annotate.text_field, where);
    if (auto bad = utf8::find_invalid(t.text)) throw InputError(where, cfg.annotate.text_field, "not valid UTF-8 at byte " + std::to_string(*bad));
    if (tok && out.empty()) source = cfg.annotate.text_field == "text" && row.contains("token_ids") ? TokenSource::GENERATION : TokenSource::TEXT;
    if (source == TokenSource::GENERATION) {
      t.prompt_text = json_string(row, "prompt_text", where);
      t.token_ids = artifacts::row_token_ids(row, *tok, where);
    }
    out.push_back(std::move(t));
    return true;
  });
  if (out.empty()) throw InputError(file.string(), "annotate.input", "no traces in the file");
  return out;
}

// Byte offset of every code point of valid UTF-8 text, then the text's size.
std::vector<size_t> code_point_bytes(std::string_view text) {
  std::vector<size_t> out;
  for (size_t b = 0; b < text.size(); ++b)
    if ((static_cast<unsigned char>(text[b]) & 0xC0) != 0x80) out.push_back(b);
  out.push_back(text.size());
  return out;
}

// A bug in an annotator must not turn into a wrong file (or an out-of-range read): check the
// contract of annotator.h.
void check_contract(const Annotator& a, const Annotation& r, const Trace& t) {
  int64_t last_end = t.begin;
  for (const LabelledSpan& s : r.spans) {
    const bool ok = s.begin >= last_end && s.end > s.begin && s.end <= t.end && s.label >= 0 &&
                    static_cast<size_t>(s.label) < a.labels().size();
    if (!ok)
      throw std::logic_error("annotator " + a.name() + " broke its contract on trace '" + t.id + "': span [" + std::to_string(s.begin) + ", " +
                             std::to_string(s.end) + ") label " + std::to_string(s.label) + " (part [" + std::to_string(t.begin) + ", " +
                             std::to_string(t.end) + "), previous end " + std::to_string(last_end) + ")");
    last_end = s.end;
  }
  for (const AnnotationProblem& p : r.problems)
    if (p.begin >= 0 && !(p.begin >= t.begin && p.end >= p.begin && p.end <= t.end))
      throw std::logic_error("annotator " + a.name() + " reported a problem outside the part on trace '" + t.id + "': [" +
                             std::to_string(p.begin) + ", " + std::to_string(p.end) + ")");
}

// Token range of every span (sorted, disjoint) from the sequence's token offsets; spans are `shift`
// code points into the sequence's text. Each token updates the few spans it overlaps.
void map_tokens(const std::vector<std::pair<int64_t, int64_t>>& offsets, int64_t shift, std::vector<SpanRow>& spans) {
  for (size_t t = 0; t < offsets.size(); ++t) {
    const int64_t cb = offsets[t].first - shift, ce = offsets[t].second - shift;
    auto it = std::partition_point(spans.begin(), spans.end(), [&](const SpanRow& s) { return s.end <= cb; });
    for (; it != spans.end() && it->begin < ce; ++it) {
      if (it->token_begin < 0) it->token_begin = static_cast<int64_t>(t);
      it->token_end = static_cast<int64_t>(t) + 1;
    }
  }
}

// The token sequence of a trace and where its text starts in the sequence's text (code points).
struct Tokens {
  std::vector<std::pair<int64_t, int64_t>> offsets;
  int64_t shift = 0, n_prompt = 0;
};
Tokens tokens_of(const InputTrace& t, const Tokenizer& tok, TokenSource source) {
  Tokens out;
  if (source == TokenSource::TEXT) {
    out.offsets = tok.encode(t.text, /*add_special_tokens=*/true).offsets;
    return out;
  }
  artifacts::TokenSequence q = artifacts::generation_sequence(tok, t.prompt_text, t.token_ids);
  if (q.text.compare(t.prompt_text.size(), std::string::npos, t.text) != 0)
    throw InputError(t.where, "text", "is not the decoding of token_ids (was the file edited?); use text_field to annotate another field");
  out.offsets = std::move(q.offsets);
  out.shift = q.prompt_chars;
  out.n_prompt = q.n_prompt;
  return out;
}

// The part of a trace to annotate (as `trace`), or a problem in `r` when it holds only white space.
std::optional<Trace> part_of(const InputTrace& in, AnnotatePart part, TraceResult& r) {
  const bool thinking = part == AnnotatePart::thinking;
  const TextRange range = thinking ? thinking_range(in.text) : TextRange{0, utf8_length(in.text), 0, in.text.size()};
  r.part_begin = range.begin;
  r.part_end = range.end;
  const std::string_view body(in.text.data() + range.byte_begin, range.byte_end - range.byte_begin);
  if (body.find_first_not_of(" \t\r\n\f\v") != std::string_view::npos) return Trace{in.id, in.text, range.begin, range.end};
  r.problems.push_back({thinking ? "no_thinking" : "empty_text", -1, -1,
                        thinking ? "no thinking text (nothing but white space before </think>)" : "the text is empty", {}});
  return std::nullopt;
}

void take_annotation(const Annotator& annotator, const Trace& trace, Annotation a, TraceResult& r) {
  check_contract(annotator, a, trace);
  r.sentences = a.units;
  r.problems = std::move(a.problems);
  for (LabelledSpan& s : a.spans) r.spans.push_back({s.label, s.begin, s.end, -1, -1, std::move(s.rule)});
}

void add_tokens(const InputTrace& in, const Tokenizer& tok, TokenSource source, TraceResult& r) {
  const Tokens t = tokens_of(in, tok, source);
  r.n_tokens = static_cast<int64_t>(t.offsets.size());
  r.n_prompt_tokens = t.n_prompt;
  map_tokens(t.offsets, t.shift, r.spans);
  for (const SpanRow& s : r.spans)
    if (s.token_begin < 0) r.problems.push_back({"no_tokens", s.begin, s.end, "no token overlaps the span", {}});
}

bool request_failed(const TraceResult& r) {
  return std::any_of(r.problems.begin(), r.problems.end(), [](const AnnotationProblem& p) { return p.kind == "request_failed"; });
}

json span_json(const SpanRow& s, const std::vector<std::string>& labels, std::string_view text, const std::vector<size_t>& cp, bool tokens) {
  json j = {{"label", labels[static_cast<size_t>(s.label)]}, {"begin", s.begin}, {"end", s.end}};
  if (tokens) {
    j["token_begin"] = s.token_begin;
    j["token_end"] = s.token_end;
  }
  j["rule"] = s.rule;
  j["text"] = std::string(text.substr(cp[static_cast<size_t>(s.begin)], cp[static_cast<size_t>(s.end)] - cp[static_cast<size_t>(s.begin)]));
  return j;
}

// The trace's line of spans.jsonl and its lines of problems.jsonl.
void jsonl_lines(int64_t index, const InputTrace& in, const TraceResult& r, const std::vector<std::string>& labels, bool tokens,
                 std::vector<std::string>& span_lines, std::vector<std::string>& problem_lines) {
  const std::vector<size_t> cp = code_point_bytes(in.text);
  json spans = json::array();
  for (const SpanRow& s : r.spans) spans.push_back(span_json(s, labels, in.text, cp, tokens));
  span_lines.push_back(json{{"trace", index}, {"id", in.id}, {"part", {r.part_begin, r.part_end}}, {"sentences", r.sentences},
                            {"problems", r.problems.size()}, {"spans", spans}}.dump());
  for (const AnnotationProblem& p : r.problems) {
    json j = {{"trace", index}, {"id", in.id}, {"kind", p.kind}, {"begin", p.begin}, {"end", p.end}, {"detail", p.detail}};
    if (p.begin >= 0) j["text"] = std::string(in.text.substr(cp[static_cast<size_t>(p.begin)], cp[static_cast<size_t>(p.end)] - cp[static_cast<size_t>(p.begin)]));
    if (!p.excerpt.empty()) j["excerpt"] = p.excerpt;
    problem_lines.push_back(j.dump(-1, ' ', false, json::error_handler_t::replace));
  }
}

// This rank's rows of every dataset, in artifacts::spans_datasets order, and one collective write each.
void write_rows(h5::ParallelFile& file, const std::vector<h5::DatasetSpec>& specs, const std::vector<TraceResult>& mine, Range share,
                int64_t span_base) {
  std::map<std::string, std::vector<int64_t>> cols;
  std::vector<int32_t> labels;
  int64_t offset = span_base;
  for (size_t k = 0; k < mine.size(); ++k) {
    const TraceResult& r = mine[k];
    for (const SpanRow& s : r.spans) {
      cols["/spans/trace"].push_back(share.begin + static_cast<int64_t>(k));
      labels.push_back(s.label);
      cols["/spans/char_begin"].push_back(s.begin);
      cols["/spans/char_end"].push_back(s.end);
      cols["/spans/token_begin"].push_back(s.token_begin);
      cols["/spans/token_end"].push_back(s.token_end);
    }
    cols["/traces/span_offset"].push_back(offset);
    cols["/traces/n_spans"].push_back(static_cast<int64_t>(r.spans.size()));
    cols["/traces/part_begin"].push_back(r.part_begin);
    cols["/traces/part_end"].push_back(r.part_end);
    cols["/traces/n_sentences"].push_back(r.sentences);
    cols["/traces/n_problems"].push_back(static_cast<int64_t>(r.problems.size()));
    cols["/traces/n_tokens"].push_back(r.n_tokens);
    cols["/traces/n_prompt_tokens"].push_back(r.n_prompt_tokens);
    offset += static_cast<int64_t>(r.spans.size());
  }
  const int64_t my_spans = offset - span_base;
  for (const h5::DatasetSpec& s : specs) {
    const bool per_span = s.path.rfind("/spans/", 0) == 0;
    const h5::RowRange range = per_span ? h5::RowRange{span_base, my_spans} : h5::RowRange{share.begin, share.size()};
    const std::vector<h5::RowRange> ranges = range.count > 0 ? std::vector<h5::RowRange>{range} : std::vector<h5::RowRange>{};
    file.write_rows(s.path, ranges, s.path == "/spans/label" ? static_cast<const void*>(labels.data()) : cols[s.path].data());
  }
}

// Counts over all ranks: spans per label and problems per kind (COLLECTIVE).
json summary(Runtime& rt, const std::vector<TraceResult>& mine, const std::vector<std::string>& labels) {
  std::vector<int64_t> per_label(labels.size() + 1, 0);  // + traces without spans
  std::map<std::string, int64_t> kinds;
  for (const TraceResult& r : mine) {
    for (const SpanRow& s : r.spans) ++per_label[static_cast<size_t>(s.label)];
    per_label.back() += r.spans.empty();
    for (const AnnotationProblem& p : r.problems) ++kinds[p.kind];
  }
  rt.world_comm.allreduce_sum(std::span<int64_t>(per_label));
  const std::vector<std::string> all_kinds = rt.world_comm.gather_strings({json(kinds).dump()}, 0);
  json out = {{"spans_per_label", json::object()}, {"traces_without_spans", per_label.back()}, {"problems_per_kind", json::object()}};
  for (size_t l = 0; l < labels.size(); ++l) out["spans_per_label"][labels[l]] = per_label[l];
  for (const std::string& k : all_kinds) {
    const json rank_kinds = json::parse(k);  // named: a temporary in the range expression would not outlive items()
    for (const auto& [kind, count] : rank_kinds.items()) out["problems_per_kind"][kind] = out["problems_per_kind"].value(kind, int64_t{0}) + count.get<int64_t>();
  }
  return out;
}

void log_summary(const json& s, int64_t n_traces, int64_t n_spans) {
  spdlog::info("annotate: {} spans in {} traces ({} traces without spans)", n_spans, n_traces, s["traces_without_spans"].get<int64_t>());
  for (const auto& [label, count] : s["spans_per_label"].items()) spdlog::info("annotate: {:<24} {:>8} spans", label, count.get<int64_t>());
  for (const auto& [kind, count] : s["problems_per_kind"].items())
    spdlog::info("annotate: skipped or flagged: {:<20} {:>8} (see problems.jsonl)", kind, count.get<int64_t>());
}

// What every rank holds after validating the inputs.
struct Setup {
  std::unique_ptr<Annotator> annotator;
  std::unique_ptr<Tokenizer> tok;  // null without model.path
  TokenSource source = TokenSource::NONE;
  std::vector<InputTrace> traces;
  std::string input_sha256, config_hash;
};

// This rank's annotated traces and their JSONL lines.
struct Share {
  std::vector<TraceResult> results;
  std::vector<std::string> span_lines, problem_lines;
};

// Annotates the traces of `share` in rounds (progress lines and stop requests between rounds).
// COLLECTIVE (run_batches).
Share annotate_share(const Config& cfg, Runtime& rt, const Setup& in, Range share) {
  Share out;
  out.results.resize(static_cast<size_t>(share.size()));
  const int64_t per_round = cfg.annotate.annotator == AnnotatorKind::llm ? 4 * cfg.annotate.llm_concurrency : TRACES_PER_ROUND;
  int64_t done = 0;
  BatchLoop loop;
  loop.work = [&](int64_t b) {
    const int64_t first = b * per_round, last = std::min(share.size(), (b + 1) * per_round);
    std::vector<Trace> traces;  // the parts to annotate, all handed to the annotator at once
    std::vector<int64_t> of;    // their k
    for (int64_t k = first; k < last; ++k)
      if (auto t = part_of(in.traces[static_cast<size_t>(share.begin + k)], cfg.annotate.part, out.results[static_cast<size_t>(k)])) {
        traces.push_back(*t);
        of.push_back(k);
      }
    std::vector<Annotation> annotations = in.annotator->annotate_batch(traces);
    if (annotations.size() != traces.size()) throw std::logic_error("annotator " + in.annotator->name() + " returned a wrong number of annotations");
    for (size_t j = 0; j < traces.size(); ++j) take_annotation(*in.annotator, traces[j], std::move(annotations[j]), out.results[static_cast<size_t>(of[j])]);
    for (int64_t k = first; k < last; ++k) {
      const InputTrace& t = in.traces[static_cast<size_t>(share.begin + k)];
      TraceResult& r = out.results[static_cast<size_t>(k)];
      if (in.tok) add_tokens(t, *in.tok, in.source, r);
      jsonl_lines(share.begin + k, t, r, in.annotator->labels(), in.tok != nullptr, out.span_lines, out.problem_lines);
    }
    done = last;
  };
  loop.save = [] { return std::string("nothing (annotate keeps no partial results; the rerun starts over)"); };
  loop.what = "annotate";
  loop.progress_seconds = cfg.log.progress_seconds;
  loop.detail = [&] { return std::to_string(done) + "/" + std::to_string(share.size()) + " traces of this rank"; };
  run_batches(rt, (share.size() + per_round - 1) / per_round, loop);
  return out;
}

// Phase 2 on rank 0: strings, dimension scales, attributes and provenance.
void write_h5_extras(const fs::path& tmp, const Config& cfg, const Setup& in, const json& prov, const std::vector<h5::DatasetSpec>& specs) {
  h5::SerialFile f(tmp, h5::SerialFile::Mode::READ_WRITE);
  std::vector<std::string> ids;
  for (const InputTrace& t : in.traces) ids.push_back(t.id);
  f.write_strings("/traces/id", ids, "trace");
  f.write_strings("/labels", in.annotator->labels(), "label");
  for (const auto& s : specs) f.describe(s);
  f.set_attr("/", "annotator", in.annotator->name());
  f.set_attr("/", "annotator_identity", in.annotator->identity());
  f.set_attr("/", "part", option_text(cfg.annotate.part));
  f.set_attr("/", "text_field", cfg.annotate.text_field);
  f.set_attr("/", "input", prov.value("input", ""));
  f.set_attr("/", "token_sequence", token_source_name(in.source));
  f.set_attr("/", "char_units", "code points of the trace text (the text_field value)");
  artifacts::write_h5_identity(f, prov, artifacts::SPANS);
}

// Traces whose request failed, over all ranks (COLLECTIVE). More than annotate.llm_max_failed_fraction
// of them: every rank throws before anything is written.
int64_t check_failures(const Config& cfg, Runtime& rt, const Setup& in, const Share& mine, Range share, int64_t n) {
  int64_t mine_failed = 0;
  std::string first;
  for (size_t k = 0; k < mine.results.size(); ++k) {
    if (!request_failed(mine.results[k])) continue;
    if (mine_failed++ == 0)
      for (const AnnotationProblem& p : mine.results[k].problems)
        if (p.kind == "request_failed") first = "trace '" + in.traces[static_cast<size_t>(share.begin) + k].id + "': " + p.detail + ": " + p.excerpt;
  }
  const int64_t failed = rt.world_comm.allreduce_sum(mine_failed);
  if (failed == 0 || static_cast<double>(failed) <= cfg.annotate.llm_max_failed_fraction * static_cast<double>(n)) return failed;
  // Rank 0 names the first failure of all (the others, their own).
  const std::vector<std::string> firsts = rt.world_comm.gather_strings(first.empty() ? std::vector<std::string>{} : std::vector<std::string>{first}, 0);
  if (rt.rank == 0 && !firsts.empty()) first = firsts.front();
  throw std::runtime_error(std::to_string(failed) + " of " + std::to_string(n) + " traces got no reply from the llm annotator (more than annotate.llm_max_failed_fraction = " +
                           fmt::format("{:g}", cfg.annotate.llm_max_failed_fraction) + "); nothing was written" + (first.empty() ? "" : ". First failure: " + first));
}

std::string join_lines(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

}  // namespace

void run(const Config& cfg, Runtime& rt) {
  const fs::path input = input_path(cfg);

  // Inputs first: every rank validates them alike, so a bad input fails before anything is written.
  Setup in{cfg.annotate.annotator == AnnotatorKind::taxonomy ? make_taxonomy_annotator(cfg)
           : llm_local(cfg)                                   ? nullptr
                                                              : make_annotator(cfg, rt),
           nullptr, TokenSource::NONE, {}, {}, {}};
  if (!cfg.model.path.empty()) in.tok = std::make_unique<Tokenizer>(Tokenizer::from_file(fs::path(cfg.model.path) / "tokenizer.json"));
  if (!fs::is_regular_file(input)) throw InputError(input.string(), "annotate.input", "no traces file (run `thinksteer generate` first, or set annotate.input)");
  in.input_sha256 = sha256_file(input);
  const std::string inputs = in.input_sha256 + "\n" + (in.annotator ? in.annotator->identity() : annotator_identity(cfg)) + "\n" +
                             (in.tok ? "tokenizer " + sha256_file(fs::path(cfg.model.path) / "tokenizer.json") : std::string("no tokenizer"));
  in.config_hash = artifacts::output_config_hash(hashed_config(cfg), {"annotate"}, inputs);
  StageOutput out(cfg, rt, "annotate", artifacts::SPANS_H5.in(cfg), in.config_hash);
  if (out.complete()) return;
  in.traces = read_traces(cfg, input, in.tok.get(), in.source);
  artifacts::verify_committed(input, "annotate.input");
  if (!in.annotator) in.annotator = make_annotator(cfg, rt);
  const int64_t n = static_cast<int64_t>(in.traces.size());

  // This rank's even share; its spans follow those of the ranks before it (shares are in trace order).
  const std::vector<Range> shares = even_ranges(n, rt.world);
  const Range share = static_cast<size_t>(rt.rank) < shares.size() ? shares[static_cast<size_t>(rt.rank)] : Range{n, n};
  Share mine = annotate_share(cfg, rt, in, share);
  const int64_t failed = check_failures(cfg, rt, in, mine, share, n);
  int64_t my_spans = 0;
  for (const TraceResult& r : mine.results) my_spans += static_cast<int64_t>(r.spans.size());
  const int64_t span_base = rt.world_comm.exscan_sum(my_spans), n_spans = rt.world_comm.allreduce_sum(my_spans);
  const json counts = summary(rt, mine.results, in.annotator->labels());
  const std::vector<h5::DatasetSpec> specs = artifacts::spans_datasets(n_spans, n, in.tok != nullptr);

  out.begin();
  {
    h5::ParallelFile file(out.partial(), rt.world_comm.get());
    for (const auto& s : specs) file.create(s);
    write_rows(file, specs, mine.results, share, span_base);
    file.close();
  }
  mine.span_lines = rt.world_comm.gather_strings(mine.span_lines, 0);
  mine.problem_lines = rt.world_comm.gather_strings(mine.problem_lines, 0);
  if (rt.rank == 0) {
    json prov = out.provenance(in.tok ? fs::path(cfg.model.path) : fs::path());
    prov.update({{"input", fs::absolute(input).string()}, {"input_sha256", in.input_sha256}, {"annotator", in.annotator->name()},
                 {"annotator_identity", in.annotator->identity()}, {"token_sequence", token_source_name(in.source)}, {"traces", n},
                 {"spans", n_spans}, {"summary", counts}});
    write_h5_extras(out.partial(), cfg, in, prov, specs);
    write_file_atomic(out.dir() / "spans.jsonl", join_lines(mine.span_lines));
    write_file_atomic(out.dir() / "problems.jsonl", join_lines(mine.problem_lines));
    out.commit_h5(prov, artifacts::SPANS, specs);
    log_summary(counts, n, n_spans);
    if (failed > 0)
      spdlog::warn("annotate: {} of {} traces got no reply from the llm annotator (request_failed in problems.jsonl) and have no spans; "
                   "to try them again, remove {} and rerun (every trace is annotated again)",
                   failed, n, done_marker_path(out.path()).string());
    spdlog::info("annotate: wrote {} (token ranges: {}), spans.jsonl and problems.jsonl ({} lines)", out.path().string(),
                 token_source_name(in.source), mine.problem_lines.size());
  }
  rt.world_comm.barrier();
}

}  // namespace ts::stages::annotate
