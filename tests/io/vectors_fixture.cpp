// The C++ side of test_vectors.py.
//   vectors_fixture DIR            writes the sample vector set (vector_sample.h) in every format:
//                                  DIR/v.h5, v.safetensors, v.gguf ("backtracking", scale 1, the
//                                  default next-block layer map), v_scaled.gguf ("overall", scale
//                                  0.5, next-block) and v_same_block.gguf ("backtracking", scale 1,
//                                  same-block), plus DIR/expected.json holding the set with every
//                                  float as its uint32 bit pattern (so Python compares exactly) and,
//                                  per GGUF file, its name, scale, layer map and our layers written;
//                                  prints the path of expected.json.
//   vectors_fixture read-gguf FILE reads a GGUF control vector written by another tool (gguf-py) and
//                                  prints the set as that JSON; a bad file exits 2 with the
//                                  InputError on stderr.
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <optional>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json.h"
#include "io/vectors.h"
#include "vector_sample.h"

namespace fs = std::filesystem;

namespace {

uint32_t bits(float v) {
  uint32_t b;
  std::memcpy(&b, &v, 4);
  return b;
}

ts::json expected(const ts::VectorSet& s) {
  ts::json bit_rows = ts::json::array(), count_rows = ts::json::array();
  for (size_t i = 0; i < s.n_names(); ++i) {
    ts::json layers = ts::json::array(), counts = ts::json::array();
    for (size_t k = 0; k < s.n_layers(); ++k) {
      ts::json row = ts::json::array();
      for (int64_t j = 0; j < s.d_model; ++j) row.push_back(bits(s.vector(i, k)[j]));
      layers.push_back(row);
      counts.push_back(s.count(i, k));
    }
    bit_rows.push_back(layers);
    count_rows.push_back(counts);
  }
  return {{"names", s.names}, {"layers", s.layers}, {"d_model", s.d_model}, {"hook_measured", s.hook_measured},
          {"hook_applied", s.hook_applied}, {"architecture", s.architecture}, {"model", s.model},
          {"provenance", s.provenance_json}, {"counts", count_rows}, {"value_bits", bit_rows}};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "read-gguf") == 0) {
    try {
      std::printf("%s\n", expected(ts::vectors_read_gguf(argv[2])).dump().c_str());
      return 0;
    } catch (const ts::InputError& ex) {
      std::fprintf(stderr, "%s\n", ex.what());
      return ts::EXIT_BAD_INPUT;
    }
  }
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR | read-gguf FILE\n", argv[0]);
    return 1;
  }
  try {
    const fs::path dir = argv[1];
    const ts::VectorSet s = ts_test::sample_vectors();
    ts::json e = expected(s);
    ts::vectors_write_h5(dir / "v.h5", s);
    ts::vectors_write_safetensors(dir / "v.safetensors", s);
    e["h5"] = (dir / "v.h5").string();
    e["safetensors"] = (dir / "v.safetensors").string();
    auto gguf = [&](const char* key, const char* file, const char* name, double scale, std::optional<ts::GgufLayerMap> map) {
      const auto layers = map ? ts::vectors_write_gguf(dir / file, s, name, scale, *map) : ts::vectors_write_gguf(dir / file, s, name, scale);
      e[key] = {{"path", (dir / file).string()}, {"name", name}, {"scale", scale},
                {"layer_map", ts::gguf_layer_map_name(map.value_or(ts::GgufLayerMap::next_block))}, {"layers", layers}};
    };
    gguf("gguf", "v.gguf", "backtracking", 1.0, std::nullopt);  // the default map
    gguf("gguf_scaled", "v_scaled.gguf", "overall", 0.5, std::nullopt);
    gguf("gguf_same_block", "v_same_block.gguf", "backtracking", 1.0, ts::GgufLayerMap::same_block);
    ts::write_file_atomic(dir / "expected.json", e.dump(1));
    std::printf("%s\n", (dir / "expected.json").c_str());
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "vectors_fixture: %s\n", ex.what());
    return 1;
  }
  return 0;
}
