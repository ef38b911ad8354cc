// Malformed or unsupported tokenizer.json files must give ts::InputError whose message names the
// file and the JSON field ("file: field: what"), never a crash.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/json.h"
#include "tokenizer/tokenizer.h"

namespace {

// A small valid tokenizer.json: byte-level BPE over "a", "b", "c", "ab", "abc".
ts::json valid_tokenizer() {
  return ts::json::parse(R"({
    "version": "1.0",
    "added_tokens": [{"id": 5, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false,
                      "normalized": false, "special": true}],
    "normalizer": {"type": "NFC"},
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
      {"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Isolated", "invert": false},
      {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}]},
    "post_processor": {"type": "TemplateProcessing",
      "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
      "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [5], "tokens": ["<s>"]}}},
    "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false},
    "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
              "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
              "vocab": {"a": 0, "b": 1, "c": 2, "ab": 3, "abc": 4},
              "merges": [["a", "b"], "ab c"]}
  })");
}

// Expects InputError with a message starting "test.json: <field>: " and containing `what`.
void expect_error_for_text(const std::string& text, const std::string& field, const std::string& what = "") {
  try {
    ts::Tokenizer::from_json_text(text, "test.json");
    ADD_FAILURE() << "expected InputError for field " << field;
  } catch (const ts::InputError& e) {
    std::string message = e.what();
    EXPECT_EQ(message.rfind("test.json: " + field + ": ", 0), 0u) << message;
    EXPECT_EQ(e.file(), "test.json");
    EXPECT_EQ(e.field(), field);
    if (!what.empty()) {
      EXPECT_NE(message.find(what), std::string::npos) << message;
    }
  }
}

void expect_input_error(const ts::json& j, const std::string& field, const std::string& what = "") {
  expect_error_for_text(j.dump(), field, what);
}

TEST(TokenizerErrors, ValidBaseLoadsAndEncodes) {
  auto tok = ts::Tokenizer::from_json_text(valid_tokenizer().dump(), "test.json");
  EXPECT_EQ(tok.encode_ids("abc ab"), (std::vector<int32_t>{4, 3}));  // 'Ġ' is not in the vocabulary: dropped
  EXPECT_EQ(tok.encode_ids("abcab", true), (std::vector<int32_t>{5, 4, 3}));
  EXPECT_EQ(tok.decode(std::vector<int32_t>{5, 4, 3}), "<s>abcab");
}

TEST(TokenizerErrors, TruncatedJson) {
  std::string text = valid_tokenizer().dump();
  expect_error_for_text(text.substr(0, text.size() / 2), "<json>", "not valid JSON");
  expect_error_for_text("", "<json>");
}

TEST(TokenizerErrors, RootNotAnObject) { expect_error_for_text("[1, 2]", "<root>"); }

TEST(TokenizerErrors, DuplicateKey) {
  expect_error_for_text(R"({"model": {}, "model": {}})", "model", "duplicate key");
}

TEST(TokenizerErrors, UnknownPreTokenizerType) {
  ts::json j = valid_tokenizer();
  j["pre_tokenizer"]["pretokenizers"][1]["type"] = "Metaspace";
  expect_input_error(j, "pre_tokenizer.pretokenizers[1].type", "Metaspace");
}

TEST(TokenizerErrors, UnknownTopLevelComponents) {
  ts::json j = valid_tokenizer();
  j["normalizer"] = {{"type", "Lowercase"}};
  expect_input_error(j, "normalizer.type", "Lowercase");
  j = valid_tokenizer();
  j["decoder"] = {{"type", "Sequence"}, {"decoders", {{{"type", "ByteLevel"}}, {{"type", "Strip"}}}}};
  expect_input_error(j, "decoder.decoders[1].type", "Strip");
  j = valid_tokenizer();
  j["post_processor"] = {{"type", "RobertaProcessing"}};
  expect_input_error(j, "post_processor.type", "RobertaProcessing");
  j = valid_tokenizer();
  j["model"]["type"] = "WordPiece";
  expect_input_error(j, "model.type", "WordPiece");
}

TEST(TokenizerErrors, MergesReferencingUnknownTokens) {
  ts::json j = valid_tokenizer();
  j["model"]["merges"][1] = "ab d";
  expect_input_error(j, "model.merges[1]", "'d' is not in model.vocab");
  j = valid_tokenizer();
  j["model"]["merges"][0] = {"b", "c"};  // "bc" is not in the vocabulary
  expect_input_error(j, "model.merges[0]", "merged token 'bc'");
  j = valid_tokenizer();
  j["model"]["merges"][0] = "a b c";
  expect_input_error(j, "model.merges[0]", "two tokens");
  j = valid_tokenizer();
  j["model"]["merges"][0] = 7;
  expect_input_error(j, "model.merges[0]");
}

