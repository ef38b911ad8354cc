#include "steer/answer.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <vector>

namespace ts {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (std::isspace(static_cast<unsigned char>(s[b])) || s[b] == '$')) ++b;
  while (e > b && (std::isspace(static_cast<unsigned char>(s[e - 1])) || s[e - 1] == '$' || s[e - 1] == '.')) --e;
  return std::string(s.substr(b, e - b));
}

// Content of the last \boxed{...} with its braces matched, or nullopt.
std::optional<std::string> last_boxed(std::string_view text) {
  const std::string_view tag = "\\boxed{";
  std::optional<std::string> found;
  for (size_t at = text.find(tag); at != std::string_view::npos; at = text.find(tag, at + 1)) {
    size_t i = at + tag.size();
    int depth = 1;
    for (; i < text.size() && depth > 0; ++i) {
      if (text[i] == '{') ++depth;
      else if (text[i] == '}') --depth;
    }
    if (depth == 0) found = std::string(text.substr(at + tag.size(), i - 1 - (at + tag.size())));
  }
  return found;
}

// The last number of the text: [-]digits with ',' thousands groups, optional decimals, optional
// "/digits" fraction.
std::optional<std::string> last_number(std::string_view text) {
  std::optional<std::string> found;
  size_t i = 0;
  while (i < text.size()) {
    if (!is_digit(text[i])) {
      ++i;
      continue;
    }
    size_t b = i;
    if (b > 0 && text[b - 1] == '-') --b;
    size_t e = i;
    while (e < text.size() && is_digit(text[e])) ++e;
    // thousands groups: ",ddd" exactly three digits, not followed by another digit
    while (e + 3 < text.size() && text[e] == ',' && is_digit(text[e + 1]) && is_digit(text[e + 2]) && is_digit(text[e + 3]) &&
           (e + 4 >= text.size() || !is_digit(text[e + 4])))
      e += 4;
    if (e + 1 < text.size() && text[e] == '.' && is_digit(text[e + 1])) {
      ++e;
      while (e < text.size() && is_digit(text[e])) ++e;
    }
    if (e + 1 < text.size() && text[e] == '/' && is_digit(text[e + 1])) {
      ++e;
      while (e < text.size() && is_digit(text[e])) ++e;
    }
    found = std::string(text.substr(b, e - b));
    i = e;
  }
  return found;
}

// Removes LaTeX wrappers that do not change the value: \text{..}, \mathrm{..}, \left, \right, \!, \,.
std::string strip_latex(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    bool skipped = false;
    for (std::string_view w : {"\\text{", "\\textbf{", "\\mathrm{", "\\mathbf{"}) {
      if (s.substr(i, w.size()) == w) {
        i += w.size();
        int depth = 1;
        size_t j = i;
        for (; j < s.size() && depth > 0; ++j) {
          if (s[j] == '{') ++depth;
          else if (s[j] == '}') --depth;
        }
        out += strip_latex(s.substr(i, (depth == 0 ? j - 1 : j) - i));
        i = j;
        skipped = true;
        break;
      }
    }
    if (skipped) continue;
    for (std::string_view w : {"\\left", "\\right", "\\!", "\\,", "\\;", "\\ "}) {
      if (s.substr(i, w.size()) == w) {
        i += w.size();
        skipped = true;
        break;
      }
    }
    if (skipped) continue;
    out.push_back(s[i++]);
  }
  return out;
}

std::optional<double> plain_number(std::string_view s) {
  std::string t;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == ',') {
      // a thousands separator: after a digit, before exactly three digits
      size_t k = i + 1;
      while (k < s.size() && is_digit(s[k])) ++k;
      if (i == 0 || !is_digit(s[i - 1]) || k - i - 1 != 3) return std::nullopt;
      continue;
    }
    t.push_back(s[i]);
  }
  if (t.empty()) return std::nullopt;
  size_t i = 0;
  if (t[0] == '-' || t[0] == '+') ++i;
  size_t digits = 0, dots = 0;
  for (size_t k = i; k < t.size(); ++k) {
    if (is_digit(t[k])) ++digits;
    else if (t[k] == '.') ++dots;
    else return std::nullopt;
  }
  if (digits == 0 || dots > 1) return std::nullopt;
  return std::strtod(t.c_str(), nullptr);
}

}  // namespace

std::optional<std::string> extract_answer(std::string_view response) {
  if (auto boxed = last_boxed(response)) return trim(*boxed);
  if (auto number = last_number(response)) return *number;
  return std::nullopt;
}

std::optional<double> answer_number(std::string_view answer) {
  std::string s;
  for (char c : strip_latex(trim(answer)))
    if (!std::isspace(static_cast<unsigned char>(c))) s.push_back(c);
  if (!s.empty() && s.back() == '%') s.pop_back();
  if (!s.empty() && s.back() == '\\') s.pop_back();  // \%
  if (s.empty()) return std::nullopt;
  double sign = 1;
  std::string_view v = s;
  if (v.front() == '-') {
    sign = -1;
    v.remove_prefix(1);
  }
  for (std::string_view frac : {"\\frac{", "\\dfrac{", "\\tfrac{"}) {
    if (v.substr(0, frac.size()) == frac) {
      const size_t mid = v.find("}{", frac.size());
      if (mid == std::string_view::npos || v.back() != '}') return std::nullopt;
      auto num = plain_number(v.substr(frac.size(), mid - frac.size()));
      auto den = plain_number(v.substr(mid + 2, v.size() - mid - 3));
      if (!num || !den || *den == 0) return std::nullopt;
      return sign * *num / *den;
    }
  }
  if (const size_t slash = v.find('/'); slash != std::string_view::npos) {
    auto num = plain_number(v.substr(0, slash));
    auto den = plain_number(v.substr(slash + 1));
    if (!num || !den || *den == 0) return std::nullopt;
    return sign * *num / *den;
  }
  auto x = plain_number(v);
  if (!x) return std::nullopt;
  return sign * *x;
}

bool answers_equal(std::string_view predicted, std::string_view reference) {
  const auto a = answer_number(predicted), b = answer_number(reference);
  if (a && b) return std::fabs(*a - *b) <= 1e-4 * std::max(std::fabs(*a), std::fabs(*b)) || *a == *b;
  auto norm = [](std::string_view s) {
    std::string out;
    for (char c : strip_latex(trim(s)))
      if (!std::isspace(static_cast<unsigned char>(c))) out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    return out;
  };
  const std::string na = norm(predicted), nb = norm(reference);
  return !na.empty() && na == nb;
}

}  // namespace ts
