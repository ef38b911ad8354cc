// Toy evaluator: answer checking and the report (evaluate.h); sentences are split by core/sentences and
// labelled by toy/phrasings.
#include "toy/evaluate.h"

#include <algorithm>
#include <cmath>
#include <map>

namespace ts {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::string_view strip(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// "[+-]?digits" -> the canonical decimal ("-0" and leading zeros folded); nullopt otherwise.
std::optional<std::string> canonical_integer(std::string_view s) {
  s = strip(s);
  bool negative = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s.empty() || !std::all_of(s.begin(), s.end(), is_digit)) return std::nullopt;
  while (s.size() > 1 && s[0] == '0') s.remove_prefix(1);
  if (s == "0") negative = false;
  std::string out = negative ? "-" : "";
  out.append(s);
  return out;
}

double share(int64_t part, int64_t whole) { return whole > 0 ? static_cast<double>(part) / static_cast<double>(whole) : 0.0; }

}  // namespace

std::optional<std::string> toy_extract_answer(std::string_view s) {
  static constexpr std::string_view kBoxed = "\\boxed{";
  std::optional<std::string> boxed;
  for (size_t pos = s.find(kBoxed); pos != std::string_view::npos; pos = s.find(kBoxed, pos + 1)) {
    const size_t open = pos + kBoxed.size();
    int depth = 1;
    size_t i = open;
    for (; i < s.size() && depth > 0; ++i) depth += s[i] == '{' ? 1 : s[i] == '}' ? -1 : 0;
    if (depth == 0) boxed = std::string(strip(s.substr(open, i - 1 - open)));
  }
  if (boxed) return boxed;
  for (size_t e = s.size(); e > 0; --e) {
    if (!is_digit(s[e - 1])) continue;
    size_t b = e - 1;
    while (b > 0 && is_digit(s[b - 1])) --b;
    if (b > 0 && s[b - 1] == '-') --b;
    return std::string(s.substr(b, e - b));
  }
  return std::nullopt;
}

bool toy_answers_equal(std::string_view a, std::string_view b) {
  const auto x = canonical_integer(a), y = canonical_integer(b);
  return x && y && *x == *y;
}

ToyEvalReport toy_evaluate(const std::vector<ToyGeneration>& generated, const std::vector<ToyProblem>& corpus) {
  ToyEvalReport r;
  std::map<std::string, int64_t> gen_count, corpus_count;
  for (const ToyGeneration& g : generated) {
    ToyRowResult row;
    row.id = g.id;
    row.closed = g.thinking_closed;
    if (row.closed) row.answer = toy_extract_answer(g.answer_text);
    row.correct = row.answer && toy_answers_equal(*row.answer, g.reference_answer);
    for (const TextSpan& s : toy_split_sentences(g.thinking)) {
      const std::string label = toy_label_sentence(s.text);
      ++gen_count[label];
      ++row.sentences;
      row.unlabelled += label == "unlabelled";
    }
    r.n_closed += row.closed;
    r.n_parseable += row.answer.has_value();
    r.n_correct += row.correct;
    r.generated_sentences += row.sentences;
    r.rows.push_back(std::move(row));
  }
  r.n = static_cast<int64_t>(generated.size());
  r.closed_rate = share(r.n_closed, r.n);
  r.parseable_rate = share(r.n_parseable, r.n);
  r.accuracy = share(r.n_correct, r.n);
  r.generated_unlabelled = gen_count["unlabelled"];
  r.unlabelled_share = share(r.generated_unlabelled, r.generated_sentences);

  int64_t corpus_correct = 0;
  for (const ToyProblem& p : corpus) {
    for (const ToySentence& s : p.sentences) ++corpus_count[s.label];
    r.corpus_sentences += static_cast<int64_t>(p.sentences.size());
    corpus_correct += p.final_answer == p.answer;
  }
  r.corpus_problems = static_cast<int64_t>(corpus.size());
  r.corpus_accuracy = share(corpus_correct, r.corpus_problems);

  for (const std::string& label : toy_behaviour_labels()) {
    ToyLabelShare l;
    l.label = label;
    l.generated_sentences = gen_count[label];
    l.corpus_sentences = corpus_count[label];
    l.generated_share = share(l.generated_sentences, r.generated_sentences);
    l.corpus_share = share(l.corpus_sentences, r.corpus_sentences);
    l.diff_pp = 100.0 * (l.generated_share - l.corpus_share);
    r.max_abs_diff_pp = std::max(r.max_abs_diff_pp, std::abs(l.diff_pp));
    r.labels.push_back(l);
  }
  return r;
}

json toy_eval_report_json(const ToyEvalReport& r) {
  json labels = json::object();
  for (const ToyLabelShare& l : r.labels)
    labels[l.label] = {{"generated_share", l.generated_share}, {"corpus_share", l.corpus_share}, {"diff_pp", l.diff_pp},
                       {"generated_sentences", l.generated_sentences}, {"corpus_sentences", l.corpus_sentences}};
  json rows = json::array();
  for (const ToyRowResult& row : r.rows)
    rows.push_back({{"id", row.id},
                    {"closed", row.closed},
                    {"answer", row.answer ? json(*row.answer) : json(nullptr)},
                    {"correct", row.correct},
                    {"sentences", row.sentences},
                    {"unlabelled", row.unlabelled}});
  return json{{"n", r.n},
              {"n_closed", r.n_closed},
              {"n_parseable", r.n_parseable},
              {"n_correct", r.n_correct},
              {"closed_rate", r.closed_rate},
              {"parseable_rate", r.parseable_rate},
              {"accuracy", r.accuracy},
              {"sentences", r.generated_sentences},
              {"unlabelled_share", r.unlabelled_share},
              {"labels", labels},
              {"max_abs_diff_pp", r.max_abs_diff_pp},
              {"corpus", {{"problems", r.corpus_problems}, {"sentences", r.corpus_sentences}, {"accuracy", r.corpus_accuracy}}},
              {"rows", rows}};
}

}  // namespace ts
