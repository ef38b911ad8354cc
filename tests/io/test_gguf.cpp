// io/gguf: serialize -> parse round trip, then every check of gguf_parse on hand-built files: magic,
// version, counts larger than the file, string and array lengths, value types, bools, duplicate
// keys, general.alignment, tensor dims/types/offsets (misaligned, out of range, overlapping) and
// truncation at every byte. Every failure must be an InputError naming the file and the field;
// nothing may read outside the given bytes (the buffer is exactly the file's size, for ASan).
#include "io/gguf.h"

#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "gguf_bytes.h"

using namespace ts;
using ts_test::GgufBytes;

namespace {

const char* const FILE_NAME = "t.gguf";

struct Failure {
  std::string field, message;
};

// Parses a copy of `bytes` held in a buffer of exactly that size and returns the InputError;
// fails the test if parsing succeeds or throws anything else.
Failure parse_fails(const std::vector<std::byte>& bytes) {
  std::unique_ptr<std::byte[]> exact(new std::byte[bytes.empty() ? 1 : bytes.size()]);
  if (!bytes.empty()) std::memcpy(exact.get(), bytes.data(), bytes.size());
  try {
    const GgufFile f = gguf_parse({exact.get(), bytes.size()}, FILE_NAME);
    ADD_FAILURE() << "parse succeeded with " << f.tensors.size() << " tensors";
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), FILE_NAME);
    return {e.field(), e.what()};
  }
  return {};
}

std::vector<std::byte> as_bytes(const std::string& s) {
  std::vector<std::byte> out(s.size());
  std::memcpy(out.data(), s.data(), s.size());
  return out;
}

// A valid control-vector-like file: two keys, direction.1 (5 floats) and direction.2 (3 floats).
std::string sample_file(std::vector<float>& a, std::vector<float>& b, uint64_t alignment = GGUF_DEFAULT_ALIGNMENT) {
  a = {1.5f, -2.25f, 0.0f, 3e-38f, -1e30f};
  b = {7.0f, 8.0f, -9.5f};
  const std::vector<GgufKeyValue> kv = {
      {"general.architecture", GgufValue::string("controlvector")},
      {"controlvector.layer_count", GgufValue::int32(2)},
      {"x.u32", GgufValue::uint32(4000000000u)},
      {"x.i64", GgufValue::int64(-5)},
      {"x.f64", GgufValue::float64(0.125)},
  };
  return gguf_serialize(kv,
                        {{"direction.1", {5}, GgmlType::F32, std::as_bytes(std::span(a))},
                         {"direction.2", {3}, GgmlType::F32, std::as_bytes(std::span(b))}},
                        alignment);
}

TEST(Gguf, SerializeThenParse) {
  std::vector<float> a, b;
  const std::string text = sample_file(a, b);
  const auto bytes = as_bytes(text);
  const GgufFile f = gguf_parse(bytes, FILE_NAME);
  EXPECT_EQ(f.version, 3u);
  EXPECT_EQ(f.alignment, 32u);
  EXPECT_EQ(f.data_start % 32, 0u);
  EXPECT_EQ(f.find("general.alignment"), nullptr);  // the default is not written
  ASSERT_EQ(f.metadata.size(), 5u);
  EXPECT_EQ(f.find("general.architecture")->s, "controlvector");
  EXPECT_EQ(f.find("controlvector.layer_count")->type, GgufType::INT32);
  EXPECT_EQ(f.find("controlvector.layer_count")->i, 2);
  EXPECT_EQ(f.find("x.u32")->u, 4000000000u);
  EXPECT_EQ(f.find("x.i64")->i, -5);
  EXPECT_EQ(f.find("x.f64")->f, 0.125);
  ASSERT_EQ(f.tensors.size(), 2u);
  EXPECT_EQ(f.tensors[0].offset, 0u);
  EXPECT_EQ(f.tensors[1].offset, 32u);  // 20 bytes padded to 32
  EXPECT_EQ(f.tensors[1].dims, std::vector<uint64_t>{3});
  const auto da = gguf_tensor_bytes(bytes, f, *f.tensor("direction.1"));
  const auto db = gguf_tensor_bytes(bytes, f, *f.tensor("direction.2"));
  ASSERT_EQ(da.size(), 20u);
  ASSERT_EQ(db.size(), 12u);
  EXPECT_EQ(std::memcmp(da.data(), a.data(), 20), 0);
  EXPECT_EQ(std::memcmp(db.data(), b.data(), 12), 0);
  EXPECT_EQ(text.size() % 32, 0u);  // the last tensor is padded too
}

