// io/h5store: collective writes at 1, 2 and 3 ranks, the serial phase, commit and bad files.
// Every test keeps its collective calls identical on all ranks; rank-0-only checks come last in a
// test body so a failed ASSERT on rank 0 cannot leave the other ranks waiting.
#include "io/h5store.h"

#include <gtest/gtest.h>
#include <hdf5.h>
#include <mpi.h>
#include <stdlib.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "core/atomic_file.h"
#include "core/done_marker.h"
#include "core/error.h"

namespace ts::h5 {
namespace {

namespace fs = std::filesystem;

int rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}
int world() {
  int n = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

std::string bcast(std::string s) {
  int n = static_cast<int>(s.size());
  MPI_Bcast(&n, 1, MPI_INT, 0, MPI_COMM_WORLD);
  s.resize(static_cast<size_t>(n));
  MPI_Bcast(s.data(), n, MPI_CHAR, 0, MPI_COMM_WORLD);
  return s;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Exact for zero and for normal halves whose mantissa fits in 10 bits (all values used here).
uint16_t to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) == 0) return static_cast<uint16_t>(x >> 16);
  const uint32_t sign = (x >> 16) & 0x8000u, exp = ((x >> 23) & 0xffu) - 127u + 15u, mant = (x >> 13) & 0x3ffu;
  return static_cast<uint16_t>(sign | (exp << 10) | mant);
}
// Exact for values whose mantissa fits in 7 bits.
uint16_t to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  return static_cast<uint16_t>(x >> 16);
}

float f32_value(int64_t row, int64_t col) { return static_cast<float>(row * 100 + col) + 0.25f; }
float f16_value(int64_t row, int64_t col) { return static_cast<float>(row % 64) + 0.5f * static_cast<float>(col); }
float bf16_value(int64_t row, int64_t col) { return static_cast<float>(row % 16) * 0.5f - 2.0f * static_cast<float>(col); }
int64_t i64_value(int64_t row, int64_t col) { return row * 1000000007LL + col - 5; }

// A directory shared by all ranks (rank 0 makes it under the working directory, build/tests/dist).
class H5Store : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string made;
    if (rank() == 0) {
      char tmpl[] = "h5store_XXXXXX";
      if (::mkdtemp(tmpl) != nullptr) made = fs::absolute(tmpl).string();
    }
    dir_ = bcast(made);
    ASSERT_FALSE(dir_.empty()) << "mkdtemp failed";
  }
  void TearDown() override {
    // Leak check: every file, group, dataset and attribute handle was closed (RAII in h5store).
    EXPECT_EQ(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
    MPI_Barrier(MPI_COMM_WORLD);
    std::error_code ec;
    if (rank() == 0 && !dir_.empty()) fs::remove_all(dir_, ec);
  }
  fs::path dir_;
};

std::vector<float> expected_f32(int64_t rows, int64_t cols, float (*f)(int64_t, int64_t)) {
  std::vector<float> v;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) v.push_back(f(r, c));
  return v;
}

template <typename T, typename F>
std::vector<T> local_rows(int64_t begin, int64_t count, int64_t cols, F f) {
  std::vector<T> v;
  for (int64_t r = begin; r < begin + count; ++r)
    for (int64_t c = 0; c < cols; ++c) v.push_back(f(r, c));
  return v;
}

