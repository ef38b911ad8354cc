// Planted-truth reasoning world, part 2: a byte-level BPE trainer that writes an HF tokenizer.json in
// the DeepSeek-R1-Distill layout, so the toy models are tokenized by the same code as real ones.
//
// Pipeline declared by the output (and used for training, through our own PreTokenizer built from
// the same JSON): no normalizer; pre_tokenizer Sequence[Split(\p{N}{1,3}), Split(CJK runs),
// Split(R1/Qwen2 regex), all isolated, ByteLevel(add_prefix_space=false, use_regex=false)];
// no post-processor; ByteLevel decoder (what scripts/make_demo_model.py gets from HF tokenizers).
//
// Training is HF BpeTrainer's algorithm: added tokens are cut out of every text first (never
// merged), the remaining text is pre-tokenized into words, and starting from all 256 byte-level
// characters (ids 0..255, sorted by code point like HF) the most frequent adjacent pair over the word
// counts is merged until the model vocabulary is full. Ties go to the pair whose (left, right) token
// strings are lexicographically smallest (raw bytes), so the output depends only on the texts and
// options. A merge whose result already exists (e.g. "a"+"bc" after "ab"+"c") adds a merge but no
// token, as in HF. Training stops early, with a smaller vocabulary, when no pair occurs at least
// min_frequency times.
//
// Ids: model vocabulary 0..V-1, then the added tokens in the order given (special tokens first),
// as in DeepSeek-R1-Distill (whose added tokens follow the BPE vocabulary).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ts {

struct BpeTrainOptions {
  // Total vocabulary: model tokens + added tokens; 256 + added + 1 .. 65536.
  int64_t vocab_size = 1024;
  // Added tokens marked special (skipped by decode(skip_special_tokens)): the R1 chat markers.
  std::vector<std::string> special_tokens = {"<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>",
                                             "<｜Assistant｜>"};
  // Added tokens not marked special (kept by decode), as in R1-Distill.
  std::vector<std::string> added_tokens = {"<think>", "</think>"};
  // A pair is merged only when it occurs at least this often (over all words).
  int64_t min_frequency = 2;
};

struct BpeTrainResult {
  std::string tokenizer_json;  // the complete tokenizer.json text
  int64_t vocab_size = 0;      // model tokens + added tokens (the largest id + 1)
  int64_t n_merges = 0;
  int64_t n_words = 0;         // distinct pre-tokenized words in the training texts
};

// Throws std::invalid_argument on bad options (vocab_size out of range, empty or duplicate added
// tokens) and InputError("<training text>", "text N", ...) on a text that is not valid UTF-8.
BpeTrainResult bpe_train(const std::vector<std::string>& texts, const BpeTrainOptions& opt);
std::string bpe_train_tokenizer_json(const std::vector<std::string>& texts, const BpeTrainOptions& opt);

// The "pre_tokenizer" value the trainer writes (and trains with), as JSON text.
const std::string& bpe_r1_pre_tokenizer_json();

}  // namespace ts
