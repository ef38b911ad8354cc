// Unicode normalization forms (NFC, NFD, NFKC, NFKD) with HF-compatible alignment changes.
//
// HF tokenizers normalizes with the `unicode_normalization_alignments` crate, which reports each
// output character with a "change" (see NormalizedText::transformed) and aligns characters to the
// original text positionally. It decomposes every character (first part change 0, further parts
// +1), sorts combining marks by combining class (changes travel with the marks), and for the
// composed forms, when a mark composes into its starter the starter's change becomes
// change(starter) + change(mark) - 1. Consequences (verified against tokenizers 0.23):
// NFC "e\u0301" -> "é" is aligned to the 'e' only (char offsets (0,1), the accent is covered by no
// token), "â\u0323" under NFD gives a(0,1) ̣(1,2) ̂(1,2), and NFKC "㌀" -> 4 characters all (0,1).
#pragma once
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace ts {

enum class UnicodeForm { nfc, nfd, nfkc, nfkd };

// The normalized form of `text` (valid UTF-8) as (code point, change) pairs, or nullopt when the
// text is already normalized (every change would be 0 and every character unchanged).
std::optional<std::vector<std::pair<char32_t, int>>> normalize_changes(std::string_view text, UnicodeForm form);

}  // namespace ts
