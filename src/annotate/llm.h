// The `llm` annotator (annotator.h): an LLM splits the annotated part of a trace into labelled
// sections, in the format of docs/algorithms.md §A.3, and the sections are aligned back to the trace.
// Torch-free and transport-free (thinksteer_formats): the model behind it is an LlmBackend, an
// OpenAI-compatible HTTP endpoint (annotate/llm_http.h) or a local checkpoint run by thinksteer's own
// generation (stages/llm_local.h).
//
// Prompt (llm_annotation_prompt): §A.3's, as the reference code words it: the request to split the
// chain into `["label"]...["end-section"]` parts (a sentence split if it shows several behaviours),
// the six labels numbered 0..5 with their descriptions, the chain (the text of [begin, end) stripped of
// surrounding white space), and "answer only with the annotated text, only these labels, leave out an
// unannotated tail".
//
// Reply parsing (llm_parse_sections), never throwing, on any bytes:
//   - invalid UTF-8 is replaced (U+FFFD); a reply of a thinking model is read after its last "</think>";
//   - a header is `["NAME"]` (NAME up to 64 characters, no '"' or line break). A section is a header
//     naming anything but end-section, and its text runs to the next `["end-section"]` or to the next
//     header of a known label (a `["x"]` of some other NAME inside the text, e.g. code, is text);
//     labels compare case-insensitively (ASCII);
//   - each section's text is aligned to the part with a forward-only cursor: its characters other
//     than white space (Unicode White_Space) must occur, in order and contiguous when white space is
//     ignored, at or after the end of the previous aligned section; the first such occurrence gives
//     the span [first character, last character + 1) in code points of the trace. A repeated
//     sentence thus maps to its own occurrence, and differences in white space or line breaks do not
//     matter. An unaligned section leaves the cursor where it was.
// Problems (AnnotationProblem.kind; `excerpt` holds the piece of the reply concerned):
//   request_failed     the backend gave no reply (after its retries); the trace gets no spans
//   unparsed_output    no section in the reply; text outside the format (before, between or after
//                      sections); an `["end-section"]` without a section; an empty section; a reply
//                      that ends inside a section (cut off at the token limit?)
//   unknown_label      a section aligned, but its label is none of the six (range: the section)
//   unaligned_section  a section's text is not in the part after the cursor (not at all, or only
//                      before it: sections out of order or repeated)
//   unlabelled_text    a piece of the part between aligned sections, or after the last one (§A.3 asks
//                      the model to leave out an unannotated tail; it is recorded all the same)
// A span's rule is "llm section N" (N: 1-based position of the section in the reply).
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "annotate/annotator.h"

namespace ts {

// §A.3's description of each of behaviour_labels(), in the same order.
const std::vector<std::string>& behaviour_descriptions();

// The §A.3 prompt for one chain (the text to annotate).
std::string llm_annotation_prompt(std::string_view chain);

// The reply's sections, aligned to `trace` (see the header). `labels` are the names spans index into.
Annotation llm_parse_sections(std::string_view reply, const Trace& trace, const std::vector<std::string>& labels);

// At most `max_bytes` of `text` (cut at a character boundary, "…" appended when cut), invalid UTF-8
// replaced: what a problem record quotes.
std::string llm_excerpt(std::string_view text, size_t max_bytes = 200);

// One request's outcome.
struct LlmReply {
  bool ok = false;
  std::string text;       // the model's reply (ok)
  std::string error;      // why there is none (not ok), for people: status, message, body excerpt
  int64_t attempts = 0;   // requests made
};

// Where the prompts go. complete() returns one reply per prompt, in order, and reports a failed
// request as a reply with ok = false (it throws only on a bug). Implementations are immutable after
// construction; complete() may keep several requests in flight.
class LlmBackend {
 public:
  virtual ~LlmBackend() = default;
  // What determines the replies (endpoint and model name, or checkpoint identity; limits), never
  // secrets: part of the annotator's identity and so of config hashes.
  virtual std::string identity() const = 0;
  virtual std::vector<LlmReply> complete(std::span<const std::string> prompts) const = 0;
};

class LlmAnnotator : public Annotator {
 public:
  explicit LlmAnnotator(std::shared_ptr<const LlmBackend> backend);
  std::string name() const override { return "llm"; }
  const std::vector<std::string>& labels() const override { return behaviour_labels(); }
  // "llm prompt sha256 <of the prompt template>; <backend identity>" (identity_of the backend's).
  std::string identity() const override;
  static std::string identity_of(const std::string& backend_identity);
  Annotation annotate(const Trace& trace) const override;
  // One prompt per trace, all handed to the backend at once (it decides how many run together).
  std::vector<Annotation> annotate_batch(std::span<const Trace> traces) const override;

 private:
  std::shared_ptr<const LlmBackend> backend_;
};

}  // namespace ts
