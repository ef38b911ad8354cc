// The lexicon annotator (src/annotate/lexicon.h): the shipped rules on R1-style sentences and on the
// toy corpus's planted labels (>= 98% of sentences), the file format's validation, and the
// annotator contract (offsets into the whole trace, problems instead of silent drops).
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>

#include "annotate/lexicon.h"
#include "core/sentences.h"
#include "core/error.h"
#include "toy/corpus.h"

namespace {

const std::string kShipped = std::string(THINKSTEER_SOURCE_DIR) + "/configs/annotate/lexicon.txt";

const ts::Lexicon& shipped() {
  static const ts::Lexicon lex = ts::Lexicon::read(kShipped);
  return lex;
}

std::string label_of(const std::string& sentence) {
  const ts::LexiconRule* rule = shipped().match(sentence);
  if (rule) return shipped().labels()[static_cast<size_t>(rule->label)];
  return shipped().default_label() >= 0 ? shipped().labels()[static_cast<size_t>(shipped().default_label())] : "unlabelled";
}

TEST(Lexicon, ShippedFileParses) {
  const ts::Lexicon& lex = shipped();
  EXPECT_EQ(lex.labels(), ts::behaviour_labels());
  EXPECT_EQ(lex.labels()[static_cast<size_t>(lex.default_label())], "deduction");
  EXPECT_GT(lex.rules().size(), 40u);
  EXPECT_EQ(lex.sha256().size(), 64u);
  // Priority: the sections' order in the file.
  EXPECT_EQ(lex.labels()[static_cast<size_t>(lex.rules().front().label)], "backtracking");
}

// Phrasings of real thinking traces, none of them a toy template.
TEST(Lexicon, ShippedRulesOnR1StyleSentences) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"Wait, I think I made an error in the second step.", "backtracking"},
      {"Hold on, the radius was 5, not 10.", "backtracking"},
      {"That’s not right, the derivative of x^2 is 2x.", "backtracking"},
      {"Actually, a better way is to use symmetry.", "backtracking"},
      {"Let me double-check by plugging x = 3 back into the equation.", "example-testing"},
      {"Let's verify this with a small case like n = 2.", "example-testing"},
      {"For example, if the list has 4 elements, we get 6 pairs.", "example-testing"},
      {"Hmm, I'm not entirely sure about this approach.", "uncertainty-estimation"},
      {"Maybe the question means something else.", "uncertainty-estimation"},
      {"I recall that the angles of a triangle sum to 180 degrees.", "adding-knowledge"},
      {"Note that every prime greater than 2 is odd.", "adding-knowledge"},
      {"The formula for the area of a circle is pi r squared.", "adding-knowledge"},
      {"Okay, so I need to find the number of ways to arrange the books.", "initializing"},
      {"The problem asks for the smallest positive integer n.", "initializing"},
      {"Let me break this down step by step.", "initializing"},
      {"So the total is 3 + 4 = 7 apples.", "deduction"},
      {"Therefore the derivative equals 2x + 3.", "deduction"},
  };
  for (const auto& [sentence, label] : cases) EXPECT_EQ(label_of(sentence), label) << sentence;
}

// Agreement with the planted labels of the default toy corpus, both styles, and of the thinker with the
// arithmetic-free sentences of toy.plain_echoes, toy.plain_backtracking and toy.rechecks (the steering
// experiments measure them with this lexicon): every sentence of the corpus must come back as a span
// with its exact range, and >= 98% with its label.
TEST(Lexicon, AgreesWithToyCorpusLabels) {
  const ts::LexiconAnnotator annotator(ts::Lexicon::read(kShipped));
  const std::vector<std::string>& labels = ts::behaviour_labels();
  for (const std::string style : {"thinker", "base", "thinker-plain"}) {
    ts::ToyCorpusOptions o;
    o.style = style == "base" ? "base" : "thinker";
    if (style == "thinker-plain") o.echoes = 0.7, o.plain_echoes = o.plain_backtracking = true, o.rechecks = 0.4;
    std::map<std::string, std::map<std::string, int64_t>> confusion;  // truth -> annotated -> count
    int64_t total = 0, agree = 0;
    for (const ts::ToyProblem& p : ts::toy_corpus_generate(o)) {
      const ts::TextRange part = ts::thinking_range(p.text);
      const ts::Annotation a = annotator.annotate({p.id, p.text, part.begin, part.end});
      std::map<std::pair<int64_t, int64_t>, std::string> got;
      for (const auto& s : a.spans) got[{s.begin, s.end}] = labels[static_cast<size_t>(s.label)];
      for (const ts::ToySentence& s : p.sentences) {
        const auto it = got.find({s.begin, s.end});
        const std::string label = it == got.end() ? "(no span)" : it->second;
        ++confusion[s.label][label];
        ++total;
        agree += label == s.label;
      }
      EXPECT_EQ(a.spans.size(), p.sentences.size()) << p.id;
    }
    std::ostringstream report;
    report << "lexicon vs planted labels, " << style << " style: " << agree << " / " << total << " sentences agree ("
           << std::fixed << std::setprecision(2) << 100.0 * static_cast<double>(agree) / static_cast<double>(total) << "%)\n";
    for (const auto& [truth, row] : confusion) {
      int64_t n = 0;
      for (const auto& [label, count] : row) n += count;
      report << "  " << std::left << std::setw(24) << truth << std::right << std::setw(6) << n << " sentences, "
             << std::setw(7) << 100.0 * static_cast<double>(row.count(truth) ? row.at(truth) : 0) / static_cast<double>(n) << "% agree";
      for (const auto& [label, count] : row)
        if (label != truth) report << "; " << count << " -> " << label;
      report << "\n";
    }
    std::cout << report.str();
    EXPECT_GT(total, 8000) << style;
    EXPECT_GE(static_cast<double>(agree), 0.98 * static_cast<double>(total)) << report.str();
  }
}

