// The llm annotator without a model (src/annotate/llm.h): the §A.3 prompt, the reply parser and its
// forward-only alignment on normal, odd and hostile replies, and the annotator over a scripted backend
// (batching, request failures, identity).
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "annotate/llm.h"
#include "core/sentences.h"

namespace {

using ts::Annotation;
using ts::AnnotationProblem;
using ts::LabelledSpan;
using ts::Trace;

// The trace's thinking part as the stage hands it over (the Trace views `text`, which must outlive it).
Trace thinking(const std::string& text) {
  const ts::TextRange r = ts::thinking_range(text);
  return Trace{"t", text, r.begin, r.end};
}
Trace thinking(std::string&&) = delete;

// Code-point offsets of the first occurrence of `needle` at or after code point `from`.
std::pair<int64_t, int64_t> cp_range(const std::u32string& text, const std::u32string& needle, size_t from = 0) {
  const size_t at = text.find(needle, from);
  EXPECT_NE(at, std::u32string::npos);
  return {static_cast<int64_t>(at), static_cast<int64_t>(at + needle.size())};
}

std::u32string u32(const std::string& s) {
  std::u32string out;
  for (size_t i = 0; i < s.size();) {
    const unsigned char b = static_cast<unsigned char>(s[i]);
    const size_t n = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
    char32_t c = n == 1 ? b : n == 2 ? (b & 0x1F) : n == 3 ? (b & 0x0F) : (b & 0x07);
    for (size_t k = 1; k < n; ++k) c = (c << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    out.push_back(c);
    i += n;
  }
  return out;
}

Annotation parse(const std::string& reply, const Trace& t) { return ts::llm_parse_sections(reply, t, ts::behaviour_labels()); }

std::vector<std::string> kinds(const Annotation& a) {
  std::vector<std::string> out;
  for (const AnnotationProblem& p : a.problems) out.push_back(p.kind);
  return out;
}

// The annotator contract of annotator.h.
void expect_contract(const Annotation& a, const Trace& t) {
  int64_t last = t.begin;
  for (const LabelledSpan& s : a.spans) {
    EXPECT_GE(s.begin, last);
    EXPECT_GT(s.end, s.begin);
    EXPECT_LE(s.end, t.end);
    EXPECT_GE(s.label, 0);
    EXPECT_LT(s.label, 6);
    last = s.end;
  }
  for (const AnnotationProblem& p : a.problems) {
    EXPECT_FALSE(p.kind.empty());
    if (p.begin >= 0) {
      EXPECT_GE(p.begin, t.begin);
      EXPECT_GE(p.end, p.begin);
      EXPECT_LE(p.end, t.end);
    }
    EXPECT_LE(p.excerpt.size(), 200u + 3u);
  }
}

const std::string kTrace =
    "<think>\nOkay, so I need to add 2 and 3. Two plus three is five. Wait, maybe I misread the question. "
    "Let me check with 1 + 1 = 2.\nI'm not sure this is right.\n</think>\nThe answer is 5.";

TEST(LlmPrompt, IsThePaperPrompt) {
  const std::string expected =
      "Please split the following reasoning chain of an LLM into annotated parts using labels and the following format "
      "[\"label\"]...[\"end-section\"]. A sentence should be split into multiple parts if it incorporates multiple behaviours "
      "indicated by the labels.\n\n"
      "Available labels:\n"
      "0. initializing -> The model is rephrasing the given task and states initial thoughts.\n"
      "1. deduction -> The model is performing a deduction step based on its current approach and assumptions.\n"
      "2. adding-knowledge -> The model is enriching the current approach with recalled facts.\n"
      "3. example-testing -> The model generates examples to test its current approach.\n"
      "4. uncertainty-estimation -> The model is stating its own uncertainty.\n"
      "5. backtracking -> The model decides to change its approach.\n\n"
      "The reasoning chain to analyze:\n"
      "Two plus three is five.\n\n"
      "Answer only with the annotated text. Only use the labels outlined above. If there is a tail that has no annotation leave it out.";
  EXPECT_EQ(ts::llm_annotation_prompt("Two plus three is five."), expected);
  EXPECT_EQ(ts::behaviour_descriptions().size(), ts::behaviour_labels().size());
}

TEST(LlmParse, NormalReply) {
  const Trace t = thinking(kTrace);
  const std::string reply =
      "[\"initializing\"]Okay, so I need to add 2 and 3.[\"end-section\"]\n"
      "[\"deduction\"]Two plus three is five.[\"end-section\"]\n"
      "[\"backtracking\"]Wait, maybe I misread the question.[\"end-section\"]\n"
      "[\"example-testing\"]Let me check with 1 + 1 = 2.[\"end-section\"]\n"
      "[\"uncertainty-estimation\"]I'm not sure this is right.[\"end-section\"]";
  const Annotation a = parse(reply, t);
  expect_contract(a, t);
  EXPECT_TRUE(a.problems.empty()) << a.problems.front().kind << ": " << a.problems.front().detail;
  ASSERT_EQ(a.spans.size(), 5u);
  EXPECT_EQ(a.units, 5);
  const std::u32string text = u32(kTrace);
  const std::vector<std::pair<std::string, int32_t>> want = {{"Okay, so I need to add 2 and 3.", 0},
                                                              {"Two plus three is five.", 1},
                                                              {"Wait, maybe I misread the question.", 5},
                                                              {"Let me check with 1 + 1 = 2.", 3},
                                                              {"I'm not sure this is right.", 4}};
  for (size_t i = 0; i < want.size(); ++i) {
    const auto [b, e] = cp_range(text, u32(want[i].first));
    EXPECT_EQ(a.spans[i].begin, b) << i;
    EXPECT_EQ(a.spans[i].end, e) << i;
    EXPECT_EQ(a.spans[i].label, want[i].second) << i;
    EXPECT_EQ(a.spans[i].rule, "llm section " + std::to_string(i + 1));
  }
}

TEST(LlmParse, RepeatedSentenceMapsToItsOwnOccurrence) {
  const std::string text = "<think>Let me check. So x is 2. Let me check. So x is 2 indeed.</think>";
  const Trace t = thinking(text);
  const std::string reply =
      "[\"deduction\"]Let me check.[\"end-section\"][\"deduction\"]So x is 2.[\"end-section\"]"
      "[\"example-testing\"]Let me check.[\"end-section\"][\"deduction\"]So x is 2 indeed.[\"end-section\"]";
  const Annotation a = parse(reply, t);
  expect_contract(a, t);
  EXPECT_TRUE(a.problems.empty());
  ASSERT_EQ(a.spans.size(), 4u);
  const std::u32string u = u32(text);
  const auto first = cp_range(u, U"Let me check.");
  const auto second = cp_range(u, U"Let me check.", static_cast<size_t>(first.second));
  EXPECT_EQ(a.spans[0].begin, first.first);
  EXPECT_EQ(a.spans[2].begin, second.first);
  EXPECT_EQ(a.spans[2].end, second.second);
  EXPECT_EQ(a.spans[2].label, 3);
  EXPECT_GT(second.first, first.first);
}

TEST(LlmParse, WhiteSpaceAndLineBreaksDoNotMatter) {
  const std::string text = "<think>\nFirst   we add.\n\nThen we\nmultiply the   result.\n</think>";
  const Trace t = thinking(text);
  const std::string reply =
      "  [\"deduction\"]\n  First we add.\n[\"end-section\"]\n\n"
      "[\"deduction\"]Then we multiply the result.[\"end-section\"]\n";
  const Annotation a = parse(reply, t);
  expect_contract(a, t);
  EXPECT_TRUE(a.problems.empty()) << a.problems.front().detail;
  ASSERT_EQ(a.spans.size(), 2u);
  const std::u32string u = u32(text);
  EXPECT_EQ(a.spans[0].begin, cp_range(u, U"First").first);
  EXPECT_EQ(a.spans[0].end, cp_range(u, U"add.").second);  // trimmed: no surrounding white space
  EXPECT_EQ(a.spans[1].begin, cp_range(u, U"Then").first);
  EXPECT_EQ(a.spans[1].end, cp_range(u, U"result.").second);
}

TEST(LlmParse, OffsetsAreCodePoints) {
  const std::string text = "<think>Café 🙂 first. Then ünïcode second.</think>";
  const Trace t = thinking(text);
  const Annotation a = parse("[\"deduction\"]Café 🙂 first.[\"end-section\"][\"deduction\"]Then ünïcode second.[\"end-section\"]", t);
  expect_contract(a, t);
  ASSERT_EQ(a.spans.size(), 2u);
  const std::u32string u = u32(text);
  EXPECT_EQ(a.spans[0].begin, 7);
  EXPECT_EQ(a.spans[0].end, cp_range(u, U"first.").second);
  EXPECT_EQ(a.spans[1].begin, cp_range(u, U"Then").first);
  EXPECT_EQ(a.spans[1].end, cp_range(u, U"second.").second);
}

TEST(LlmParse, UnknownLabelIsRecordedAndSkipped) {
  const Trace t = thinking(kTrace);
  const std::string reply =
      "[\"initializing\"]Okay, so I need to add 2 and 3.[\"end-section\"]"
      "[\"musing\"]Two plus three is five.[\"end-section\"]"
      "[\"Backtracking\"]Wait, maybe I misread the question.[\"end-section\"]";  // case does not matter
  const Annotation a = parse(reply, t);
  expect_contract(a, t);
  ASSERT_EQ(a.spans.size(), 2u);
  EXPECT_EQ(a.spans[1].label, 5);
  ASSERT_EQ(kinds(a), (std::vector<std::string>{"unknown_label", "unlabelled_text"}));
  const AnnotationProblem& p = a.problems[0];
  const auto [b, e] = cp_range(u32(kTrace), U"Two plus three is five.");
  EXPECT_EQ(p.begin, b);
  EXPECT_EQ(p.end, e);
  EXPECT_EQ(p.excerpt, "[\"musing\"]");
  EXPECT_NE(p.detail.find("not one of initializing, deduction"), std::string::npos) << p.detail;
  EXPECT_EQ(a.units, 3);
}

TEST(LlmParse, TextNotInTheTrace) {
  const Trace t = thinking(kTrace);
  const std::string reply =
      "[\"initializing\"]Okay, so I need to add 2 and 3.[\"end-section\"]"
      "[\"deduction\"]Two plus two is four.[\"end-section\"]"
      "[\"deduction\"]Two plus three is five.[\"end-section\"]";
  const Annotation a = parse(reply, t);
  expect_contract(a, t);
  ASSERT_EQ(a.spans.size(), 2u);
  ASSERT_EQ(kinds(a), (std::vector<std::string>{"unaligned_section", "unlabelled_text"}));
  EXPECT_EQ(a.problems[0].begin, -1);
  EXPECT_EQ(a.problems[0].excerpt, "Two plus two is four.");
  EXPECT_NE(a.problems[0].detail.find("section 2"), std::string::npos);
  EXPECT_NE(a.problems[0].detail.find("not in the annotated part"), std::string::npos);
}

TEST(LlmParse, SectionsOutOfOrder) {
  const Trace t = thinking(kTrace);
  const std::string reply =
      "[\"initializing\"]Okay, so I need to add 2 and 3.[\"end-section\"]"
      "[\"backtracking\"]Wait, maybe I misread the question.[\"end-section\"]"
      "[\"deduction\"]Two plus three is five.[\"end-section\"]"
      "[\"example-testing\"]Let me check with 1 + 1 = 2.[\"end-section\"]"
      "[\"uncertainty-estimation\"]I'm not sure this is right.[\"end-section\"]";
  const Annotation a = parse(reply, t);
  expect_contract(a, t);
  ASSERT_EQ(a.spans.size(), 4u);
  EXPECT_EQ(a.spans[1].label, 5);
  EXPECT_EQ(a.spans[2].label, 3);  // the cursor moved past "Two plus three": deduction is lost
  ASSERT_EQ(kinds(a), (std::vector<std::string>{"unlabelled_text", "unaligned_section"}));
  const std::u32string u = u32(kTrace);
  EXPECT_EQ(a.problems[0].begin, cp_range(u, U"Two plus three is five.").first);  // the gap the deduction left
  EXPECT_EQ(a.problems[0].end, cp_range(u, U"Two plus three is five.").second);
  EXPECT_NE(a.problems[1].detail.find("only before the end of the previous aligned section"), std::string::npos) << a.problems[1].detail;
}

TEST(LlmParse, GarbageAndEmptyReplies) {
  const Trace t = thinking(kTrace);
  for (const std::string& reply : {std::string("I cannot help with that."), std::string("[\"deduction\" oops ]] [[ \"\"]"),
                                   std::string("[\"end-section\"] just text [\"end-section\"]"), std::string("\xff\xfe\x80 binary \xc3")}) {
    const Annotation a = parse(reply, t);
    expect_contract(a, t);
    EXPECT_TRUE(a.spans.empty()) << reply;
    EXPECT_EQ(a.units, 0);
    ASSERT_EQ(kinds(a), std::vector<std::string>{"unparsed_output"}) << reply;
    EXPECT_EQ(a.problems[0].begin, -1);
    EXPECT_NE(a.problems[0].detail.find("no [\"label\"]"), std::string::npos) << a.problems[0].detail;
    EXPECT_FALSE(a.problems[0].excerpt.empty());
  }
  for (const std::string& reply : {std::string(), std::string(" \n\t ")}) {
    const Annotation a = parse(reply, t);
    EXPECT_TRUE(a.spans.empty());
    ASSERT_EQ(kinds(a), std::vector<std::string>{"unparsed_output"});
    EXPECT_EQ(a.problems[0].detail, "the reply is empty");
  }
  // A long reply is quoted, not copied.
  const Annotation a = parse(std::string(5000, 'x'), t);
  ASSERT_EQ(a.problems.size(), 1u);
  EXPECT_LE(a.problems[0].excerpt.size(), 203u);
}

TEST(LlmParse, TrailingTailIsRecorded) {
  const Trace t = thinking(kTrace);
  const Annotation a = parse("[\"initializing\"]Okay, so I need to add 2 and 3.[\"end-section\"][\"deduction\"]Two plus three is five.[\"end-section\"]", t);
  expect_contract(a, t);
  ASSERT_EQ(a.spans.size(), 2u);
  ASSERT_EQ(kinds(a), std::vector<std::string>{"unlabelled_text"});
  const std::u32string u = u32(kTrace);
  EXPECT_EQ(a.problems[0].begin, cp_range(u, U"Wait,").first);
  EXPECT_EQ(a.problems[0].end, cp_range(u, U"right.").second);  // up to the last character of the part
  EXPECT_EQ(a.problems[0].end, t.end - 1);                      // the part ends in "\n"
}

TEST(LlmParse, TextOutsideTheFormat) {
  const std::string text = "<think>We add the numbers.</think>";
  const Trace t = thinking(text);
  const Annotation a = parse("Here is the annotation:\n[\"deduction\"]We add the numbers.[\"end-section\"]\nHope this helps!", t);
  expect_contract(a, t);
  ASSERT_EQ(a.spans.size(), 1u);
  ASSERT_EQ(kinds(a), (std::vector<std::string>{"unparsed_output", "unparsed_output"}));
  EXPECT_EQ(a.problems[0].excerpt, "Here is the annotation:");
  EXPECT_NE(a.problems[0].detail.find("before the first section"), std::string::npos);
  EXPECT_EQ(a.problems[1].excerpt, "Hope this helps!");
  EXPECT_NE(a.problems[1].detail.find("after the last section"), std::string::npos);
}

TEST(LlmParse, MissingEndMarkersStrayMarkersAndEmptySections) {
  const Trace t = thinking(kTrace);
  // A missing end-section before the next section is tolerated; at the end of the reply it is recorded.
  Annotation a = parse("[\"initializing\"]Okay, so I need to add 2 and 3.[\"deduction\"]Two plus three is five.", t);
  expect_contract(a, t);
  ASSERT_EQ(a.spans.size(), 2u);
  EXPECT_EQ(kinds(a), (std::vector<std::string>{"unparsed_output", "unlabelled_text"}));
  EXPECT_NE(a.problems[0].detail.find("ends inside"), std::string::npos);
  // A stray end marker and an empty section.
  a = parse("[\"end-section\"][\"initializing\"]Okay, so I need to add 2 and 3.[\"end-section\"][\"deduction\"] [\"end-section\"]", t);
  expect_contract(a, t);
  ASSERT_EQ(a.spans.size(), 1u);
  EXPECT_EQ(kinds(a), (std::vector<std::string>{"unparsed_output", "unparsed_output", "unlabelled_text"}));
  EXPECT_NE(a.problems[0].detail.find("without a section"), std::string::npos);
  EXPECT_NE(a.problems[1].detail.find("is empty"), std::string::npos);
}

TEST(LlmParse, BracketedQuotesInsideTheTraceAreText) {
  const std::string text = "<think>Set d[\"key\"] = 1 first. Then read it back.</think>";
  const Trace t = thinking(text);
  const Annotation a = parse("[\"deduction\"]Set d[\"key\"] = 1 first.[\"end-section\"][\"deduction\"]Then read it back.[\"end-section\"]", t);
  expect_contract(a, t);
  EXPECT_TRUE(a.problems.empty()) << a.problems.front().detail;
  ASSERT_EQ(a.spans.size(), 2u);
  EXPECT_EQ(a.spans[0].begin, 7);
}

TEST(LlmParse, ThinkingModelRepliesAreReadAfterTheirThinking) {
  const std::string text = "<think>We add the numbers.</think>";
  const Trace t = thinking(text);
  const Annotation a = parse("<think>The user wants [\"deduction\"] labels.</think>\n[\"deduction\"]We add the numbers.[\"end-section\"]", t);
  EXPECT_TRUE(a.problems.empty());
  ASSERT_EQ(a.spans.size(), 1u);
}

TEST(LlmParse, NeverCrashesOnRandomReplies) {
  const Trace t = thinking(kTrace);
  const std::vector<std::string> pieces = {"[\"", "\"]", "deduction", "end-section", "backtracking", "Okay, so I need", " to add 2 and 3.",
                                           "Two plus three", " is five.", "\n", " ", "\xc3", "\xa9", "\xff", "[", "]", "\"", "</think>",
                                           "Wait, maybe I misread the question.", "é🙂"};
  std::mt19937 rng(7);
  for (int i = 0; i < 3000; ++i) {
    std::string reply;
    const int n = static_cast<int>(rng() % 40);
    for (int k = 0; k < n; ++k) reply += pieces[rng() % pieces.size()];
    const Annotation a = parse(reply, t);
    expect_contract(a, t);
    if (a.spans.empty()) {
      EXPECT_FALSE(a.problems.empty()) << reply;  // never empty without a record
    }
  }
}

TEST(LlmExcerpt, CutsAtCharacterBoundariesAndRepairsUtf8) {
  EXPECT_EQ(ts::llm_excerpt("short"), "short");
  EXPECT_EQ(ts::llm_excerpt("ééé", 3), "é…");
  EXPECT_EQ(ts::llm_excerpt("a\xff" "b"), "a\xEF\xBF\xBD" "b");
}

// A backend that answers from a script and records what it was asked.
class Scripted : public ts::LlmBackend {
 public:
  explicit Scripted(std::vector<ts::LlmReply> replies) : replies_(std::move(replies)) {}
  std::string identity() const override { return "scripted v1"; }
  std::vector<ts::LlmReply> complete(std::span<const std::string> prompts) const override {
    std::lock_guard lock(mu_);
    calls_.emplace_back(prompts.begin(), prompts.end());
    std::vector<ts::LlmReply> out;
    for (size_t i = 0; i < prompts.size(); ++i) out.push_back(replies_.at(next_++));
    return out;
  }
  std::vector<std::vector<std::string>> calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }

 private:
  std::vector<ts::LlmReply> replies_;
  mutable std::mutex mu_;
  mutable size_t next_ = 0;
  mutable std::vector<std::vector<std::string>> calls_;
};

TEST(LlmAnnotator, BatchesPromptsAndRecordsFailedRequests) {
  const std::string good = "[\"deduction\"]We add the numbers.[\"end-section\"]";
  auto backend = std::make_shared<Scripted>(std::vector<ts::LlmReply>{
      {true, good, "", 1}, {false, "", "HTTP 500: {\"error\": \"overloaded\"}", 4}, {true, "garbage", "", 2}});
  const ts::LlmAnnotator annotator(backend);
  const std::string a_text = "<think>\n  We add the numbers.  \n</think>", b_text = "<think>We add more.</think>", c_text = "<think>Hmm.</think>";
  const std::vector<Trace> traces = {thinking(a_text), thinking(b_text), thinking(c_text)};
  const std::vector<Annotation> out = annotator.annotate_batch(traces);
  ASSERT_EQ(out.size(), 3u);
  ASSERT_EQ(backend->calls().size(), 1u);  // one call for the whole batch
  ASSERT_EQ(backend->calls()[0].size(), 3u);
  EXPECT_EQ(backend->calls()[0][0], ts::llm_annotation_prompt("We add the numbers."));  // the part, stripped
  ASSERT_EQ(out[0].spans.size(), 1u);
  EXPECT_TRUE(out[0].problems.empty());
  EXPECT_TRUE(out[1].spans.empty());
  ASSERT_EQ(kinds(out[1]), std::vector<std::string>{"request_failed"});
  EXPECT_EQ(out[1].problems[0].begin, -1);
  EXPECT_EQ(out[1].problems[0].excerpt, "HTTP 500: {\"error\": \"overloaded\"}");
  EXPECT_NE(out[1].problems[0].detail.find("after 4 attempt(s)"), std::string::npos);
  EXPECT_EQ(kinds(out[2]), std::vector<std::string>{"unparsed_output"});
  EXPECT_EQ(annotator.name(), "llm");
  EXPECT_EQ(annotator.labels(), ts::behaviour_labels());
  EXPECT_EQ(annotator.identity().rfind("llm prompt sha256 ", 0), 0u);
  EXPECT_NE(annotator.identity().find("; scripted v1"), std::string::npos);
  EXPECT_EQ(annotator.identity(), ts::LlmAnnotator::identity_of("scripted v1"));
  // annotate() is a batch of one.
  auto one = std::make_shared<Scripted>(std::vector<ts::LlmReply>{{true, good, "", 1}});
  EXPECT_EQ(ts::LlmAnnotator(one).annotate(traces[0]).spans.size(), 1u);
}

}  // namespace