TEST(TokenizerErrors, WrongFieldTypes) {
  ts::json j = valid_tokenizer();
  j["model"]["vocab"] = ts::json::array();
  expect_input_error(j, "model.vocab", "expected an object");
  j = valid_tokenizer();
  j["model"]["vocab"]["b"] = "one";
  expect_input_error(j, "model.vocab.b", "expected a token id");
  j = valid_tokenizer();
  j["model"]["vocab"]["b"] = -1;
  expect_input_error(j, "model.vocab.b", "expected a token id");
  j = valid_tokenizer();
  j["model"]["merges"] = "a b";
  expect_input_error(j, "model.merges", "expected an array");
  j = valid_tokenizer();
  j["added_tokens"][0]["id"] = "5";
  expect_input_error(j, "added_tokens[0].id", "expected an integer");
  j = valid_tokenizer();
  j["added_tokens"][0]["special"] = 1;
  expect_input_error(j, "added_tokens[0].special", "expected true or false");
  j = valid_tokenizer();
  j["pre_tokenizer"]["pretokenizers"][0]["invert"] = "no";
  expect_input_error(j, "pre_tokenizer.pretokenizers[0].invert", "expected true or false");
  j = valid_tokenizer();
  j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Merged";
  expect_input_error(j, "pre_tokenizer.pretokenizers[0].behavior", "unknown split behavior");
  j = valid_tokenizer();
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"] = {{"Glob", "*"}};
  expect_input_error(j, "pre_tokenizer.pretokenizers[0].pattern", "Regex");
  j = valid_tokenizer();
  j["pre_tokenizer"]["pretokenizers"] = {{"type", "Split"}};
  expect_input_error(j, "pre_tokenizer.pretokenizers", "expected an array");
  j = valid_tokenizer();
  j["pre_tokenizer"]["pretokenizers"][0] = nullptr;
  expect_input_error(j, "pre_tokenizer.pretokenizers[0]");
  j = valid_tokenizer();
  j["normalizer"]["type"] = 3;
  expect_input_error(j, "normalizer.type", "expected a string");
  j = valid_tokenizer();
  j["version"] = "2.0";
  expect_input_error(j, "version");
}

TEST(TokenizerErrors, MissingFields) {
  ts::json j = valid_tokenizer();
  j["model"].erase("vocab");
  expect_input_error(j, "model.vocab", "missing required field");
  j = valid_tokenizer();
  j.erase("model");
  expect_input_error(j, "model", "missing required field");
  j = valid_tokenizer();
  j["added_tokens"][0].erase("content");
  expect_input_error(j, "added_tokens[0].content", "missing required field");
  j = valid_tokenizer();
  j["post_processor"]["special_tokens"].erase("<s>");
  expect_input_error(j, "post_processor.single[0].SpecialToken.id", "not listed in special_tokens");
}

TEST(TokenizerErrors, UnsupportedBpeOptions) {
  ts::json j = valid_tokenizer();
  j["model"]["byte_fallback"] = true;
  expect_input_error(j, "model.byte_fallback", "not supported");
  j = valid_tokenizer();
  j["model"]["continuing_subword_prefix"] = "##";
  expect_input_error(j, "model.continuing_subword_prefix", "not supported");
  j = valid_tokenizer();
  j["model"]["end_of_word_suffix"] = "</w>";
  expect_input_error(j, "model.end_of_word_suffix", "not supported");
  j = valid_tokenizer();
  j["model"]["dropout"] = 0.1;
  expect_input_error(j, "model.dropout", "not supported");
  j = valid_tokenizer();
  j["model"]["unk_token"] = "<unk>";
  expect_input_error(j, "model.unk_token", "not in model.vocab");
}

TEST(TokenizerErrors, InconsistentIds) {
  ts::json j = valid_tokenizer();
  j["model"]["vocab"]["c"] = 1;
  expect_input_error(j, "model.vocab.c", "also used by 'b'");
  j = valid_tokenizer();
  j["added_tokens"][0]["id"] = 2;
  expect_input_error(j, "added_tokens[0].id", "already used by model.vocab token 'c'");
  j = valid_tokenizer();
  j["added_tokens"].push_back(j["added_tokens"][0]);
  expect_input_error(j, "added_tokens[1].content", "duplicate");
}

TEST(TokenizerErrors, BadRegex) {
  ts::json j = valid_tokenizer();
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(unclosed";
  expect_input_error(j, "pre_tokenizer.pretokenizers[0].pattern.Regex", "does not compile");
}

TEST(TokenizerErrors, MissingFileAndInvalidText) {
  try {
    ts::Tokenizer::from_file("/nonexistent/tokenizer.json");
    FAIL() << "expected InputError";
  } catch (const ts::InputError& e) {
    EXPECT_EQ(e.file(), "/nonexistent/tokenizer.json");
  }
  auto tok = ts::Tokenizer::from_json_text(valid_tokenizer().dump(), "test.json");
  EXPECT_THROW(tok.encode("ab\xC3("), ts::InputError);
  EXPECT_THROW(tok.encode("\xED\xA0\x80"), ts::InputError);  // UTF-16 surrogate
  EXPECT_THROW(tok.id_to_token(99), std::out_of_range);
}

TEST(TokenizerErrors, FromFileNamesThePath) {
  auto path = std::filesystem::temp_directory_path() / "thinksteer_tokenizer_errors_test.json";
  {
    std::ofstream out(path);
    ts::json j = valid_tokenizer();
    j["model"]["merges"][1] = "ab zz";
    out << j.dump();
  }
  try {
    ts::Tokenizer::from_file(path);
    FAIL() << "expected InputError";
  } catch (const ts::InputError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path.string() + ": model.merges[1]: ", 0), 0u) << e.what();
  }
  std::filesystem::remove(path);
}

}  // namespace
