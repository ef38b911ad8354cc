// Byte-level BPE trainer (src/toy/bpe_trainer.h): the result loads in ts::Tokenizer and round-trips
// the toy corpus, training is deterministic, the tie-break rule, added tokens, compression.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/chat_format.h"
#include "tokenizer/tokenizer.h"
#include "toy/bpe_trainer.h"
#include "toy/corpus.h"

namespace {

using ts::BpeTrainOptions;
using ts::Tokenizer;

int64_t code_points(const std::string& s) {
  int64_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// Train-split prompts (R1 chat format) and traces, and the test-split traces.
struct Texts {
  std::vector<std::string> train, test;
};
const Texts& corpus_texts() {
  static const Texts texts = [] {
    Texts t;
    for (const auto& p : ts::toy_corpus_generate(ts::ToyCorpusOptions{})) {
      auto& dst = p.split == "train" ? t.train : t.test;
      dst.push_back(ts::chat_format_apply(ts::ChatFormat::deepseek_r1, p.question));
      dst.push_back(p.text);
    }
    return t;
  }();
  return texts;
}

const std::string& default_json() {
  static const std::string json = [] {
    const auto start = std::chrono::steady_clock::now();
    std::string out = ts::bpe_train_tokenizer_json(corpus_texts().train, BpeTrainOptions{});
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("bpe trainer: default corpus (%zu texts), vocab 1024: %.3f s\n", corpus_texts().train.size(), s);
    return out;
  }();
  return json;
}

TEST(BpeTrainer, RoundTripsTheCorpusAndIsDeterministic) {
  const Tokenizer tok = Tokenizer::from_json_text(default_json(), "<trained>");
  EXPECT_EQ(tok.vocab_size(), 1024);
  for (const auto* split : {&corpus_texts().train, &corpus_texts().test})
    for (const std::string& text : *split) ASSERT_EQ(tok.decode(tok.encode_ids(text)), text);
  EXPECT_EQ(ts::bpe_train_tokenizer_json(corpus_texts().train, BpeTrainOptions{}), default_json());

  const auto root = nlohmann::json::parse(default_json());
  EXPECT_EQ(root["model"]["vocab"].size() + root["added_tokens"].size(), 1024u);
  EXPECT_EQ(root["model"]["merges"].size(), 1024u - 256u - 6u);  // no merge repeated a token here
  // The byte-level alphabet sorted by code point, as HF: 188 printable bytes, then U+0100 + byte.
  EXPECT_EQ(root["model"]["vocab"]["!"], 0);
  EXPECT_EQ(root["model"]["vocab"]["Ā"], 188);
  EXPECT_EQ(root["model"]["vocab"]["Ġ"], 220);
}

TEST(BpeTrainer, SpecialTokensAreSingleIdsAtTheEnd) {
  const Tokenizer tok = Tokenizer::from_json_text(default_json(), "<trained>");
  const BpeTrainOptions opt;
  int32_t expect_id = 1024 - 6;
  for (const auto* list : {&opt.special_tokens, &opt.added_tokens}) {
    for (const std::string& token : *list) {
      const auto id = tok.token_to_id(token);
      ASSERT_TRUE(id.has_value()) << token;
      EXPECT_EQ(*id, expect_id++);
      EXPECT_EQ(tok.encode_ids("x" + token + "y"), (std::vector<int32_t>{*tok.token_to_id("x"), *id, *tok.token_to_id("y")}));
      EXPECT_EQ(tok.is_special(*id), list == &opt.special_tokens) << token;
    }
  }
  // No model token contains a piece of an added token ("<think" is one pre-token of the R1 regex).
  for (int32_t id = 0; id < 1024 - 6; ++id) {
    const std::string token = tok.id_to_token(id);
    EXPECT_EQ(token.find("<think"), std::string::npos) << token;
    EXPECT_EQ(token.find("think>"), std::string::npos) << token;
  }
  const std::string prompt = ts::chat_format_apply(ts::ChatFormat::deepseek_r1, "What is 2 + 3?");
  const auto ids = tok.encode_ids(prompt);
  EXPECT_EQ(ids.front(), *tok.token_to_id("<｜begin▁of▁sentence｜>"));
  EXPECT_EQ(tok.decode(ids, true), "What is 2 + 3?<think>\n");
}

TEST(BpeTrainer, CompressesTheTestSplit) {
  const Tokenizer tok = Tokenizer::from_json_text(default_json(), "<trained>");
  int64_t chars = 0, tokens = 0;
  for (const std::string& text : corpus_texts().test) {
    chars += code_points(text);
    tokens += static_cast<int64_t>(tok.encode_ids(text).size());
  }
  const double ratio = static_cast<double>(chars) / static_cast<double>(tokens);
  std::printf("bpe trainer: test split %.2f chars per token\n", ratio);
  EXPECT_GT(ratio, 2.0);
}

TEST(BpeTrainer, MostFrequentPairFirstTiesToSmallestStrings) {
  // Words "ab", " ab" x2, " cd" x3: pairs (a,b) 3, (" ",c) 3, (c,d) 3, (" ",a) 2. Ties go to the
  // smallest (left, right) raw bytes: (" ", c) first, then (" c", d) (now 3) before (a, b).
  BpeTrainOptions opt;
  opt.vocab_size = 256 + 6 + 3;
  const auto root = nlohmann::json::parse(ts::bpe_train_tokenizer_json({"ab ab ab cd cd cd"}, opt));
  EXPECT_EQ(root["model"]["merges"], nlohmann::json::parse(R"([["Ġ","c"],["Ġc","d"],["a","b"]])"));
  EXPECT_EQ(root["model"]["vocab"]["Ġcd"], 257);
  EXPECT_EQ(root["added_tokens"][0]["id"], 259);
}

TEST(BpeTrainer, StopsWhenNoPairIsFrequentEnough) {
  BpeTrainOptions opt;
  opt.vocab_size = 4000;
  const std::vector<std::string> texts = {"hello hello world", "<think>\nhello</think>\n\nworld"};
  const Tokenizer tok = Tokenizer::from_json_text(ts::bpe_train_tokenizer_json(texts, opt), "<trained>");
  EXPECT_LT(tok.vocab_size(), 300);
  for (const auto& text : texts) EXPECT_EQ(tok.decode(tok.encode_ids(text)), text);
  EXPECT_EQ(tok.encode_ids("hello").size(), 1u);  // 3 times
  EXPECT_EQ(tok.encode_ids(" hello").size(), 2u);  // once: " " + "hello"
  EXPECT_EQ(tok.decode(tok.encode_ids("é€😀 — 数学")), "é€😀 — 数学");  // unseen bytes still encode
}

TEST(BpeTrainer, RejectsBadOptionsAndText) {
  BpeTrainOptions opt;
  opt.vocab_size = 256 + 6;
  EXPECT_THROW(ts::bpe_train({"abc"}, opt), std::invalid_argument);
  opt.vocab_size = 65537;
  EXPECT_THROW(ts::bpe_train({"abc"}, opt), std::invalid_argument);
  opt.vocab_size = 300;
  opt.added_tokens.push_back("<think>");
  EXPECT_THROW(ts::bpe_train({"abc"}, opt), std::invalid_argument);
  EXPECT_THROW(ts::bpe_train({"abc", std::string("a\xff")}, BpeTrainOptions{}), ts::InputError);
}

}  // namespace
