// The deterministic VectorSet the vector-file tests write (test_vectors.cpp and vectors_fixture.cpp,
// which hands the files to the Python readers in test_vectors.py). Its values exercise bit
// exactness: fractions that are not short decimals, negative zero, subnormals, the float32 extremes,
// and one missing vector (count 0, all zero).
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "io/vectors.h"

namespace ts_test {

inline ts::VectorSet sample_vectors() {
  ts::VectorSet s;
  s.hook_measured = "blocks.{l}.hook_resid_post";
  s.hook_applied = "blocks.{l}.hook_resid_post";
  s.layers = {0, 2, 5};
  s.d_model = 6;
  s.names = {"overall", "backtracking", "uncertainty-estimation"};
  s.model = "/models/DeepSeek-R1-Distill-Qwen-1.5B";
  s.architecture = "qwen2";
  s.provenance_json = R"({"config_sha256":"0123abcd","git_commit":"fef18d7","seed":42,"world_size":2})";
  for (size_t i = 0; i < s.names.size(); ++i)
    for (size_t k = 0; k < s.layers.size(); ++k) {
      const bool missing = i == 2 && k == 0;
      s.counts.push_back(missing ? 0 : static_cast<int64_t>(431 + 100 * i + 7 * k));
      for (int64_t j = 0; j < s.d_model; ++j) {
        float v = (static_cast<float>(i + 1) / 3.0f - static_cast<float>(k) * 1.25f) * std::ldexp(1.0f, static_cast<int>(j) - 2);
        if (j == 3) v = -0.0f;
        if (j == 4) v = std::numeric_limits<float>::denorm_min() * static_cast<float>(i + 2 * k + 1);
        if (j == 5) v = (k % 2 ? std::numeric_limits<float>::max() : std::numeric_limits<float>::lowest()) / static_cast<float>(i + 1);
        s.values.push_back(missing ? 0.0f : v);
      }
    }
  return s;
}

}  // namespace ts_test
