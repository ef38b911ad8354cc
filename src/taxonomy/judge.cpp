// Prompts and reply parsers of the taxonomy's language-model judge (judge.h; docs/algorithms.md §B.5, §B.6).
#include "taxonomy/judge.h"

#include <cctype>
#include <set>

#include "core/json.h"

namespace ts::taxonomy {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// The text after the first line starting with `key` (case-sensitive, after optional markdown ** or #).
std::optional<size_t> find_key(std::string_view reply, std::string_view key) {
  for (size_t at = 0; at < reply.size();) {
    size_t line_end = reply.find('\n', at);
    if (line_end == std::string_view::npos) line_end = reply.size();
    std::string_view line = reply.substr(at, line_end - at);
    size_t skip = 0;
    while (skip < line.size() && (line[skip] == '*' || line[skip] == '#' || line[skip] == ' ')) ++skip;
    if (line.substr(skip, key.size()) == key) {
      size_t after = skip + key.size();
      while (after < line.size() && line[after] == '*') ++after;
      return at + after;
    }
    at = line_end + 1;
  }
  return std::nullopt;
}

const char* CATEGORY_EXAMPLE =
    "Title: Expressing Uncertainty\n"
    "Description: The reasoner states doubt about a step, a value or its own approach, without yet changing it. It includes "
    "hedges and admissions of not being sure; it does not include the correction that may follow.\n";

}  // namespace

std::string title_prompt(std::span<const std::string> examples, std::span<const std::string> traces) {
  std::string p =
      "Below are sentences from the reasoning of a language model that a clustering method put in one group. Find the single "
      "cognitive function these sentences share: what the sentence does in the reasoning, not what it is about.\n\n";
  if (!traces.empty()) {
    p += "For context, some whole reasoning traces:\n";
    for (size_t i = 0; i < traces.size(); ++i) p += "<trace " + std::to_string(i + 1) + ">\n" + traces[i] + "\n</trace>\n";
    p += "\n";
  }
  p += "An example of the expected form, for another category:\n" + std::string(CATEGORY_EXAMPLE) + "\nThe sentences of the group:\n";
  for (size_t i = 0; i < examples.size(); ++i) p += std::to_string(i + 1) + ". " + examples[i] + "\n";
  p += "\nAnswer in exactly this form:\nTitle: <a crisp title naming one concept, without slashes or parentheses>\n"
       "Description: <2 to 3 sentences: the abstract function, what is included and what is not>\n";
  return p;
}

std::optional<TitleReply> parse_title_reply(std::string_view reply) {
  const std::optional<size_t> t = find_key(reply, "Title:"), d = find_key(reply, "Description:");
  if (!t || !d || *d < *t) return std::nullopt;
  size_t t_end = reply.find('\n', *t);
  TitleReply r;
  r.title = std::string(trim(reply.substr(*t, (t_end == std::string_view::npos ? reply.size() : t_end) - *t)));
  size_t d_end = reply.find("\n\n", *d);
  r.description = std::string(trim(reply.substr(*d, (d_end == std::string_view::npos ? reply.size() : d_end) - *d)));
  if (r.title.empty() || r.description.empty()) return std::nullopt;
  return r;
}

std::string autograder_prompt(const std::string& title, const std::string& description, std::span<const std::string> sentences) {
  std::string p = "A category of sentences in the reasoning of a language model:\nTitle: " + title + "\nDescription: " + description +
                  "\n\nFor each sentence below, decide whether it belongs to this category by its function in the reasoning, not "
                  "by its topic.\n\n";
  for (size_t i = 0; i < sentences.size(); ++i) p += "Sentence " + std::to_string(i) + ": " + sentences[i] + "\n";
  p += "\nAnswer with JSON only: {\"classifications\": [{\"sentence_id\": <number>, \"explanation\": \"<short>\", "
       "\"belongs_to_category\": true or false}, ...]} with one entry per sentence.\n";
  return p;
}

std::optional<std::vector<bool>> parse_autograder_reply(std::string_view reply, size_t n) {
  const size_t open = reply.find('{'), close = reply.rfind('}');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open) return std::nullopt;
  json j;
  try {
    j = json::parse(reply.substr(open, close - open + 1));
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (!j.is_object() || !j.contains("classifications") || !j["classifications"].is_array()) return std::nullopt;
  std::vector<bool> out(n, false);
  std::set<int64_t> seen;
  for (const json& c : j["classifications"]) {
    if (!c.is_object() || !c.contains("sentence_id") || !c.contains("belongs_to_category")) return std::nullopt;
    const json& id = c["sentence_id"];
    const json& yes = c["belongs_to_category"];
    if (!id.is_number_integer() || !yes.is_boolean()) return std::nullopt;
    const int64_t i = id.get<int64_t>();
    if (i < 0 || static_cast<size_t>(i) >= n || !seen.insert(i).second) return std::nullopt;
    out[static_cast<size_t>(i)] = yes.get<bool>();
  }
  if (seen.size() != n) return std::nullopt;
  return out;
}

std::string completeness_prompt(const std::string& title, const std::string& description, const std::string& sentence) {
  return "A category of sentences in the reasoning of a language model:\nTitle: " + title + "\nDescription: " + description +
         "\n\nSentence: " + sentence +
         "\n\nHow well does this sentence fit the category, by its function in the reasoning? Rate from 0 to 10: 0 very poor (it "
         "does something else), 5 partly, 10 perfect (a clear instance). Answer with one line: Score: <0-10>\n";
}

std::optional<int> parse_completeness_reply(std::string_view reply) {
  const std::optional<size_t> key = find_key(reply, "Score:");
  std::string_view rest = key ? reply.substr(*key) : trim(reply);
  size_t i = 0;
  while (i < rest.size() && std::isspace(static_cast<unsigned char>(rest[i]))) ++i;
  size_t j = i;
  while (j < rest.size() && std::isdigit(static_cast<unsigned char>(rest[j]))) ++j;
  if (j == i || j - i > 2) return std::nullopt;
  if (!key && trim(rest).size() != j - i) return std::nullopt;  // without "Score:", the reply must be the number alone
  const int v = std::stoi(std::string(rest.substr(i, j - i)));
  if (v < 0 || v > 10) return std::nullopt;
  return v;
}

double f1_score(const std::vector<bool>& truth, const std::vector<bool>& verdict) {
  double tp = 0, fp = 0, fn = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    tp += truth[i] && verdict[i];
    fp += !truth[i] && verdict[i];
    fn += truth[i] && !verdict[i];
  }
  return tp == 0 ? 0.0 : 2 * tp / (2 * tp + fp + fn);
}

}  // namespace ts::taxonomy
