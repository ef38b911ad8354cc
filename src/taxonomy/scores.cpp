#include "taxonomy/scores.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace ts::taxonomy {
namespace {

std::vector<int64_t> row_sums(const Contingency& t) {
  std::vector<int64_t> a(static_cast<size_t>(t.n_clusters), 0);
  for (int64_t c = 0; c < t.n_clusters; ++c)
    for (int64_t l = 0; l < t.n_labels; ++l) a[static_cast<size_t>(c)] += t.at(c, l);
  return a;
}

std::vector<int64_t> col_sums(const Contingency& t) {
  std::vector<int64_t> b(static_cast<size_t>(t.n_labels), 0);
  for (int64_t c = 0; c < t.n_clusters; ++c)
    for (int64_t l = 0; l < t.n_labels; ++l) b[static_cast<size_t>(l)] += t.at(c, l);
  return b;
}

double entropy(const std::vector<int64_t>& sizes, int64_t n) {
  double h = 0;
  for (int64_t s : sizes)
    if (s > 0) {
      const double p = static_cast<double>(s) / static_cast<double>(n);
      h -= p * std::log(p);
    }
  return h;
}

int64_t non_empty(const std::vector<int64_t>& sizes) {
  return std::count_if(sizes.begin(), sizes.end(), [](int64_t s) { return s > 0; });
}

double pairs(int64_t k) { return 0.5 * static_cast<double>(k) * static_cast<double>(k - 1); }

}  // namespace

Contingency contingency(std::span<const int64_t> clusters, std::span<const int64_t> labels) {
  if (clusters.size() != labels.size())
    throw std::invalid_argument("contingency: " + std::to_string(clusters.size()) + " cluster ids but " +
                                std::to_string(labels.size()) + " labels");
  Contingency t;
  for (size_t i = 0; i < clusters.size(); ++i) {
    if (clusters[i] < 0 || labels[i] < 0) throw std::invalid_argument("contingency: negative id at item " + std::to_string(i));
    t.n_clusters = std::max(t.n_clusters, clusters[i] + 1);
    t.n_labels = std::max(t.n_labels, labels[i] + 1);
  }
  t.n = static_cast<int64_t>(clusters.size());
  t.counts.assign(static_cast<size_t>(t.n_clusters * t.n_labels), 0);
  for (size_t i = 0; i < clusters.size(); ++i) ++t.counts[static_cast<size_t>(clusters[i] * t.n_labels + labels[i])];
  return t;
}

double normalized_mutual_info(const Contingency& t) {
  const auto a = row_sums(t), b = col_sums(t);
  const int64_t ka = non_empty(a), kb = non_empty(b);
  if ((ka == 1 && kb == 1) || t.n == 0) return 1.0;  // neither partition splits the data: a perfect match
  double mi = 0;
  const double n = static_cast<double>(t.n);
  for (int64_t c = 0; c < t.n_clusters; ++c)
    for (int64_t l = 0; l < t.n_labels; ++l)
      if (const int64_t m = t.at(c, l); m > 0)
        mi += (static_cast<double>(m) / n) *
              std::log(static_cast<double>(m) * n / (static_cast<double>(a[static_cast<size_t>(c)]) * static_cast<double>(b[static_cast<size_t>(l)])));
  const double norm = std::max(0.5 * (entropy(a, t.n) + entropy(b, t.n)), std::numeric_limits<double>::epsilon());
  return std::max(mi, 0.0) / norm;
}

double adjusted_rand_index(const Contingency& t) {
  const auto a = row_sums(t), b = col_sums(t);
  double index = 0, sum_a = 0, sum_b = 0;
  for (int64_t m : t.counts) index += pairs(m);
  for (int64_t s : a) sum_a += pairs(s);
  for (int64_t s : b) sum_b += pairs(s);
  const double total = pairs(t.n);
  if (total == 0) return 1.0;
  const double expected = sum_a * sum_b / total, max_index = 0.5 * (sum_a + sum_b);
  if (max_index == expected) return 1.0;  // both partitions trivial (one class, or all singletons): identical
  return (index - expected) / (max_index - expected);
}

