// The language-model side of the taxonomy (docs/algorithms.md §B.5, §B.6): the prompts that ask for a
// cluster's title, grade sentences against a title (accuracy autograder) and rate a sentence's fit to
// its cluster (completeness), and the parsers of the replies. Torch-free and transport-free: the
// stage hands the prompts to the llm annotator's backends (annotate/llm.h) and these functions turn the
// replies into numbers. A reply that does not parse is reported (nullopt), never guessed.
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ts::taxonomy {

// §B.5: the cluster's example sentences (the representative ones, shuffled by the caller) and a few
// whole traces for context; the reply must hold `Title: ...` and `Description: ...`.
std::string title_prompt(std::span<const std::string> examples, std::span<const std::string> traces);
struct TitleReply {
  std::string title, description;
};
// The first `Title:` line and the `Description:` text after it (to the end or a blank line), trimmed;
// nullopt when either is missing or empty.
std::optional<TitleReply> parse_title_reply(std::string_view reply);

// §B.6 accuracy autograder: numbered sentences, asking which belong to the category by function, not
// topic; the reply is JSON {"classifications": [{"sentence_id": i, "belongs_to_category": true|false, ...}]}.
std::string autograder_prompt(const std::string& title, const std::string& description, std::span<const std::string> sentences);
// One verdict per sentence (ids 0..n-1); nullopt when the reply is not that JSON (a fenced ```json block
// is accepted) or an id is missing, repeated or out of range.
std::optional<std::vector<bool>> parse_autograder_reply(std::string_view reply, size_t n);

// §B.6 completeness: how well the sentence fits its assigned category, 0 (very poor) to 10 (perfect);
// the reply's first integer in [0, 10] after "Score:" (or alone).
std::string completeness_prompt(const std::string& title, const std::string& description, const std::string& sentence);
std::optional<int> parse_completeness_reply(std::string_view reply);

// Per-cluster F1 of the autograder's verdicts against membership (the positives are the cluster's own
// sentences); 0 when there is no true positive.
double f1_score(const std::vector<bool>& truth, const std::vector<bool>& verdict);

}  // namespace ts::taxonomy