// parse() on text; the error message of a bad lexicon.
std::string error_of(const std::string& text) {
  try {
    ts::Lexicon::parse(text, "my.lex");
  } catch (const ts::InputError& e) {
    return e.what();
  }
  return "no error";
}

TEST(Lexicon, FormatErrorsNameFileLineAndProblem) {
  EXPECT_EQ(error_of("[backtracking]\nwait\n[thinking]\nhmm\n"),
            "my.lex: line 3: unknown label 'thinking' (labels: initializing, deduction, adding-knowledge, example-testing, "
            "uncertainty-estimation, backtracking)");
  EXPECT_NE(error_of("[backtracking]\nwait\n(unclosed\n").find("my.lex: line 3: regex does not compile"), std::string::npos);
  EXPECT_EQ(error_of("# c\n[backtracking]\n\n# nothing\n[deduction]\nso\n"), "my.lex: line 2: empty section [backtracking]: it holds no pattern");
  EXPECT_EQ(error_of("[deduction]\nso\n[backtracking]\n"), "my.lex: line 3: empty section [backtracking]: it holds no pattern");
  EXPECT_EQ(error_of("[deduction]\nso\n[deduction]\ntherefore\n"), "my.lex: line 3: section [deduction] given twice (first at line 1)");
  EXPECT_NE(error_of("wait\n[backtracking]\nx\n").find("my.lex: line 1: 'wait' outside a section"), std::string::npos);
  EXPECT_EQ(error_of("default = deduction\ndefault = backtracking\n[deduction]\nso\n"), "my.lex: line 2: default given twice (first at line 1)");
  EXPECT_NE(error_of("default = musing\n[deduction]\nso\n").find("my.lex: line 1: unknown label 'musing'"), std::string::npos);
  EXPECT_EQ(error_of("[deduction\nso\n"), "my.lex: line 1: malformed section header '[deduction' (expected [label])");
  EXPECT_NE(error_of("[deduction]\nso|\n").find("my.lex: line 2: pattern 'so|' matches the empty string"), std::string::npos);
  EXPECT_EQ(error_of("# only comments\n\ndefault = deduction\n"), "my.lex: <file>: no [label] section: the lexicon would label nothing");
  EXPECT_THROW(ts::Lexicon::read("/nonexistent/lexicon.txt"), ts::InputError);
}

TEST(Lexicon, FormatDetails) {
  // CRLF line ends, indentation, comments, `unlabelled` default; patterns are case-insensitive.
  const ts::Lexicon lex = ts::Lexicon::parse("# c\r\n  default = unlabelled \r\n[backtracking]\r\n  \\bwait\\b\r\n[deduction]\n\\bso\\b\n", "x");
  EXPECT_EQ(lex.default_label(), -1);
  ASSERT_EQ(lex.rules().size(), 2u);
  EXPECT_EQ(lex.rules()[0].pattern, "\\bwait\\b");
  EXPECT_EQ(lex.rules()[0].line, 4);
  ASSERT_NE(lex.match("WAIT, no."), nullptr);
  EXPECT_EQ(lex.match("WAIT, no.")->line, 4);
  EXPECT_EQ(lex.match("awaiting so"), &lex.rules()[1]);
  EXPECT_EQ(lex.match("nothing here"), nullptr);
}

TEST(LexiconAnnotator, SpansAndProblemsInTraceOffsets) {
  const ts::LexiconAnnotator a(ts::Lexicon::parse("[backtracking]\nwait\n[example-testing]\ncheck\n", "rules.lex"));
  const std::string text = "Q × ?<think>\nWait, that is off here. Let me check it again. So it is five. Ok.\n</think> The end.";
  const ts::TextRange part = ts::thinking_range(text);
  const ts::Annotation r = a.annotate({"t", text, part.begin, part.end});
  EXPECT_EQ(r.units, 3);
  ASSERT_EQ(r.spans.size(), 2u);
  EXPECT_EQ(r.spans[0].label, 5);  // backtracking
  EXPECT_EQ(r.spans[0].begin, 13);  // code points of the whole text ("<think>" ends at 12, then "\n")
  EXPECT_EQ(r.spans[0].end, 36);
  EXPECT_EQ(r.spans[0].rule, "rules.lex:2");
  EXPECT_EQ(r.spans[1].label, 3);
  EXPECT_EQ(r.spans[1].rule, "rules.lex:4");
  ASSERT_EQ(r.problems.size(), 2u);  // no default label: the third sentence is reported, as is "Ok."
  EXPECT_EQ(r.problems[0].kind, "unlabelled_sentence");
  EXPECT_EQ(r.problems[0].begin, 60);
  EXPECT_EQ(r.problems[0].end, 74);
  EXPECT_EQ(r.problems[1].kind, "short_fragment");
  EXPECT_EQ(r.problems[1].begin, 75);
  EXPECT_EQ(r.problems[1].end, 78);

  const ts::Annotation empty = a.annotate({"e", text, 12, 12});
  EXPECT_TRUE(empty.spans.empty());
  ASSERT_EQ(empty.problems.size(), 1u);
  EXPECT_EQ(empty.problems[0].kind, "no_sentences");
}

}  // namespace
