// Chat prompt formats: exact strings of each template, name parsing, and that the formatted text
// tokenizes its markers as added special tokens.
#include <gtest/gtest.h>

#include "core/error.h"
#include "core/json.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/chat_format.h"
#include "tokenizer/tokenizer.h"

namespace {

TEST(ChatFormat, Raw) {
  EXPECT_EQ(ts::chat_format_apply(ts::ChatFormat::raw, "What is 2+2?"), "What is 2+2?");
  EXPECT_EQ(ts::chat_format_apply(ts::ChatFormat::raw, "hi", "ignored system"), "hi");
}

TEST(ChatFormat, DeepSeekR1) {
  EXPECT_EQ(ts::chat_format_apply(ts::ChatFormat::deepseek_r1, "What is 2+2?"),
            "<｜begin▁of▁sentence｜><｜User｜>What is 2+2?<｜Assistant｜><think>\n");
  EXPECT_EQ(ts::chat_format_apply(ts::ChatFormat::deepseek_r1, "Hi", "Be brief."),
            "<｜begin▁of▁sentence｜>Be brief.<｜User｜>Hi<｜Assistant｜><think>\n");
}

TEST(ChatFormat, ChatMlUsesQwen25DefaultSystem) {
  EXPECT_EQ(ts::chat_format_apply(ts::ChatFormat::chatml, "What is 2+2?"),
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(ts::chat_format_apply(ts::ChatFormat::chatml, "Hi", "Be brief."),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatFormat, Llama3) {
  EXPECT_EQ(ts::chat_format_apply(ts::ChatFormat::llama3, "What is 2+2?"),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(ts::chat_format_apply(ts::ChatFormat::llama3, "Hi", "Be brief."),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatFormat, Names) {
  for (auto format : {ts::ChatFormat::raw, ts::ChatFormat::deepseek_r1, ts::ChatFormat::chatml, ts::ChatFormat::llama3})
    EXPECT_EQ(ts::chat_format_from_name(ts::chat_format_name(format)), format);
  try {
    ts::chat_format_from_name("qwen");
    FAIL() << "expected InputError";
  } catch (const ts::InputError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("qwen"), std::string::npos) << what;
    EXPECT_NE(what.find("raw, deepseek_r1, chatml, llama3"), std::string::npos) << what;
  }
}

// A byte-level tokenizer without merges plus R1's added tokens: every marker of the formatted
// prompt must come out as one added-token id, and the rest as single bytes.
TEST(ChatFormat, FormattedPromptTokenizesMarkersAsAddedTokens) {
  ts::json vocab = ts::json::object();
  for (int b = 0; b < 256; ++b) vocab[ts::byte_level::encode(std::string(1, static_cast<char>(b)))] = b;
  ts::json added = ts::json::array();
  int id = 256;
  for (const char* content : {"<｜begin▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>"})
    added.push_back({{"id", id++}, {"content", content}, {"special", true}, {"normalized", false}});
  added.push_back({{"id", id++}, {"content", "<think>"}, {"special", false}, {"normalized", false}});
  ts::json tokenizer = {
      {"added_tokens", added},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", ts::json::array()}}}};
  auto tok = ts::Tokenizer::from_json_text(tokenizer.dump(), "inline.json");
  std::string prompt = ts::chat_format_apply(ts::ChatFormat::deepseek_r1, "Hi");
  std::vector<int32_t> ids = tok.encode_ids(prompt);
  EXPECT_EQ(ids, (std::vector<int32_t>{256, 257, 'H', 'i', 258, 259, '\n'}));
  EXPECT_EQ(tok.decode(ids), prompt);
  EXPECT_EQ(tok.decode(ids, /*skip_special_tokens=*/true), "Hi<think>\n");
  EXPECT_TRUE(tok.is_special(256));
  EXPECT_FALSE(tok.is_special(259));
  EXPECT_EQ(tok.vocab_size(), 260);
}

}  // namespace
