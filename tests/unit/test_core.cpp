// Small pure pieces: SHA-256 test vectors, sampling streams, prompts JSONL errors.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/sha256.h"
#include "io/prompts.h"
#include "model/sampling.h"

using namespace ts;
namespace fs = std::filesystem;

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  std::string million(1000000, 'a');
  EXPECT_EQ(sha256_hex(million), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sampling, StreamsArePureFunctionsOfSeedPromptAndStep) {
  const uint64_t s = stream_id_of("prompt-17");
  EXPECT_EQ(stream_uniform(3, s, 5), stream_uniform(3, s, 5));
  EXPECT_NE(stream_uniform(3, s, 5), stream_uniform(3, s, 6));
  EXPECT_NE(stream_uniform(3, s, 5), stream_uniform(4, s, 5));
  EXPECT_NE(stream_uniform(3, s, 5), stream_uniform(3, stream_id_of("prompt-18"), 5));
  double mean = 0;
  for (uint64_t i = 0; i < 100000; ++i) {
    const double u = stream_uniform(1, 2, i);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    mean += u / 100000;
  }
  EXPECT_NEAR(mean, 0.5, 0.01);
}

TEST(Sampling, GreedyTopKTopP) {
  const float logits[5] = {1.0f, 3.0f, 3.0f, 0.5f, 2.0f};
  EXPECT_EQ(sample_from_logits(logits, 5, {0.0, 1.0, 0}, 0.99), 1);  // first maximum
  // top_k = 1 is greedy whatever u is.
  EXPECT_EQ(sample_from_logits(logits, 5, {1.0, 1.0, 1}, 0.99), 1);
  // tiny top_p keeps only the best token.
  EXPECT_EQ(sample_from_logits(logits, 5, {1.0, 1e-6, 0}, 0.99), 1);
  // Empirical frequencies follow softmax at temperature 1 within 1%.
  std::vector<int> counts(5, 0);
  const int n = 200000;
  for (int i = 0; i < n; ++i) counts[static_cast<size_t>(sample_from_logits(logits, 5, {1.0, 1.0, 0}, stream_uniform(9, 9, static_cast<uint64_t>(i))))]++;
  double z = 0;
  for (float l : logits) z += std::exp(l);
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(counts[static_cast<size_t>(i)] / double(n), std::exp(logits[i]) / z, 0.01) << i;
}

namespace {
fs::path write_file(const std::string& name, const std::string& text) {
  fs::path p = fs::temp_directory_path() / ("thinksteer_test_" + std::to_string(::getpid()) + "_" + name);
  std::ofstream(p) << text;
  return p;
}
}  // namespace

TEST(Prompts, ReadsFieldsAndDefaultsIds) {
  fs::path p = write_file("ok.jsonl", "{\"question\": \"2+2?\", \"answer\": 4}\n\n{\"question\": \"x\", \"id\": \"q7\"}\n");
  auto prompts = prompts_read_jsonl(p, "question", "id", "answer");
  ASSERT_EQ(prompts.size(), 2u);
  EXPECT_EQ(prompts[0].id, "0");
  EXPECT_EQ(prompts[0].answer, "4");
  EXPECT_EQ(prompts[1].id, "q7");
}

TEST(Prompts, BadLinesNameFileLineAndField) {
  auto expect_error = [](const std::string& text, const std::string& where, const std::string& field) {
    fs::path p = write_file("bad.jsonl", text);
    try {
      prompts_read_jsonl(p, "question", "id", "answer");
      FAIL() << "expected InputError for " << text;
    } catch (const InputError& e) {
      EXPECT_EQ(e.file(), p.string() + where) << e.what();
      EXPECT_EQ(e.field(), field) << e.what();
    }
  };
  expect_error("{\"question\": \"a\"}\nnot json\n", ":2", "<json>");
  expect_error("{\"prompt\": \"a\"}\n", ":1", "question");
  expect_error("{\"question\": 3}\n", ":1", "question");
  expect_error("{\"question\": \"a\", \"id\": 1}\n{\"question\": \"b\", \"id\": 1}\n", ":2", "id");
  expect_error("", "", "data.prompts");
}
