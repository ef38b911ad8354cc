#include "tokenizer/unicode_compat.h"

#include <algorithm>
#include <cstdio>
#include <iterator>

namespace ts::unicode_compat {

namespace {

struct CategoryRange {
  char32_t lo, hi;
  const char* category;
};
struct CodePointRange {
  char32_t lo, hi;
};

#include "tokenizer/unicode_tables.inc"

template <size_t N>
bool in_ranges(const CodePointRange (&table)[N], char32_t cp) {
  auto it = std::upper_bound(std::begin(table), std::end(table), cp,
                             [](char32_t c, const CodePointRange& r) { return c < r.lo; });
  return it != std::begin(table) && cp <= std::prev(it)->hi;
}

std::string hex(char32_t cp) {
  char buffer[16];
  std::snprintf(buffer, sizeof(buffer), "\\x{%X}", static_cast<unsigned>(cp));
  return buffer;
}

}  // namespace

void append_recent_ranges(std::string& out, std::string_view category) {
  if (category.empty() || category.size() > 2 || category[0] == 'C') return;
  for (const CategoryRange& r : kRecentCategories) {
    std::string_view c(r.category);
    if (c.substr(0, category.size()) != category) continue;
    out += hex(r.lo);
    if (r.hi != r.lo) {
      out += '-';
      out += hex(r.hi);
    }
  }
}

std::string_view recent_category(char32_t cp) {
  auto it = std::upper_bound(std::begin(kRecentCategories), std::end(kRecentCategories), cp,
                             [](char32_t c, const CategoryRange& r) { return c < r.lo; });
  if (it == std::begin(kRecentCategories) || cp > std::prev(it)->hi) return {};
  return std::prev(it)->category;
}

bool legacy_starter(char32_t cp) { return in_ranges(kLegacyStarters, cp); }
bool legacy_no_canonical(char32_t cp) { return in_ranges(kLegacyNoCanonical, cp); }
bool legacy_no_compat(char32_t cp) { return in_ranges(kLegacyNoCompat, cp); }

}  // namespace ts::unicode_compat