TEST_F(H5Store, CollectiveWriteSerialPhaseCommitAndReadBack) {
  const int64_t mine = rank() == 1 ? 0 : (rank() + 1) * 3;  // rank 1 (np >= 2) writes nothing
  int64_t offset = 0, total = 0;
  MPI_Exscan(&mine, &offset, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
  if (rank() == 0) offset = 0;  // MPI_Exscan leaves rank 0's result undefined
  MPI_Allreduce(&mine, &total, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);

  const DatasetSpec resid{"/activations/blocks.0.hook_resid_post", DType::F32, {total, 8}, {"row", "d_model"}, {{"hook", "blocks.0.hook_resid_post"}}};
  const DatasetSpec ids{"/activations/token_ids", DType::I64, {total, 2}, {"row", "pair"}, {}};
  const DatasetSpec half{"/activations/resid_f16", DType::F16, {total, 8}, {"row", "d_model"}, {}};
  const DatasetSpec bf{"/activations/resid_bf16", DType::BF16, {total, 8}, {"row", "d_model"}, {}};
  const fs::path tmp = dir_ / "acts.h5.tmp", final_path = dir_ / "acts.h5";
  {
    ParallelFile pf(tmp, MPI_COMM_WORLD);
    for (const auto* s : {&resid, &ids, &half, &bf}) pf.create(*s);
    const std::vector<RowRange> ranges = mine > 0 ? std::vector<RowRange>{{offset, mine}} : std::vector<RowRange>{};
    const auto f32 = local_rows<float>(offset, mine, 8, f32_value);
    const auto i64 = local_rows<int64_t>(offset, mine, 2, i64_value);
    const auto f16 = local_rows<uint16_t>(offset, mine, 8, [](int64_t r, int64_t c) { return to_half(f16_value(r, c)); });
    const auto b16 = local_rows<uint16_t>(offset, mine, 8, [](int64_t r, int64_t c) { return to_bf16(bf16_value(r, c)); });
    pf.write_rows(resid.path, ranges, f32.data());
    pf.write_rows(ids.path, {{offset, mine}}, i64.data());  // a zero-count range is fine too
    pf.write_rows(half.path, ranges, f16.data());
    pf.write_rows(bf.path, ranges, b16.data());
    pf.close();
    pf.close();  // idempotent
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank() != 0) return;

  std::vector<std::string> prompts;
  for (int64_t i = 0; i < total; ++i) prompts.push_back(i == 1 ? "" : "prompt " + std::to_string(i) + " \xc3\xbc \xe2\x9c\x93");
  {
    SerialFile sf(tmp, SerialFile::Mode::READ_WRITE);
    sf.write_strings("/prompts/id", prompts, "prompt");
    sf.set_attr("/", "format", std::string("wrong"));
    sf.set_attr("/", "format", std::string("thinksteer.activations.v1"));  // overwrites
    sf.set_attr("/", "config", std::string("[model]\npath = /m\n"));
    sf.set_attr("/", "n_rows", total);
    sf.set_attr("/", "temperature", 0.75);
    for (const auto* s : {&resid, &ids, &half, &bf}) sf.describe(*s);
    sf.describe(resid);  // attaching the same scales again is harmless
  }
  commit_h5(tmp, final_path, "thinksteer.activations.v1", {resid, ids, half, bf}, "hash-0123abcd");
  EXPECT_TRUE(fs::exists(final_path));
  EXPECT_FALSE(fs::exists(tmp));
  ASSERT_TRUE(fs::exists(done_marker_path(final_path)));
  EXPECT_NE(slurp(done_marker_path(final_path)).find("hash-0123abcd"), std::string::npos);
  EXPECT_TRUE(done_marker_matches(final_path, "hash-0123abcd"));
  if (const char* keep = std::getenv("THINKSTEER_H5STORE_KEEP")) fs::copy_file(final_path, keep, fs::copy_options::overwrite_existing);

  const SerialFile rd(final_path, SerialFile::Mode::READ_ONLY);
  EXPECT_EQ(rd.shape(resid.path), (std::vector<int64_t>{total, 8}));
  EXPECT_EQ(rd.read_f32(resid.path), expected_f32(total, 8, f32_value));
  EXPECT_EQ(rd.read_f32(half.path), expected_f32(total, 8, f16_value));
  EXPECT_EQ(rd.read_f32(bf.path), expected_f32(total, 8, bf16_value));
  {  // a row range reads the same values as the whole dataset (bfloat16 decoded too)
    const std::vector<float> all = expected_f32(total, 8, bf16_value), rows = rd.read_f32_rows(bf.path, 1, total - 2);
    EXPECT_EQ(rows, std::vector<float>(all.begin() + 8, all.end() - 8));
    EXPECT_EQ(rd.read_f32_rows(resid.path, 0, total), expected_f32(total, 8, f32_value));
  }
  EXPECT_EQ(rd.members("/prompts"), (std::vector<std::string>{"id", "prompt"}));
  EXPECT_EQ(rd.read_i64(ids.path), local_rows<int64_t>(0, total, 2, i64_value));
  EXPECT_EQ(rd.read_i64("/activations/row"), local_rows<int64_t>(0, total, 1, [](int64_t r, int64_t) { return r; }));
  EXPECT_EQ(rd.read_strings("/prompts/id"), prompts);
  EXPECT_EQ(rd.attr_string("/", "format"), "thinksteer.activations.v1");
  EXPECT_EQ(rd.attr_string("/", "config"), "[model]\npath = /m\n");
  EXPECT_EQ(rd.attr_int("/", "n_rows"), total);
  EXPECT_EQ(rd.attr_string(resid.path, "hook"), "blocks.0.hook_resid_post");
  EXPECT_EQ(rd.attr_string(resid.path, "dtype"), "float32");
  EXPECT_EQ(rd.attr_string(half.path, "dtype"), "float16");
  EXPECT_EQ(rd.attr_string(bf.path, "dtype"), "bfloat16");
  EXPECT_EQ(rd.attr_string(bf.path, "encoding"), "bfloat16");
  EXPECT_NE(rd.attr_string("/activations/d_model", "NAME").find("This is a netCDF dimension but not a netCDF variable."), std::string::npos);
  EXPECT_TRUE(rd.exists("/prompts/prompt"));
  EXPECT_FALSE(rd.exists("/nope/deeper"));
  EXPECT_THROW(rd.attr_string("/", "missing"), InputError);
  EXPECT_THROW(rd.attr_int("/", "format"), InputError);
  EXPECT_THROW(rd.read_i64(resid.path), InputError);
  EXPECT_THROW(rd.read_f32("/prompts/id"), InputError);
  EXPECT_THROW(rd.shape("/activations/nope"), InputError);
}

TEST_F(H5Store, SeveralRangesPerRankInOneWrite) {
  const int n = world(), r = rank();
  const int64_t total = 5 * n + 1, cols = 4;
  const DatasetSpec spec{"/x/interleaved", DType::F32, {total, cols}, {"row", "col"}, {}};
  const fs::path file = dir_ / "interleaved.h5";
  {
    ParallelFile pf(file, MPI_COMM_WORLD);
    pf.create(spec);
    std::vector<RowRange> ranges;
    for (int64_t row = r; row < total; row += n) ranges.push_back({row, 1});
    if (r % 2 == 1) std::reverse(ranges.begin(), ranges.end());  // out of order: rows go back to file order
    ranges.push_back({0, 0});
    std::vector<float> data;
    for (const RowRange& rr : ranges)
      for (int64_t c = 0; c < rr.count * cols; ++c) data.push_back(f32_value(rr.begin, c));
    pf.write_rows(spec.path, ranges, data.data());
  }
  if (r != 0) return;
  EXPECT_EQ(SerialFile(file, SerialFile::Mode::READ_ONLY).read_f32(spec.path), expected_f32(total, cols, f32_value));
}

TEST_F(H5Store, ReopenChecksSpecsAndKeepsWriting) {
  const int n = world(), r = rank();
  const int64_t total = 2 * n;
  const DatasetSpec a{"/a/data", DType::F32, {total, 3}, {"row", "col"}, {}};
  const DatasetSpec b{"/b/ids", DType::I32, {total}, {"row"}, {}};
  const DatasetSpec empty{"/a/empty", DType::F32, {0, 8}, {"none", "d_model"}, {}};
  const fs::path file = dir_ / "resume.h5";
  {
    ParallelFile pf(file, MPI_COMM_WORLD);
    pf.create(a);
    pf.create(empty);
    const auto rows = local_rows<float>(r, 1, 3, f32_value);
    pf.write_rows(a.path, {{r, 1}}, rows.data());  // first half only: "interrupted"
    pf.write_rows(empty.path, {}, nullptr);
  }
  {
    ParallelFile pf(file, MPI_COMM_WORLD, /*open_existing=*/true);
    EXPECT_NO_THROW(pf.create(a));
    DatasetSpec wrong_shape = a;
    wrong_shape.shape[0] += 1;
    try {
      pf.create(wrong_shape);
      ADD_FAILURE() << "shape mismatch accepted";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("/a/data"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("[" + std::to_string(total + 1) + ", 3]"), std::string::npos) << e.what();
    }
    DatasetSpec wrong_type = a;
    wrong_type.dtype = DType::F16;
    EXPECT_THROW(pf.create(wrong_type), std::runtime_error);
    pf.create(b);  // new in the reopened file
    const auto rows = local_rows<float>(n + r, 1, 3, f32_value);
    pf.write_rows(a.path, {{n + r, 1}}, rows.data());
    const std::vector<int32_t> ids = {r * 10, (n + r) * 10};
    pf.write_rows(b.path, {{r, 1}, {n + r, 1}}, ids.data());
    // One rank out of range: every rank throws (the verdict is shared), nobody hangs.
    const std::vector<float> junk(3 * 4, 0.0f);
    const std::vector<RowRange> bad = r == n - 1 ? std::vector<RowRange>{{total - 1, 2}} : std::vector<RowRange>{};
    EXPECT_THROW(pf.write_rows(a.path, bad, junk.data()), std::runtime_error);
  }
  if (r != 0) return;
  const SerialFile rd(file, SerialFile::Mode::READ_ONLY);
  EXPECT_EQ(rd.read_f32(a.path), expected_f32(total, 3, f32_value));
  std::vector<int64_t> want(static_cast<size_t>(total));
  for (int64_t i = 0; i < total; ++i) want[static_cast<size_t>(i)] = (i % n + (i / n) * n) * 10;
  EXPECT_EQ(rd.read_i64(b.path), want);
  EXPECT_EQ(rd.shape(empty.path), (std::vector<int64_t>{0, 8}));
  EXPECT_TRUE(rd.read_f32(empty.path).empty());
}

TEST_F(H5Store, CommitRefusesAFileThatFailsVerification) {
  if (rank() != 0) return;
  const fs::path tmp = dir_ / "c.h5.tmp", final_path = dir_ / "c.h5";
  const DatasetSpec ok{"/g/v", DType::F32, {2, 2}, {"row", "col"}, {}};
  const std::vector<float> v = {1, 2, 3, 4};
  {
    SerialFile sf(tmp, SerialFile::Mode::CREATE);
    sf.write_dataset(ok, v.data());
    sf.set_attr("/", "format", std::string("fmt.v1"));
  }
  auto expect_refused = [&](const std::string& format, const std::vector<DatasetSpec>& specs, const std::string& needle) {
    try {
      commit_h5(tmp, final_path, format, specs, "h");
      ADD_FAILURE() << "commit accepted " << needle;
    } catch (const std::runtime_error& e) {
      EXPECT_EQ(dynamic_cast<const InputError*>(&e), nullptr) << "our own output is not a user-input error";
      EXPECT_NE(std::string(e.what()).find(tmp.string()), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(final_path));
    EXPECT_FALSE(fs::exists(done_marker_path(final_path)));
    EXPECT_TRUE(fs::exists(tmp));
  };
  expect_refused("fmt.v2", {ok}, "format");
  expect_refused("fmt.v1", {ok, DatasetSpec{"/g/missing", DType::F32, {2, 2}, {}, {}}}, "/g/missing");
  expect_refused("fmt.v1", {DatasetSpec{"/g/v", DType::F32, {2, 3}, {}, {}}}, "[2, 3]");
  expect_refused("fmt.v1", {DatasetSpec{"/g/v", DType::I32, {2, 2}, {}, {}}}, "int32");
  commit_h5(tmp, final_path, "fmt.v1", {ok}, "h");
  EXPECT_EQ(SerialFile(final_path, SerialFile::Mode::READ_ONLY).read_f32("/g/v"), v);
}

TEST_F(H5Store, MalformedFilesAreInputErrors) {
  if (rank() != 0) return;
  auto expect_input_error = [](const fs::path& p) {
    try {
      SerialFile f(p, SerialFile::Mode::READ_ONLY);
      (void)f.read_f32("/g/v");
      ADD_FAILURE() << "opened " << p;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos) << e.what();
    }
  };
  const fs::path text = dir_ / "text.h5";
  std::ofstream(text) << "this is not an HDF5 file, just some text bytes\n";
  expect_input_error(text);
  expect_input_error(dir_ / "does_not_exist.h5");

  const fs::path good = dir_ / "good.h5", cut = dir_ / "cut.h5";
  const DatasetSpec spec{"/g/v", DType::F32, {256, 64}, {"row", "col"}, {}};
  const std::vector<float> v(256 * 64, 1.5f);
  {
    SerialFile sf(good, SerialFile::Mode::CREATE);
    sf.write_dataset(spec, v.data());
  }
  const std::string bytes = slurp(good);
  for (size_t keep : {bytes.size() / 2, size_t{100}, size_t{8}, bytes.size() - 1}) {
    std::ofstream(cut, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(keep));
    SCOPED_TRACE("kept " + std::to_string(keep) + " of " + std::to_string(bytes.size()) + " bytes");
    expect_input_error(cut);
  }
}

TEST_F(H5Store, CompressionIsRefusedWhereUnsupported) {
  if (parallel_compression_supported()) GTEST_SKIP() << "this HDF5 build writes filtered datasets in parallel";
  ParallelFile pf(dir_ / "z.h5", MPI_COMM_WORLD);
  try {
    pf.create(DatasetSpec{"/z", DType::F32, {4, 4}, {}, {}}, 4);
    ADD_FAILURE() << "compression accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("compression = 0"), std::string::npos) << e.what();
  }
  pf.create(DatasetSpec{"/z", DType::F32, {4, 4}, {}, {}}, 0);  // the file is still usable
}

}  // namespace
}  // namespace ts::h5
