// Tokenizer throughput: bench_tokenizer TOKENIZER_JSON TEXT_FILE REPEATS [--dump-ids OUT.json]
// TEXT_FILE is plain UTF-8 text encoded as one document, or, when it ends in ".jsonl", one JSON
// string per line, each encoded separately (like a corpus of traces). Encodes everything REPEATS
// times on one thread (add_special_tokens=false) and prints one JSON line with the best time.
// --dump-ids writes the ids of every document (a JSON array of arrays) for comparison with HF.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/json.h"
#include "tokenizer/tokenizer.h"

namespace {

std::vector<std::string> read_documents(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ts::InputError(path, "<file>", "cannot open for reading");
  std::vector<std::string> documents;
  if (path.size() >= 6 && path.compare(path.size() - 6, 6, ".jsonl") == 0) {
    std::string line;
    for (size_t n = 1; std::getline(in, line); ++n) {
      if (line.empty()) continue;
      ts::json j = ts::json_parse_strict(line, path);
      if (!j.is_string()) throw ts::InputError(path, "line " + std::to_string(n), "expected a JSON string");
      documents.push_back(j.get<std::string>());
    }
  } else {
    std::ostringstream buffer;
    buffer << in.rdbuf();
    documents.push_back(buffer.str());
  }
  return documents;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4 && !(argc == 6 && std::string(argv[4]) == "--dump-ids")) {
    std::fprintf(stderr, "usage: %s TOKENIZER_JSON TEXT_FILE REPEATS [--dump-ids OUT.json]\n", argv[0]);
    return 2;
  }
  try {
    const std::string tokenizer_path = argv[1];
    const int repeats = std::max(1, std::atoi(argv[3]));
    auto load_start = std::chrono::steady_clock::now();
    ts::Tokenizer tokenizer = ts::Tokenizer::from_file(tokenizer_path);
    double load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();
    std::vector<std::string> documents = read_documents(argv[2]);

    size_t bytes = 0;
    for (const auto& d : documents) bytes += d.size();
    std::vector<std::vector<int32_t>> ids(documents.size());
    double best = 1e300, total = 0;
    size_t tokens = 0;
    for (int r = 0; r < repeats; ++r) {
      auto start = std::chrono::steady_clock::now();
      tokens = 0;
      for (size_t i = 0; i < documents.size(); ++i) {
        ids[i] = tokenizer.encode_ids(documents[i]);
        tokens += ids[i].size();
      }
      double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      best = std::min(best, seconds);
      total += seconds;
    }
    // Offsets cost extra: time one pass of encode() with offsets as well.
    auto start = std::chrono::steady_clock::now();
    for (const auto& d : documents) (void)tokenizer.encode(d);
    double with_offsets = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    if (argc == 6) {
      std::ofstream out(argv[5]);
      out << ts::json(ids).dump() << "\n";
    }
    ts::json report = {{"tokenizer", tokenizer_path},
                       {"documents", documents.size()},
                       {"bytes", bytes},
                       {"tokens", tokens},
                       {"repeats", repeats},
                       {"load_seconds", load_seconds},
                       {"seconds", best},
                       {"seconds_mean", total / repeats},
                       {"seconds_with_offsets", with_offsets},
                       {"tokens_per_s", static_cast<double>(tokens) / best},
                       {"mb_per_s", static_cast<double>(bytes) / best / 1e6}};
    std::cout << report.dump() << std::endl;
  } catch (const ts::InputError& e) {
    std::fprintf(stderr, "bench_tokenizer: %s\n", e.what());
    return ts::EXIT_BAD_INPUT;
  }
  return 0;
}