TEST(Gguf, OtherAlignmentIsWrittenAndHonoured) {
  std::vector<float> a, b;
  const GgufFile f = gguf_parse(as_bytes(sample_file(a, b, 64)), FILE_NAME);
  ASSERT_NE(f.find("general.alignment"), nullptr);
  EXPECT_EQ(f.find("general.alignment")->u, 64u);
  EXPECT_EQ(f.alignment, 64u);
  EXPECT_EQ(f.data_start % 64, 0u);
  EXPECT_EQ(f.tensors[1].offset, 64u);
}

TEST(Gguf, ReadsEveryValueTypeAndSkipsArrays) {
  GgufBytes g;
  g.header(0, 9);
  g.str("a.u8").u32(0).u8(200);
  g.str("a.i16").u32(3).raw("\xfe\xff", 2);  // -2
  g.str("a.f32").u32(6).f32(0.5f);
  g.str("a.bool").u32(7).u8(1);
  g.str("a.u64").u32(10).u64(std::numeric_limits<uint64_t>::max());
  g.str("arr.u32").u32(9).u32(4).u64(3).u32(1).u32(2).u32(3);
  g.str("arr.str").u32(9).u32(8).u64(2).str("x").str("yz");
  g.str("arr.bool").u32(9).u32(7).u64(2).u8(0).u8(1);
  g.str("arr.empty").u32(9).u32(12).u64(0);
  const GgufFile f = gguf_parse(g.bytes(), FILE_NAME);
  EXPECT_EQ(f.find("a.u8")->u, 200u);
  EXPECT_EQ(f.find("a.i16")->i, -2);
  EXPECT_EQ(f.find("a.f32")->f, 0.5);
  EXPECT_EQ(f.find("a.bool")->i, 1);
  EXPECT_EQ(f.find("a.u64")->u, std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(f.find("arr.u32")->array_type, GgufType::UINT32);
  EXPECT_EQ(f.find("arr.u32")->array_size, 3u);
  EXPECT_EQ(f.find("arr.str")->array_size, 2u);
  EXPECT_EQ(f.find("arr.empty")->array_size, 0u);
  EXPECT_TRUE(f.tensors.empty());
}

TEST(Gguf, TruncationAtEveryByteIsAnInputError) {
  std::vector<float> a, b;
  const auto bytes = as_bytes(sample_file(a, b));
  const GgufFile f = gguf_parse(bytes, FILE_NAME);
  const uint64_t data_end = f.data_start + f.tensors[1].offset + f.tensors[1].bytes;
  for (size_t n = 0; n < bytes.size(); ++n) {
    const std::vector<std::byte> prefix(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    if (n >= data_end) {  // only the last tensor's padding is cut: still a complete file
      EXPECT_NO_THROW(gguf_parse(prefix, FILE_NAME)) << n;
      continue;
    }
    const Failure e = parse_fails(prefix);
    EXPECT_FALSE(e.field.empty()) << "prefix of " << n << " bytes";
  }
}

TEST(Gguf, HeaderChecks) {
  EXPECT_EQ(parse_fails(GgufBytes().raw("GGUF", 4).bytes()).field, "<header>");
  GgufBytes magic;
  magic.raw("GGML", 4).u32(3).u64(0).u64(0);
  EXPECT_EQ(parse_fails(magic.bytes()).field, "<magic>");
  EXPECT_EQ(parse_fails(GgufBytes().header(0, 0, 1).bytes()).field, "<version>");
  EXPECT_EQ(parse_fails(GgufBytes().header(0, 0, 4).bytes()).field, "<version>");
  const Failure big_endian = parse_fails(GgufBytes().header(0, 0, 0x03000000u).bytes());
  EXPECT_EQ(big_endian.field, "<version>");
  EXPECT_NE(big_endian.message.find("big-endian"), std::string::npos);
  EXPECT_NO_THROW(gguf_parse(GgufBytes().header(0, 0, 2).bytes(), FILE_NAME));  // v2 has the same layout
}

TEST(Gguf, HugeCountsAreRejectedBeforeAllocating) {
  EXPECT_EQ(parse_fails(GgufBytes().header(uint64_t{1} << 62, 0).bytes()).field, "<tensor_count>");
  EXPECT_EQ(parse_fails(GgufBytes().header(0, std::numeric_limits<uint64_t>::max()).bytes()).field, "<metadata_kv_count>");
  GgufBytes key;
  key.header(0, 1).u64(std::numeric_limits<uint64_t>::max()).raw("k", 1).u32(0).u8(0);
  EXPECT_EQ(parse_fails(key.bytes()).field, "<metadata #0>");
  GgufBytes value;
  value.header(0, 1).str("k").u32(8).u64(uint64_t{1} << 40).raw("abc", 3);
  EXPECT_EQ(parse_fails(value.bytes()).field, "k");
  GgufBytes array;
  array.header(0, 1).str("k").u32(9).u32(11).u64(uint64_t{1} << 61).u64(0);
  EXPECT_EQ(parse_fails(array.bytes()).field, "k");
  GgufBytes strings;
  strings.header(0, 1).str("k").u32(9).u32(8).u64(uint64_t{1} << 60).u64(0);
  EXPECT_EQ(parse_fails(strings.bytes()).field, "k");
  GgufBytes dims;  // 2^40 x 2^40 elements: the element count overflows int64
  dims.header(1, 0).tensor("t", {uint64_t{1} << 40, uint64_t{1} << 40}, 0, 0).pad();
  EXPECT_EQ(parse_fails(dims.bytes()).field, "t");
}

TEST(Gguf, MetadataChecks) {
  auto one_kv = [](auto&& add) {
    GgufBytes g;
    g.header(0, 1);
    add(g);
    return parse_fails(g.bytes());
  };
  EXPECT_EQ(one_kv([](GgufBytes& g) { g.str("k").u32(13).u8(0); }).field, "k");                       // unknown type
  EXPECT_EQ(one_kv([](GgufBytes& g) { g.str("k").u32(7).u8(2); }).field, "k");                        // bool 2
  EXPECT_EQ(one_kv([](GgufBytes& g) { g.str("k").u32(9).u32(9).u64(1).u32(0).u64(0); }).field, "k");  // nested array
  EXPECT_EQ(one_kv([](GgufBytes& g) { g.str("k").u32(9).u32(7).u64(1).u8(5); }).field, "k");          // bool 5 in an array
  EXPECT_EQ(one_kv([](GgufBytes& g) { g.str("").u32(0).u8(0); }).field, "<metadata #0>");             // empty key
  EXPECT_EQ(one_kv([](GgufBytes& g) { g.str("k\xc3\xa9").u32(0).u8(0); }).field, "<metadata #0>");    // not ASCII
  GgufBytes dup;
  dup.header(0, 2).kv_u32("k", 1).kv_u32("k", 2);
  EXPECT_EQ(parse_fails(dup.bytes()).field, "k");
  for (uint32_t alignment : {0u, 12u}) {
    GgufBytes g;
    g.header(0, 1).kv_u32("general.alignment", alignment);
    EXPECT_EQ(parse_fails(g.bytes()).field, "general.alignment") << alignment;
  }
  GgufBytes wrong_type;
  wrong_type.header(0, 1).kv_i32("general.alignment", 32);
  EXPECT_EQ(parse_fails(wrong_type.bytes()).field, "general.alignment");
}

TEST(Gguf, TensorInfoChecks) {
  auto one_tensor = [](const std::string& name, const std::vector<uint64_t>& dims, uint32_t type, uint64_t offset, size_t data_bytes = 64) {
    GgufBytes g;
    g.header(1, 0).tensor(name, dims, type, offset).pad();
    for (size_t k = 0; k < data_bytes; ++k) g.u8(0);
    return parse_fails(g.bytes());
  };
  EXPECT_EQ(one_tensor("t", {}, 0, 0).field, "t");                         // 0 dims
  EXPECT_EQ(one_tensor("t", {1, 1, 1, 1, 1}, 0, 0).field, "t");            // 5 dims
  EXPECT_EQ(one_tensor("t", {4}, 2, 0).field, "t");                        // Q4_0: quantized
  EXPECT_EQ(one_tensor("t", {4}, 99, 0).field, "t");                       // unknown type
  EXPECT_EQ(one_tensor("t", {4}, 0, 16).field, "t");                       // misaligned offset
  EXPECT_EQ(one_tensor("t", {4}, 0, 64).field, "t");                       // past the end
  EXPECT_EQ(one_tensor("t", {17}, 0, 0).field, "t");                       // 68 bytes > 64
  EXPECT_EQ(one_tensor("t", {4}, 0, uint64_t{1} << 63).field, "t");        // offset + size overflows / out of range
  EXPECT_EQ(one_tensor("", {4}, 0, 0).field, "<tensor #0>");               // empty name
  EXPECT_EQ(one_tensor(std::string(65, 'n'), {4}, 0, 0).field, "<tensor #0>");
  EXPECT_NO_THROW(gguf_parse(GgufBytes().header(1, 0).tensor(std::string(64, 'n'), {4}, 0, 0).pad().floats({1, 2, 3, 4}).pad().bytes(), FILE_NAME));

  GgufBytes overlap;  // b starts inside a
  overlap.header(2, 0).tensor("a", {16}, 0, 0).tensor("b", {8}, 0, 32).pad();
  for (int k = 0; k < 96; ++k) overlap.u8(0);
  EXPECT_EQ(parse_fails(overlap.bytes()).field, "b");
  GgufBytes same;  // a zero-sized tensor in between must not hide the overlap
  same.header(3, 0).tensor("a", {16}, 0, 0).tensor("z", {0}, 0, 32).tensor("c", {8}, 0, 32).pad();
  for (int k = 0; k < 96; ++k) same.u8(0);
  EXPECT_EQ(parse_fails(same.bytes()).field, "c");
  GgufBytes dup;
  dup.header(2, 0).tensor("a", {4}, 0, 0).tensor("a", {4}, 0, 32).pad();
  for (int k = 0; k < 64; ++k) dup.u8(0);
  EXPECT_EQ(parse_fails(dup.bytes()).field, "a");
  GgufBytes no_data;  // tensor infos, then nothing
  no_data.header(1, 0).tensor("a", {4}, 0, 0);
  EXPECT_EQ(parse_fails(no_data.bytes()).field, "<data>");
}

TEST(Gguf, SerializeRejectsBadArguments) {
  const std::vector<float> v = {1, 2, 3};
  const auto data = std::as_bytes(std::span(v));
  EXPECT_THROW(gguf_serialize({}, {{"t", {4}, GgmlType::F32, data}}), std::invalid_argument);  // 3 floats for 4
  EXPECT_THROW(gguf_serialize({}, {{"t", {3}, GgmlType::F32, data}, {"t", {3}, GgmlType::F32, data}}), std::invalid_argument);
  EXPECT_THROW(gguf_serialize({}, {{std::string(65, 'n'), {3}, GgmlType::F32, data}}), std::invalid_argument);
  EXPECT_THROW(gguf_serialize({{"k", GgufValue::int32(1)}, {"k", GgufValue::int32(2)}}, {}), std::invalid_argument);
  GgufValue array;
  array.type = GgufType::ARRAY;
  EXPECT_THROW(gguf_serialize({{"k", array}}, {}), std::invalid_argument);
  EXPECT_THROW(gguf_serialize({}, {}, 12), std::invalid_argument);
  EXPECT_NO_THROW(gguf_parse(as_bytes(gguf_serialize({}, {})), FILE_NAME));  // an empty file is valid
}

}  // namespace
