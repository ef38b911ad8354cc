// The annotator interface: one trace in, labelled character spans and a record of problems out.
//
// `thinksteer annotate` (stages/annotate.cpp) reads traces, hands them to an Annotator in rounds
// (annotate_batch), and turns the spans into token ranges and HDF5 rows. An annotator sees only text and offsets, never tokens or
// files, so the stage owns input validation, token mapping, sharding over ranks and output.
//
// Contract of annotate():
//   - spans lie inside [trace.begin, trace.end), are non-empty, sorted by begin and do not overlap;
//     their offsets are the annotator's own (docs/decisions.md: span localisation never searches the text);
//   - every label is an index into labels();
//   - nothing is dropped silently: a piece of the trace the annotator could not label, or output it
//     could not use, is an AnnotationProblem (the stage writes them to problems.jsonl).
// Annotators are immutable after construction and annotate() may run on several threads at once.
//
// The annotators:
//   lexicon   (annotate/lexicon.h) splits the part into sentences (§B.3) and labels each sentence by
//             the first matching rule of a user-editable pattern file. Offline and deterministic.
//   toy       (annotate/toy_annotator.h) the planted-truth labels of the toy world: each sentence gets
//             the label of the corpus template it instantiates (ground truth on toy-model traces).
//   llm       (annotate/llm.h) formats the §A.3 prompt from the text of [begin, end), sends it to an
//             LlmBackend: an OpenAI-compatible endpoint (annotate/llm_http.h: libcurl, several requests
//             in flight, retries with back-off, timeout) or a local checkpoint through thinksteer's own
//             generation (stages/llm_local.h: greedy, chat-formatted, batched), and parses
//             the `["label"]text["end-section"]` sections. Each section's text is aligned to the trace
//             with a cursor that only moves forward (the section must start at or after the end of the
//             previous one; white space is ignored when comparing), which gives its offsets; a
//             repeated sentence thus maps to its own occurrence, not the first. Problems:
//             `request_failed` (after the retries; the trace gets no spans), `unparsed_output` (no
//             sections, text outside the format, an empty or unfinished section), `unknown_label`,
//             `unaligned_section`, and `unlabelled_text` (a piece of the part between or after the
//             aligned sections). annotate_batch() is where it keeps several requests (or one
//             generation batch) in flight.
//   taxonomy  (annotate/taxonomy_annotator.h, §B.7) labels the §B.3 sentences with the cluster of a
//             taxonomy SAE. It is built by the stage layer (stages/annotate_taxonomy.h) from the
//             `sentences` file and an SAE export of `titles`, which it classifies once, so annotate()
//             keeps this signature and is a lookup by trace id; labels() are "idx0".."idx<K-1>".
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ts {

// The six behaviour labels of docs/algorithms.md §A.3, in the paper's order (its label indices 0..5).
inline const std::vector<std::string>& behaviour_labels() {
  static const std::vector<std::string> labels = {"initializing",  "deduction", "adding-knowledge", "example-testing", "uncertainty-estimation",
                                                  "backtracking"};
  return labels;
}

// One trace to annotate.
struct Trace {
  std::string id;
  std::string_view text;       // the whole trace, valid UTF-8
  int64_t begin = 0, end = 0;  // code points of `text` to annotate (e.g. the thinking part)
};

struct LabelledSpan {
  int32_t label = 0;           // index into Annotator::labels()
  int64_t begin = 0, end = 0;  // code points of Trace::text, [begin, end)
  std::string rule;            // what decided the label, for people (lexicon: "<file>:<line>", or "default")
};

struct AnnotationProblem {
  std::string kind;               // a short snake_case name: unlabelled_sentence, short_fragment, ...
  int64_t begin = -1, end = -1;   // code points of Trace::text concerned; -1: the trace as a whole
  std::string detail;             // for people
  std::string excerpt;            // a short piece of the annotator's own output concerned (an LLM's
                                  // reply, an error body), valid UTF-8; empty when there is none
};

struct Annotation {
  std::vector<LabelledSpan> spans;
  std::vector<AnnotationProblem> problems;
  int64_t units = 0;  // pieces the annotator considered (lexicon: sentences), labelled or not
};

class Annotator {
 public:
  virtual ~Annotator() = default;
  virtual std::string name() const = 0;                          // the [annotate] annotator value
  virtual const std::vector<std::string>& labels() const = 0;    // the names spans index into
  // What determines the output besides the traces (rules, prompt, model), for config hashes.
  virtual std::string identity() const = 0;
  virtual Annotation annotate(const Trace& trace) const = 0;
  // Several traces at once, in order; annotators that batch (llm) override it.
  virtual std::vector<Annotation> annotate_batch(std::span<const Trace> traces) const {
    std::vector<Annotation> out;
    out.reserve(traces.size());
    for (const Trace& t : traces) out.push_back(annotate(t));
    return out;
  }
};

}  // namespace ts
