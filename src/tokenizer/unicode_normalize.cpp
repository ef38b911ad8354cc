#include "tokenizer/unicode_normalize.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdint>

#include "core/utf8.h"
#include "tokenizer/unicode_compat.h"

namespace ts {

namespace {

constexpr char32_t kHangulSBase = 0xAC00, kHangulLBase = 0x1100, kHangulVBase = 0x1161, kHangulTBase = 0x11A7;
constexpr int kHangulLCount = 19, kHangulVCount = 21, kHangulTCount = 28, kHangulSCount = 11172;

struct Item {
  char32_t cp;
  int change;
  int ccc;
};

// Combining class as HF's (older) normalization data has it.
int combining_class(char32_t cp) {
  if (cp < 0x300) return 0;
  if (unicode_compat::legacy_starter(cp)) return 0;
  return utf8proc_get_property(static_cast<utf8proc_int32_t>(cp))->combining_class;
}

// Whether `cp` can be the second character of a canonical composition (utf8proc marks those with
// comb_index >= 0x8000; Hangul jamo are handled arithmetically).
bool can_be_second(char32_t cp) {
  const utf8proc_property_t* p = utf8proc_get_property(static_cast<utf8proc_int32_t>(cp));
  return p->comb_index != UINT16_MAX && p->comb_index >= 0x8000;
}

// Primary composite of (a, b), or 0.
char32_t compose_pair(char32_t a, char32_t b) {
  if (a >= kHangulLBase && a < kHangulLBase + kHangulLCount && b >= kHangulVBase && b < kHangulVBase + kHangulVCount)
    return kHangulSBase + ((a - kHangulLBase) * kHangulVCount + (b - kHangulVBase)) * kHangulTCount;
  if (a >= kHangulSBase && a < kHangulSBase + kHangulSCount && (a - kHangulSBase) % kHangulTCount == 0 &&
      b > kHangulTBase && b < kHangulTBase + kHangulTCount)
    return a + (b - kHangulTBase);
  if (!can_be_second(b)) return 0;
  utf8proc_int32_t buf[2] = {static_cast<utf8proc_int32_t>(a), static_cast<utf8proc_int32_t>(b)};
  utf8proc_ssize_t n = utf8proc_normalize_utf32(buf, 2, static_cast<utf8proc_option_t>(UTF8PROC_COMPOSE | UTF8PROC_STABLE));
  if (n != 1 || unicode_compat::legacy_no_canonical(static_cast<char32_t>(buf[0]))) return 0;
  return static_cast<char32_t>(buf[0]);
}

// True when no character of `text` can change under NFC/NFD: each has combining class 0, no
// canonical decomposition, is not a Hangul syllable or jamo and never composes with what precedes
// it (CJK, most emoji, Cyrillic...). Such text is normalized and keeps every alignment.
bool all_inert(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    char32_t cp = utf8::next(text, i);
    if (cp < 0xC0) continue;
    if ((cp >= 0x1100 && cp < 0x1200) || (cp >= kHangulSBase && cp < kHangulSBase + kHangulSCount)) return false;
    const utf8proc_property_t* p = utf8proc_get_property(static_cast<utf8proc_int32_t>(cp));
    if (p->combining_class != 0 || p->decomp_seqindex != UINT16_MAX) return false;
    if (p->comb_index != UINT16_MAX && p->comb_index >= 0x8000) return false;
  }
  return true;
}

}  // namespace

std::optional<std::vector<std::pair<char32_t, int>>> normalize_changes(std::string_view text, UnicodeForm form) {
  const bool compat = form == UnicodeForm::nfkc || form == UnicodeForm::nfkd;
  const bool compose = form == UnicodeForm::nfc || form == UnicodeForm::nfkc;
  // Fast path: text whose bytes are all below `threshold` is already normalized. NFC: code points
  // below U+0300 are NFC and never compose with what precedes. NFD: below U+00C0 nothing has a
  // canonical decomposition. NFKC/NFKD: only ASCII is safe.
  const unsigned char threshold = compat ? 0xC2 : (compose ? 0xCC : 0xC3);
  bool trivial = true;
  for (char ch : text) {
    if (static_cast<unsigned char>(ch) >= threshold) {
      trivial = false;
      break;
    }
  }
  if (trivial) return std::nullopt;
  if (!compat && all_inert(text)) return std::nullopt;

  // 1. Decomposition: the first part keeps change 0, further parts are insertions.
  const utf8proc_option_t decompose_options =
      static_cast<utf8proc_option_t>(UTF8PROC_DECOMPOSE | (compat ? UTF8PROC_COMPAT : 0));
  std::vector<char32_t> input;
  std::vector<Item> items;
  input.reserve(text.size());
  items.reserve(text.size() + 8);
  utf8proc_int32_t buf[32];
  for (size_t i = 0; i < text.size();) {
    char32_t cp = utf8::next(text, i);
    input.push_back(cp);
    if (cp < 0xA0) {
      items.push_back({cp, 0, 0});
      continue;
    }
    // Decompositions HF's data does not have are skipped (see unicode_compat.h).
    utf8proc_option_t options = decompose_options;
    if (compat && unicode_compat::legacy_no_compat(cp)) options = UTF8PROC_DECOMPOSE;
    if (unicode_compat::legacy_no_canonical(cp)) {
      items.push_back({cp, 0, combining_class(cp)});
      continue;
    }
    utf8proc_ssize_t n = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(cp), buf, 32, options, nullptr);
    if (n <= 0 || n > 32) {
      items.push_back({cp, 0, combining_class(cp)});
      continue;
    }
    for (utf8proc_ssize_t k = 0; k < n; ++k) {
      char32_t d = static_cast<char32_t>(buf[k]);
      items.push_back({d, k == 0 ? 0 : 1, combining_class(d)});
    }
  }

  // 2. Canonical ordering: stable sort of every run of non-starters by combining class.
  for (size_t i = 0; i < items.size();) {
    if (items[i].ccc == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < items.size() && items[j].ccc != 0) ++j;
    if (j - i > 1)
      std::stable_sort(items.begin() + static_cast<std::ptrdiff_t>(i), items.begin() + static_cast<std::ptrdiff_t>(j),
                       [](const Item& a, const Item& b) { return a.ccc < b.ccc; });
    i = j;
  }

  // 3. Canonical composition; a mark composed into its starter folds its change into the starter.
  std::vector<Item> out;
  out.reserve(items.size());
  std::ptrdiff_t starter = -1;
  for (const Item& item : items) {
    if (compose && starter >= 0) {
      bool adjacent = static_cast<std::ptrdiff_t>(out.size()) - 1 == starter;
      bool unblocked = adjacent || (out.back().ccc != 0 && out.back().ccc < item.ccc);
      if (unblocked) {
        char32_t composite = compose_pair(out[static_cast<size_t>(starter)].cp, item.cp);
        if (composite != 0) {
          Item& s = out[static_cast<size_t>(starter)];
          s.cp = composite;
          s.change += item.change - 1;
          continue;
        }
      }
    }
    if (item.ccc == 0) starter = static_cast<std::ptrdiff_t>(out.size());
    out.push_back(item);
  }

  bool identity = out.size() == input.size();
  for (size_t k = 0; identity && k < out.size(); ++k) identity = out[k].cp == input[k] && out[k].change == 0;
  if (identity) return std::nullopt;

  std::vector<std::pair<char32_t, int>> result;
  result.reserve(out.size());
  for (const Item& item : out) result.emplace_back(item.cp, item.change);
  return result;
}

}  // namespace ts
