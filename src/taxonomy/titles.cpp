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

namespace ts::taxonomy {

namespace {

bool word_byte(unsigned char c) { return std::isalpha(c) != 0 || c >= 0x80; }

std::vector<std::string> words_of(std::string_view text) {
  std::vector<std::string> words;
  std::string cur;
  for (size_t i = 0; i <= text.size(); ++i) {
    const unsigned char c = i < text.size() ? static_cast<unsigned char>(text[i]) : ' ';
    const bool apostrophe_inside = (c == '\'') && !cur.empty() && i + 1 < text.size() && word_byte(static_cast<unsigned char>(text[i + 1]));
    if (word_byte(c) || apostrophe_inside) {
      cur.push_back(c < 0x80 ? static_cast<char>(std::tolower(c)) : static_cast<char>(c));
    } else if (!cur.empty()) {
      words.push_back(std::move(cur));
      cur.clear();
    }
  }
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
  std::set<std::string> terms(words.begin(), words.end());
  for (size_t i = 0; i + 1 < words.size(); ++i) terms.insert(words[i] + " " + words[i + 1]);
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
  for (const Term& t : terms) {
    const std::vector<std::string> words = split_words(t.text);
    if (std::any_of(words.begin(), words.end(), [&](const std::string& w) { return used.count(w) > 0; })) continue;
    used.insert(words.begin(), words.end());
    taken.push_back(t.text);
    if (taken.size() == 3) break;
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
  // A seeded partial Fisher-Yates shuffle of the rest.
  std::vector<int64_t> rest;
  for (size_t i = close; i < members.size(); ++i) rest.push_back(members[i].second);
  const size_t draw = std::min(rest.size(), static_cast<size_t>(std::max<int64_t>(n_random, 0)));
  for (size_t i = 0; i < draw; ++i) {
    const size_t j = i + static_cast<size_t>(splitmix_uniform01(seed, i) * static_cast<double>(rest.size() - i));
    std::swap(rest[i], rest[std::min(j, rest.size() - 1)]);
    r.random.push_back(rest[i]);
  }
  return r;
}

}  // namespace ts::taxonomy
