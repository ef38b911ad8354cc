// The llm annotator: §A.3's prompt, the reply parser and the forward-only alignment (llm.h).
#include "annotate/llm.h"

#include <algorithm>
#include <optional>
#include <stdexcept>

#include "core/sha256.h"
#include "core/utf8.h"

namespace ts {

namespace {

constexpr std::string_view END_SECTION = "end-section";
constexpr size_t MAX_HEADER_NAME = 64;  // bytes

// The prompt around the chain (docs/algorithms.md §A.3, in the reference code's words).
constexpr std::string_view PROMPT_HEAD =
    "Please split the following reasoning chain of an LLM into annotated parts using labels and the following format "
    "[\"label\"]...[\"end-section\"]. A sentence should be split into multiple parts if it incorporates multiple behaviours "
    "indicated by the labels.\n\nAvailable labels:\n";
constexpr std::string_view PROMPT_CHAIN = "\nThe reasoning chain to analyze:\n";
constexpr std::string_view PROMPT_TAIL =
    "\n\nAnswer only with the annotated text. Only use the labels outlined above. If there is a tail that has no annotation "
    "leave it out.";

bool is_space(char32_t c) { return utf8::is_white_space(c); }

bool has_non_space(std::string_view s) {
  for (size_t i = 0; i < s.size();)
    if (!is_space(utf8::next(s, i))) return true;
  return false;
}

// `s` without leading and trailing white space (s valid UTF-8).
std::string_view trim(std::string_view s) {
  size_t b = 0;
  while (b < s.size()) {
    size_t j = b;
    if (!is_space(utf8::next(s, j))) break;
    b = j;
  }
  size_t e = b, i = b;
  while (i < s.size())
    if (!is_space(utf8::next(s, i))) e = i;
  return s.substr(b, e - b);
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// Index of `name` in `labels` (ASCII case-insensitive, surrounding white space ignored), or -1.
int32_t find_label(const std::vector<std::string>& labels, std::string_view name) {
  const std::string want = ascii_lower(trim(name));
  for (size_t k = 0; k < labels.size(); ++k)
    if (ascii_lower(labels[k]) == want) return static_cast<int32_t>(k);
  return -1;
}

bool is_end_section(std::string_view name) { return ascii_lower(trim(name)) == END_SECTION; }

struct Header {
  size_t begin = 0, end = 0;  // bytes of the reply: `["` .. `"]`
  std::string_view name;
};

// The first header `["NAME"]` at or after `pos`; with `known`, only end-section and known labels count.
std::optional<Header> next_header(std::string_view s, size_t pos, const std::vector<std::string>* known) {
  while ((pos = s.find("[\"", pos)) != std::string_view::npos) {
    const size_t name_begin = pos + 2;
    size_t q = name_begin;
    while (q < s.size() && q - name_begin <= MAX_HEADER_NAME && s[q] != '"' && s[q] != '\n' && s[q] != '\r') ++q;
    if (q + 1 < s.size() && s[q] == '"' && s[q + 1] == ']' && q - name_begin <= MAX_HEADER_NAME) {
      const std::string_view name = s.substr(name_begin, q - name_begin);
      if (!known || is_end_section(name) || find_label(*known, name) >= 0) return Header{pos, q + 2, name};
    }
    pos += 1;
  }
  return std::nullopt;
}

// The part's characters other than white space, and the code point (of the trace text) of each.
struct Haystack {
  std::u32string chars;
  std::vector<int64_t> cps;
};
Haystack haystack(const Trace& t) {
  Haystack h;
  int64_t cp = 0;
  for (size_t i = 0; i < t.text.size() && cp < t.end; ++cp) {
    const char32_t c = utf8::next(t.text, i);
    if (cp >= t.begin && !is_space(c)) {
      h.chars.push_back(c);
      h.cps.push_back(cp);
    }
  }
  return h;
}

std::u32string non_space(std::string_view s) {
  std::u32string out;
  for (size_t i = 0; i < s.size();)
    if (const char32_t c = utf8::next(s, i); !is_space(c)) out.push_back(c);
  return out;
}

// Byte offset of code point `cp` of valid UTF-8 text (the size when past the end).
size_t byte_of(std::string_view text, int64_t cp) {
  size_t i = 0;
  for (int64_t c = 0; c < cp && i < text.size(); ++c) i += utf8::sequence_length(static_cast<unsigned char>(text[i]));
  return std::min(i, text.size());
}

// Parses one reply into `out` (see llm.h).
class ReplyParser {
 public:
  ReplyParser(const Trace& trace, const std::vector<std::string>& labels, Annotation& out)
      : labels_(labels), hay_(haystack(trace)), out_(out) {}

  void parse(std::string_view r) {
    size_t pos = 0;
    int64_t n = 0;
    while (true) {
      const auto h = next_header(r, pos, nullptr);
      if (!h) {
        outside(r.substr(pos), "after the last section");
        break;
      }
      outside(r.substr(pos, h->begin - pos), n == 0 ? "before the first section" : "between sections");
      if (is_end_section(h->name)) {
        problem("unparsed_output", -1, -1, "an [\"end-section\"] without a section before it", r.substr(h->begin, h->end - h->begin));
        pos = h->end;
        continue;
      }
      ++n;
      const auto e = next_header(r, h->end, &labels_);
      std::string_view body;
      bool closed = true;
      if (e) {
        body = r.substr(h->end, e->begin - h->end);
        pos = is_end_section(e->name) ? e->end : e->begin;  // a missing ["end-section"] before the next section is tolerated
      } else {
        body = r.substr(h->end);
        pos = r.size();
        closed = false;
      }
      section(n, h->name, body, closed);
    }
    out_.units = n;
    if (n == 0) {
      out_.problems.clear();  // stray markers or prose only: one record for the reply
      problem("unparsed_output", -1, -1,
              has_non_space(r) ? "no [\"label\"]...[\"end-section\"] section in the reply" : "the reply is empty", trim(r));
      return;
    }
    if (aligned_ && cursor_ < hay_.chars.size())
      problem("unlabelled_text", hay_.cps[cursor_], hay_.cps.back() + 1,
              "no section covers the rest of the part (docs/algorithms.md §A.3 leaves an unannotated tail out)", {});
  }

 private:
  void problem(const char* kind, int64_t b, int64_t e, std::string detail, std::string_view excerpt) {
    out_.problems.push_back({kind, b, e, std::move(detail), llm_excerpt(excerpt)});
  }

  void outside(std::string_view piece, const char* where) {
    if (has_non_space(piece)) problem("unparsed_output", -1, -1, std::string("text outside the [\"label\"]...[\"end-section\"] format ") + where, trim(piece));
  }

  void section(int64_t n, std::string_view name, std::string_view body, bool closed) {
    const int32_t label = find_label(labels_, name);
    const std::string tag = "section " + std::to_string(n) + " [\"" + std::string(name) + "\"]";
    if (!closed) problem("unparsed_output", -1, -1, tag + " has no [\"end-section\"]: the reply ends inside it (cut off at the token limit?)", trim(body));
    const std::u32string needle = non_space(body);
    if (needle.empty()) {
      problem("unparsed_output", -1, -1, tag + " is empty", {});
      return;
    }
    const size_t at = hay_.chars.find(needle, cursor_);
    if (at == std::u32string::npos) {
      const bool earlier = hay_.chars.find(needle) != std::u32string::npos;
      problem("unaligned_section", -1, -1,
              tag + (earlier ? ": its text occurs only before the end of the previous aligned section (sections out of order or repeated)"
                             : ": its text is not in the annotated part of the trace") +
                  (label < 0 ? " (and its label is unknown)" : ""),
              trim(body));
      return;
    }
    if (at > cursor_) problem("unlabelled_text", hay_.cps[cursor_], hay_.cps[at - 1] + 1, "no section covers this text (before " + tag + ")", {});
    const int64_t b = hay_.cps[at], e = hay_.cps[at + needle.size() - 1] + 1;
    cursor_ = at + needle.size();
    aligned_ = true;
    if (label < 0) {
      std::string known;
      for (const std::string& l : labels_) known += (known.empty() ? "" : ", ") + l;
      problem("unknown_label", b, e, tag + ": the label is not one of " + known, "[\"" + std::string(name) + "\"]");
      return;
    }
    out_.spans.push_back({label, b, e, "llm section " + std::to_string(n)});
  }

  const std::vector<std::string>& labels_;
  const Haystack hay_;
  Annotation& out_;
  size_t cursor_ = 0;  // into hay_.chars: the end of the last aligned section
  bool aligned_ = false;
};

}  // namespace

const std::vector<std::string>& behaviour_descriptions() {
  static const std::vector<std::string> d = {
      "The model is rephrasing the given task and states initial thoughts.",
      "The model is performing a deduction step based on its current approach and assumptions.",
      "The model is enriching the current approach with recalled facts.",
      "The model generates examples to test its current approach.",
      "The model is stating its own uncertainty.",
      "The model decides to change its approach.",
  };
  return d;
}

std::string llm_annotation_prompt(std::string_view chain) {
  std::string p(PROMPT_HEAD);
  const auto& labels = behaviour_labels();
  for (size_t k = 0; k < labels.size(); ++k) p += std::to_string(k) + ". " + labels[k] + " -> " + behaviour_descriptions()[k] + "\n";
  p += PROMPT_CHAIN;
  p += chain;
  p += PROMPT_TAIL;
  return p;
}

std::string llm_excerpt(std::string_view text, size_t max_bytes) {
  std::string s = utf8::decode_lossy(text);
  if (s.size() <= max_bytes) return s;
  size_t cut = max_bytes;
  while (cut > 0 && utf8::is_continuation(static_cast<unsigned char>(s[cut]))) --cut;
  s.resize(cut);
  return s + "…";
}

Annotation llm_parse_sections(std::string_view reply, const Trace& trace, const std::vector<std::string>& labels) {
  Annotation out;
  const std::string text = utf8::decode_lossy(reply);
  std::string_view r(text);
  if (const size_t t = r.rfind("</think>"); t != std::string_view::npos) r.remove_prefix(t + 8);  // a thinking model's reply
  ReplyParser(trace, labels, out).parse(r);
  return out;
}

LlmAnnotator::LlmAnnotator(std::shared_ptr<const LlmBackend> backend) : backend_(std::move(backend)) {
  if (!backend_) throw std::logic_error("LlmAnnotator needs a backend");
}

std::string LlmAnnotator::identity_of(const std::string& backend_identity) {
  return "llm prompt sha256 " + sha256_hex(llm_annotation_prompt("{chain}")) + "; " + backend_identity;
}

std::string LlmAnnotator::identity() const { return identity_of(backend_->identity()); }

Annotation LlmAnnotator::annotate(const Trace& trace) const { return std::move(annotate_batch(std::span<const Trace>(&trace, 1)).front()); }

std::vector<Annotation> LlmAnnotator::annotate_batch(std::span<const Trace> traces) const {
  std::vector<std::string> prompts;
  prompts.reserve(traces.size());
  for (const Trace& t : traces) {
    const size_t b = byte_of(t.text, t.begin), e = byte_of(t.text, t.end);
    prompts.push_back(llm_annotation_prompt(trim(t.text.substr(b, e - b))));
  }
  const std::vector<LlmReply> replies = backend_->complete(prompts);
  if (replies.size() != traces.size())
    throw std::logic_error("llm backend returned " + std::to_string(replies.size()) + " replies for " + std::to_string(traces.size()) + " prompts");
  std::vector<Annotation> out(traces.size());
  for (size_t i = 0; i < traces.size(); ++i) {
    if (replies[i].ok) {
      out[i] = llm_parse_sections(replies[i].text, traces[i], labels());
    } else {
      out[i].problems.push_back({"request_failed", -1, -1, "no reply after " + std::to_string(replies[i].attempts) + " attempt(s); the trace has no spans",
                                 llm_excerpt(replies[i].error, 300)});
    }
  }
  return out;
}

}  // namespace ts