double majority_accuracy(const Contingency& t) {
  if (t.n == 0) return 0.0;
  int64_t right = 0;
  for (int64_t c = 0; c < t.n_clusters; ++c) {
    int64_t best = 0;
    for (int64_t l = 0; l < t.n_labels; ++l) best = std::max(best, t.at(c, l));
    right += best;
  }
  return static_cast<double>(right) / static_cast<double>(t.n);
}

std::vector<int64_t> hungarian_match(const Contingency& t) {
  // Minimum-cost assignment on the square matrix cost[c][l] = -counts (padding rows/columns cost 0),
  // the O(n^3) shortest-augmenting-path form with potentials u (rows) and v (columns), 1-based.
  const int64_t n = std::max(t.n_clusters, t.n_labels);
  auto cost = [&](int64_t c, int64_t l) -> double {
    return (c < t.n_clusters && l < t.n_labels) ? -static_cast<double>(t.at(c, l)) : 0.0;
  };
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> u(static_cast<size_t>(n + 1), 0), v(static_cast<size_t>(n + 1), 0);
  std::vector<int64_t> row_of_col(static_cast<size_t>(n + 1), 0), way(static_cast<size_t>(n + 1), 0);
  for (int64_t i = 1; i <= n; ++i) {
    row_of_col[0] = i;
    int64_t j0 = 0;
    std::vector<double> min_to(static_cast<size_t>(n + 1), inf);
    std::vector<char> used(static_cast<size_t>(n + 1), 0);
    do {
      used[static_cast<size_t>(j0)] = 1;
      const int64_t i0 = row_of_col[static_cast<size_t>(j0)];
      double delta = inf;
      int64_t j1 = 0;
      for (int64_t j = 1; j <= n; ++j) {
        if (used[static_cast<size_t>(j)]) continue;
        const double cur = cost(i0 - 1, j - 1) - u[static_cast<size_t>(i0)] - v[static_cast<size_t>(j)];
        if (cur < min_to[static_cast<size_t>(j)]) {
          min_to[static_cast<size_t>(j)] = cur;
          way[static_cast<size_t>(j)] = j0;
        }
        if (min_to[static_cast<size_t>(j)] < delta) {
          delta = min_to[static_cast<size_t>(j)];
          j1 = j;
        }
      }
      for (int64_t j = 0; j <= n; ++j) {
        if (used[static_cast<size_t>(j)]) {
          u[static_cast<size_t>(row_of_col[static_cast<size_t>(j)])] += delta;
          v[static_cast<size_t>(j)] -= delta;
        } else {
          min_to[static_cast<size_t>(j)] -= delta;
        }
      }
      j0 = j1;
    } while (row_of_col[static_cast<size_t>(j0)] != 0);
    do {
      const int64_t j1 = way[static_cast<size_t>(j0)];
      row_of_col[static_cast<size_t>(j0)] = row_of_col[static_cast<size_t>(j1)];
      j0 = j1;
    } while (j0 != 0);
  }
  std::vector<int64_t> match(static_cast<size_t>(t.n_clusters), -1);
  for (int64_t j = 1; j <= n; ++j) {
    const int64_t c = row_of_col[static_cast<size_t>(j)] - 1;
    if (c >= 0 && c < t.n_clusters && j - 1 < t.n_labels) match[static_cast<size_t>(c)] = j - 1;
  }
  return match;
}

double matched_accuracy(const Contingency& t) {
  if (t.n == 0) return 0.0;
  const auto match = hungarian_match(t);
  int64_t right = 0;
  for (int64_t c = 0; c < t.n_clusters; ++c)
    if (match[static_cast<size_t>(c)] >= 0) right += t.at(c, match[static_cast<size_t>(c)]);
  return static_cast<double>(right) / static_cast<double>(t.n);
}

}  // namespace ts::taxonomy
