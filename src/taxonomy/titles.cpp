// Offline cluster titles and representative sentences (titles.h; docs/algorithms.md §B.5).
#include "taxonomy/titles.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <numeric>
#include <set>
#include <sstream>
#include <unordered_map>

#include "core/splitmix.h"
#include "core/utf8.h"

namespace ts::taxonomy {

namespace {

// Letters: ASCII letters and non-ASCII code points outside the symbol and punctuation blocks (Latin-1
// signs, × and ÷, U+2000-U+2BFF punctuation, arrows, mathematical operators, shapes; CJK punctuation).
bool letter(char32_t cp) {
  if (cp < 0x80) return std::isalpha(static_cast<int>(cp)) != 0;
  if (cp < 0xC0 || cp == 0xD7 || cp == 0xF7) return false;
  if (cp >= 0x2000 && cp < 0x2C00) return false;
  if (cp >= 0x3000 && cp < 0x3040) return false;
  return true;
}

// Function words that never make a title term on their own (they still do inside a pair: "let me").
bool stopword(const std::string& w) {
  static const std::set<std::string> words = {
      "a", "an", "and", "are", "as", "at", "be", "but", "by", "do", "does", "for", "from", "has", "have", "i", "i'm", "if", "in", "is",
      "it", "it's", "its", "let", "let's", "me", "my", "of", "on", "or", "so", "that", "the", "then", "there", "this", "to", "was", "we",
      "what", "which", "with", "you"};
  return words.count(w) > 0;
}

// Articles, prepositions, conjunctions and copulas: a pair of two of them ("of the", "is to") is no term.
bool glue(const std::string& w) {
  static const std::set<std::string> words = {"a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "is", "it", "its",
                                              "of", "on", "or", "so", "that", "the", "then", "this", "to", "was", "with"};
  return words.count(w) > 0;
}

std::vector<std::string> words_of(std::string_view text) {
  std::vector<std::string> words;
  std::string cur;
  for (size_t i = 0; i <= text.size();) {
    const size_t at = i;
    char32_t cp = ' ';
    if (i < text.size()) {
      const size_t len = utf8::sequence_length(static_cast<unsigned char>(text[i]));
      if (i + len > text.size()) break;
      cp = utf8::next(text, i);
    } else {
      ++i;
    }
    const bool apostrophe_inside = cp == '\'' && !cur.empty() && i < text.size() && std::isalpha(static_cast<unsigned char>(text[i])) != 0;
    if (letter(cp) || apostrophe_inside) {
      if (cp < 0x80) cur.push_back(static_cast<char>(std::tolower(static_cast<int>(cp))));
      else cur.append(text.substr(at, i - at));
    } else if (!cur.empty()) {
      words.push_back(std::move(cur));
      cur.clear();
    }
  }
  if (!cur.empty()) words.push_back(std::move(cur));
  return words;
}

std::vector<std::string> split_words(const std::string& term) {
  std::vector<std::string> out;
  std::stringstream in(term);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

}  // namespace

std::vector<std::string> sentence_terms(std::string_view text) {
  const std::vector<std::string> words = words_of(text);
  std::set<std::string> terms;
  for (const std::string& w : words)
    if (!stopword(w)) terms.insert(w);
  for (size_t i = 0; i + 1 < words.size(); ++i)
    if (!glue(words[i]) || !glue(words[i + 1])) terms.insert(words[i] + " " + words[i + 1]);
  return {terms.begin(), terms.end()};
}

std::vector<std::vector<Term>> distinctive_terms(std::span<const std::string> texts, std::span<const int64_t> assign, int64_t k,
                                                 int64_t per_cluster) {
  // Document frequencies per cluster, terms numbered in order of first appearance.
  std::unordered_map<std::string, size_t> id;
  std::vector<std::string> names;
  std::vector<std::vector<int64_t>> count(static_cast<size_t>(k));  // [cluster][term]
  std::vector<int64_t> total, n_cluster(static_cast<size_t>(k), 0);
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto c = static_cast<size_t>(assign[i]);
    for (const std::string& t : sentence_terms(texts[i])) {
      auto [it, fresh] = id.emplace(t, names.size());
      if (fresh) {
        names.push_back(t);
        total.push_back(0);
      }
      std::vector<int64_t>& row = count[c];
      if (row.size() < names.size()) row.resize(names.size(), 0);
      ++row[it->second];
      ++total[it->second];
      ++n_cluster[c];
    }
  }
  const double f_all = static_cast<double>(std::accumulate(total.begin(), total.end(), int64_t{0}));
  const double a0 = std::min(f_all, 1000.0);
  std::vector<std::vector<Term>> out(static_cast<size_t>(k));
  for (size_t c = 0; c < static_cast<size_t>(k); ++c) {
    const double n_i = static_cast<double>(n_cluster[c]), n_o = f_all - n_i;
    std::vector<Term>& terms = out[c];
    for (size_t w = 0; w < count[c].size(); ++w) {
      const double y_i = static_cast<double>(count[c][w]), y_o = static_cast<double>(total[w]) - y_i;
      if (y_i < 2) continue;
      const double a = a0 * static_cast<double>(total[w]) / f_all;
      const double delta = std::log((y_i + a) / (n_i + a0 - y_i - a)) - std::log((y_o + a) / (n_o + a0 - y_o - a));
      const double z = delta / std::sqrt(1.0 / (y_i + a) + 1.0 / (y_o + a));
      if (z > 0) terms.push_back({names[w], z, count[c][w]});
    }
    std::sort(terms.begin(), terms.end(), [](const Term& x, const Term& y) {
      if (x.z != y.z) return x.z > y.z;
      if (x.count != y.count) return x.count > y.count;
      return x.text < y.text;
    });
    if (static_cast<int64_t>(terms.size()) > per_cluster) terms.resize(static_cast<size_t>(per_cluster));
  }
  return out;
}

std::string offline_title(std::span<const Term> terms, const std::string& fallback) {
  std::vector<std::string> taken;
  std::set<std::string> used;
  for (size_t i = 0; i < terms.size() && taken.size() < 3; ++i) {
    const Term* pick = &terms[i];
    // A single word gives way to a pair holding it that is nearly as distinctive ("figure out" over "figure").
    if (pick->text.find(' ') == std::string::npos)
      for (const Term& t : terms)
        if (t.text.find(' ') != std::string::npos && t.z >= 0.75 * pick->z) {
          const std::vector<std::string> pair = split_words(t.text);
          if (std::find(pair.begin(), pair.end(), pick->text) != pair.end()) {
            pick = &t;
            break;
          }
        }
    const std::vector<std::string> words = split_words(pick->text);
    if (std::any_of(words.begin(), words.end(), [&](const std::string& w) { return used.count(w) > 0; })) continue;
    used.insert(words.begin(), words.end());
    taken.push_back(pick->text);
  }
  if (taken.empty()) return fallback;
  std::string title = taken.front();
  for (size_t i = 1; i < taken.size(); ++i) title += ", " + taken[i];
  return title;
}

Representatives representative_rows(std::span<const double> dist, std::span<const int64_t> assign, int64_t cluster, int64_t n_close,
                                    int64_t n_random, uint64_t seed) {
  std::vector<std::pair<double, int64_t>> members;  // (squared distance, row)
  for (size_t i = 0; i < assign.size(); ++i)
    if (assign[i] == cluster) members.emplace_back(dist[i], static_cast<int64_t>(i));
  std::sort(members.begin(), members.end());
  Representatives r;
  const size_t close = std::min(members.size(), static_cast<size_t>(std::max<int64_t>(n_close, 0)));
  for (size_t i = 0; i < close; ++i) r.closest.push_back(members[i].second);
  std::vector<int64_t> rest;
  for (size_t i = close; i < members.size(); ++i) rest.push_back(members[i].second);
  r.random = seeded_sample(std::move(rest), static_cast<size_t>(std::max<int64_t>(n_random, 0)), seed);
  return r;
}

std::vector<int64_t> seeded_sample(std::vector<int64_t> pool, size_t n, uint64_t seed) {
  n = std::min(n, pool.size());
  for (size_t i = 0; i < n; ++i) {
    const size_t j = i + static_cast<size_t>(splitmix_uniform01(seed, i) * static_cast<double>(pool.size() - i));
    std::swap(pool[i], pool[std::min(j, pool.size() - 1)]);
  }
  pool.resize(n);
  return pool;
}

}  // namespace ts::taxonomy
