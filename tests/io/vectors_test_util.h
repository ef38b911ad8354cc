// The fixture and helpers of the io/vectors tests (test_vectors.cpp: round trips, the GGUF mapping, writers;
// test_vectors_malformed.cpp: malformed files of each format), one gtest executable.
#pragma once
#include "io/vectors.h"

#include <gtest/gtest.h>
#include <hdf5.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <map>

#include "../unit/temp_dir.h"
#include "core/error.h"
#include "core/json.h"
#include "gguf_bytes.h"
#include "io/gguf.h"
#include "io/h5store.h"
#include "model/safetensors.h"
#include "vector_sample.h"

namespace vectors_test {

namespace fs = std::filesystem;

inline std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
inline void spit(const fs::path& p, const std::string& bytes) { std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes; }

// Bit-for-bit equality of float arrays (== would equate -0 and +0).
inline void expect_same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
}

inline void expect_same_set(const ts::VectorSet& got, const ts::VectorSet& want) {
  EXPECT_EQ(got.hook_measured, want.hook_measured);
  EXPECT_EQ(got.hook_applied, want.hook_applied);
  EXPECT_EQ(got.layers, want.layers);
  EXPECT_EQ(got.d_model, want.d_model);
  EXPECT_EQ(got.names, want.names);
  EXPECT_EQ(got.counts, want.counts);
  EXPECT_EQ(got.model, want.model);
  EXPECT_EQ(got.architecture, want.architecture);
  EXPECT_EQ(got.provenance_json, want.provenance_json);
  expect_same_bits(got.values, want.values);
}

// The InputError of `read(path)`; fails the test if it succeeds or throws anything else.
inline ts::InputError read_fails(const std::function<ts::VectorSet(const fs::path&)>& read, const fs::path& path) {
  try {
    read(path);
    ADD_FAILURE() << path << " was read without error";
  } catch (const ts::InputError& e) {
    EXPECT_EQ(e.file(), path.string()) << e.what();
    return e;
  } catch (const std::exception& e) {
    ADD_FAILURE() << path << ": not an InputError: " << e.what();
  }
  return ts::InputError("", "", "");
}

class Vectors : public ::testing::Test {
 protected:
  void TearDown() override {
    // Every HDF5 handle was closed (RAII in h5store), error paths included.
    EXPECT_EQ(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
  }
  ts_test::TempDir dir_{"thinksteer_vectors"};
  fs::path path(const std::string& name) const { return dir_.path() / name; }
};

}  // namespace vectors_test
