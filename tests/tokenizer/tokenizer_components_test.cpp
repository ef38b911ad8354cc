// Unit tests of the tokenizer building blocks: UTF-8 helpers, byte-level alphabet, Oniguruma ->
// PCRE2 translation, split behaviors, normalization (checked against utf8proc) and BPE merging.
#include <gtest/gtest.h>

#include <utf8proc.h>

#include "core/error.h"
#include "core/json.h"
#include "core/utf8.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/normalized_text.h"
#include "tokenizer/regex.h"
#include "tokenizer/split_behavior.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode_compat.h"
#include "tokenizer/unicode_normalize.h"

namespace {

TEST(Utf8, LossyDecodeMatchesRustFromUtf8Lossy) {
  EXPECT_EQ(ts::utf8::decode_lossy("plain ascii"), "plain ascii");
  EXPECT_EQ(ts::utf8::decode_lossy("\xF0\x9F\xA4\x97"), "\xF0\x9F\xA4\x97");     // complete emoji
  EXPECT_EQ(ts::utf8::decode_lossy("\xF0\x9F\xA4"), "\uFFFD");                   // truncated: one U+FFFD
  EXPECT_EQ(ts::utf8::decode_lossy("\xF0\x9F\xA4x"), "\uFFFDx");
  EXPECT_EQ(ts::utf8::decode_lossy("\xC0\x80"), "\uFFFD\uFFFD");                 // never-valid lead byte
  EXPECT_EQ(ts::utf8::decode_lossy("\xE0\x80\x80"), "\uFFFD\uFFFD\uFFFD");       // overlong
  EXPECT_EQ(ts::utf8::decode_lossy("\xED\xA0\x80"), "\uFFFD\uFFFD\uFFFD");       // surrogate
  EXPECT_EQ(ts::utf8::decode_lossy("\xF4\x90\x80\x80"), "\uFFFD\uFFFD\uFFFD\uFFFD");  // > U+10FFFF
  EXPECT_EQ(ts::utf8::decode_lossy("a\x80" "b"), "a\uFFFDb");
  EXPECT_EQ(ts::utf8::decode_lossy("\xE2\x82"), "\uFFFD");
}

TEST(Utf8, ValidationAndCharIndex) {
  EXPECT_FALSE(ts::utf8::find_invalid("héllo 🤗").has_value());
  EXPECT_EQ(ts::utf8::find_invalid("ab\xFF"), 2u);
  EXPECT_EQ(ts::utf8::find_invalid("ab\xC3"), 2u);
  ts::utf8::CharIndex index("aé🤗b");
  EXPECT_EQ(index.at(0), 0u);
  EXPECT_EQ(index.at(1), 1u);
  EXPECT_EQ(index.at(2), 1u);
  EXPECT_EQ(index.at(3), 2u);
  EXPECT_EQ(index.at(6), 2u);
  EXPECT_EQ(index.at(7), 3u);
  EXPECT_TRUE(ts::utf8::is_white_space(0x3000));
  EXPECT_TRUE(ts::utf8::is_white_space(0x85));
  EXPECT_FALSE(ts::utf8::is_white_space(0x180E));
  EXPECT_FALSE(ts::utf8::is_white_space(0x200B));
}

TEST(ByteLevel, Gpt2Alphabet) {
  EXPECT_EQ(ts::byte_level::encode(" "), "Ġ");
  EXPECT_EQ(ts::byte_level::encode("\n"), "Ċ");
  EXPECT_EQ(ts::byte_level::encode("a!~"), "a!~");
  EXPECT_EQ(ts::byte_level::encode("é"), "Ã©");
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  std::string decoded;
  ASSERT_TRUE(ts::byte_level::decode(ts::byte_level::encode(all), decoded));
  EXPECT_EQ(decoded, all);
  decoded.clear();
  EXPECT_FALSE(ts::byte_level::decode("｜", decoded));
}

TEST(Regex, OnigurumaTranslation) {
  EXPECT_EQ(ts::translate_oniguruma_pattern(R"(\s+(?!\S))"), R"(\p{White_Space}+(?!\P{White_Space}))");
  EXPECT_EQ(ts::translate_oniguruma_pattern(R"([^\s\p{Zs}])"), R"([^\p{White_Space}\p{Zs}])");
  EXPECT_EQ(ts::translate_oniguruma_pattern(R"((?m:.)\h\u4e00)"), R"((?s:.)[0-9a-fA-F]\x{4e00})");
  EXPECT_EQ(ts::translate_oniguruma_pattern(R"((?i:'s))"), R"((?i:'s))");
  // Letters PCRE2 10.42 does not know yet (CJK extension H, Unicode 15) are added to \p{L}.
  std::string letters = ts::translate_oniguruma_pattern(R"(\p{L})");
  EXPECT_NE(letters.find(R"(\x{31350}-\x{323AF})"), std::string::npos) << letters;
}

TEST(Regex, MatchesLikeOniguruma) {
  ts::Regex re(ts::byte_level::kGpt2Pattern, "test", "pattern");
  std::vector<std::pair<uint32_t, uint32_t>> matches;
  re.find_all("Hello  world's 123\u3000!", matches);
  std::vector<std::pair<uint32_t, uint32_t>> expected = {{0, 5}, {5, 6}, {6, 12}, {12, 14}, {14, 18}, {18, 21}, {21, 22}};
  EXPECT_EQ(matches, expected);
  // Empty matches: one per character boundary, never right after a match.
  ts::Regex empty("x*", "test", "pattern");
  matches.clear();
  empty.find_all("axxb", matches);
  expected = {{0, 0}, {1, 3}, {4, 4}};
  EXPECT_EQ(matches, expected);
  EXPECT_THROW(ts::Regex("(", "test.json", "pre_tokenizer.pattern.Regex"), ts::InputError);
}

std::vector<std::string> split(std::string_view text, ts::SplitBehavior behavior, bool invert) {
  ts::Regex dash = ts::Regex::literal("-", "test", "pattern");
  std::vector<std::pair<uint32_t, uint32_t>> matches;
  dash.find_all(text, matches);
  std::vector<ts::MatchSpan> spans;
  ts::segment_by_matches(matches, static_cast<uint32_t>(text.size()), spans);
  std::vector<ts::ByteRange> ranges;
  ts::apply_split_behavior(spans, behavior, invert, 0, ranges);
  std::vector<std::string> out;
  for (auto r : ranges) out.emplace_back(text.substr(r.begin, r.end - r.begin));
  return out;
}

TEST(SplitBehavior, DocumentedExamples) {
  using V = std::vector<std::string>;
  const char* text = "the-final--countdown";
  EXPECT_EQ(split(text, ts::SplitBehavior::removed, false), (V{"the", "final", "countdown"}));
  EXPECT_EQ(split(text, ts::SplitBehavior::isolated, false), (V{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(split(text, ts::SplitBehavior::merged_with_previous, false), (V{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(split(text, ts::SplitBehavior::merged_with_next, false), (V{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(split(text, ts::SplitBehavior::contiguous, false), (V{"the", "-", "final", "--", "countdown"}));
  EXPECT_EQ(split(text, ts::SplitBehavior::removed, true), (V{"-", "-", "-"}));
}

std::u32string code_points(std::string_view s) {
  std::u32string out;
  for (size_t i = 0; i < s.size();) out.push_back(ts::utf8::next(s, i));
  return out;
}

std::string apply_form(std::string_view text, ts::UnicodeForm form) {
  auto changes = ts::normalize_changes(text, form);
  if (!changes) return std::string(text);
  std::string out;
  for (auto [cp, change] : *changes) ts::utf8::append(out, cp);
  return out;
}

std::string utf8proc_form(const std::string& text, ts::UnicodeForm form) {
  utf8proc_uint8_t* (*fn)(const utf8proc_uint8_t*) = nullptr;
  switch (form) {
    case ts::UnicodeForm::nfc: fn = utf8proc_NFC; break;
    case ts::UnicodeForm::nfd: fn = utf8proc_NFD; break;
    case ts::UnicodeForm::nfkc: fn = utf8proc_NFKC; break;
    case ts::UnicodeForm::nfkd: fn = utf8proc_NFKD; break;
  }
  utf8proc_uint8_t* p = fn(reinterpret_cast<const utf8proc_uint8_t*>(text.c_str()));
  std::string out(reinterpret_cast<char*>(p));
  free(p);
  return out;
}

bool touches_legacy_data(std::string_view text) {
  for (char32_t cp : code_points(text))
    if (ts::unicode_compat::legacy_starter(cp) || ts::unicode_compat::legacy_no_canonical(cp) ||
        ts::unicode_compat::legacy_no_compat(cp))
      return true;
  return false;
}

// Our normalization must agree with utf8proc wherever HF's (older) Unicode data agrees.
TEST(UnicodeNormalize, AgreesWithUtf8procOnEveryDecomposableCharacter) {
  int checked = 0;
  for (char32_t cp = 0xA0; cp < 0x30000; ++cp) {
    if (cp >= 0xD800 && cp < 0xE000) continue;
    std::string c;
    ts::utf8::append(c, cp);
    for (const std::string& text : {c, utf8proc_form(c, ts::UnicodeForm::nfd), "a" + c + "\u0316\u0301"}) {
      if (touches_legacy_data(text) || touches_legacy_data(utf8proc_form(text, ts::UnicodeForm::nfkd)) ||
          touches_legacy_data(utf8proc_form(text, ts::UnicodeForm::nfc)))
        continue;
      for (auto form : {ts::UnicodeForm::nfc, ts::UnicodeForm::nfd, ts::UnicodeForm::nfkc, ts::UnicodeForm::nfkd}) {
        ASSERT_EQ(apply_form(text, form), utf8proc_form(text, form))
            << "U+" << std::hex << static_cast<uint32_t>(cp) << " form " << static_cast<int>(form);
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 100000);
}

TEST(UnicodeNormalize, HfAlignments) {
  // "e\u0301" -> "é" aligned to the 'e' only; "\u212B" keeps its whole range.
  auto text = ts::NormalizedText::borrowed("e\u0301\u212B", 10);
  auto changes = ts::normalize_changes(text.text(), ts::UnicodeForm::nfc);
  ASSERT_TRUE(changes.has_value());
  auto nfc = text.transformed(*changes);
  EXPECT_EQ(nfc.text(), "\u00E9\u00C5");
  EXPECT_EQ(nfc.original_range(0, 2), (std::pair<uint32_t, uint32_t>{10, 11}));
  EXPECT_EQ(nfc.original_range(2, 4), (std::pair<uint32_t, uint32_t>{13, 16}));
  EXPECT_FALSE(ts::normalize_changes("plain ascii é", ts::UnicodeForm::nfc).has_value());
}

// BPE merge order on a hand-made vocabulary: lowest rank first, leftmost on ties; a word that is
// in the vocabulary is kept whole only with ignore_merges.
TEST(Bpe, MergeOrderAndIgnoreMerges) {
  ts::json tokenizer = ts::json::parse(R"({
    "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "aa": 2, "ab": 3, "aab": 4, "aaa": 5, "aaaa": 6},
              "merges": ["a b", "a a", "aa b", "aa aa"]}})");
  auto tok = ts::Tokenizer::from_json_text(tokenizer.dump(), "bpe.json");
  EXPECT_EQ(tok.encode_ids("aab"), (std::vector<int32_t>{0, 3}));  // "a b" (rank 0) before "a a"
  EXPECT_EQ(tok.encode_ids("aaaa"), (std::vector<int32_t>{6}));    // aa aa
  EXPECT_EQ(tok.encode_ids("aaa"), (std::vector<int32_t>{2, 0}));  // leftmost "a a" first; "aaa" unreachable
  tokenizer["model"]["ignore_merges"] = true;
  auto whole = ts::Tokenizer::from_json_text(tokenizer.dump(), "bpe.json");
  EXPECT_EQ(whole.encode_ids("aaa"), (std::vector<int32_t>{5}));
  std::string long_word(1000, 'a');  // heap path
  auto ids = tok.encode_ids(long_word);
  EXPECT_EQ(ids, std::vector<int32_t>(250, 6));
}

}  // namespace
