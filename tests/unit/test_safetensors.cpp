// safetensors: write -> parse round trip, truncation at every byte offset, and every header check of
// safetensors_parse (8-byte minimum, 100 MB header bound, '{' first, duplicates, holes, overlaps,
// coverage, overflow, metadata strings, unknown tensor fields). Every failure must be an InputError
// naming the file and the field; nothing may read outside the given bytes (run under ASan to check).
#include <gtest/gtest.h>

#include "temp_dir.h"
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "core/error.h"
#include "model/safetensors.h"

using namespace ts;
namespace fs = std::filesystem;

namespace {

using Bytes = std::vector<std::byte>;

// A safetensors file from header text (used verbatim) and `data_size` bytes of data.
Bytes make_file(const std::string& header, size_t data_size = 0, uint64_t length_override = 0, bool override_length = false) {
  Bytes out(8 + header.size() + data_size);
  const uint64_t n = override_length ? length_override : header.size();
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<std::byte>((n >> (8 * i)) & 0xff);
  std::memcpy(out.data() + 8, header.data(), header.size());
  for (size_t i = 0; i < data_size; ++i) out[8 + header.size() + i] = static_cast<std::byte>(i * 7 + 1);
  return out;
}

Bytes read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Bytes out(chars.size());
  if (!chars.empty()) std::memcpy(out.data(), chars.data(), chars.size());
  return out;
}

using ts_test::TempDir;

struct Failure {
  std::string file, field, message;
};

// Parses a copy of `bytes` held in a buffer of exactly that size (so ASan sees any over-read) and
// returns the InputError; fails the test if parsing succeeds or throws anything else.
Failure parse_fails(const Bytes& bytes, const std::string& file = "t.safetensors") {
  std::unique_ptr<std::byte[]> exact(new std::byte[bytes.size() ? bytes.size() : 1]);
  if (!bytes.empty()) std::memcpy(exact.get(), bytes.data(), bytes.size());
  try {
    SafetensorsHeader h = safetensors_parse({exact.get(), bytes.size()}, file);
    ADD_FAILURE() << "parse succeeded with " << h.tensors.size() << " tensors";
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), file);
    EXPECT_NE(std::string(e.what()).find(file + ": "), std::string::npos) << e.what();
    return {e.file(), e.field(), e.what()};
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not an InputError: " << e.what();
  }
  return {};
}

SafetensorsHeader parse_ok(const Bytes& bytes) {
  std::unique_ptr<std::byte[]> exact(new std::byte[bytes.size() ? bytes.size() : 1]);
  if (!bytes.empty()) std::memcpy(exact.get(), bytes.data(), bytes.size());
  return safetensors_parse({exact.get(), bytes.size()}, "ok.safetensors");
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Two small tensors tiling 24 bytes: a F32 [2,2] (16 bytes) and a I16 [4] (8 bytes).
const std::string GOOD_HEADER =
    R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
    R"("b":{"dtype":"I16","shape":[4],"data_offsets":[16,24]}})";

}  // namespace

TEST(Safetensors, GoodHeaderParses) {
  SafetensorsHeader h = parse_ok(make_file(GOOD_HEADER, 24));
  ASSERT_EQ(h.tensors.size(), 2u);
  EXPECT_EQ(h.data_start, 8 + GOOD_HEADER.size());
  EXPECT_EQ(h.tensors[0].name, "a");
  EXPECT_EQ(h.tensors[0].dtype, DType::F32);
  EXPECT_EQ(h.tensors[0].shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(h.tensors[0].numel(), 4);
  EXPECT_EQ(h.tensors[1].begin, 16u);
  EXPECT_EQ(h.tensors[1].end, 24u);
  EXPECT_EQ(h.metadata.at("format"), "pt");
}

TEST(Safetensors, EmptyAndZeroSizedTensorsAreValid) {
  EXPECT_TRUE(parse_ok(make_file("{}")).tensors.empty());
  SafetensorsHeader h = parse_ok(make_file(R"({"e":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]},)"
                                           R"("s":{"dtype":"U8","shape":[],"data_offsets":[0,1]}})",
                                           1));
  ASSERT_EQ(h.tensors.size(), 2u);
  EXPECT_EQ(h.tensors[0].numel(), 0);
  EXPECT_EQ(h.tensors[1].numel(), 1);  // a scalar
}

TEST(Safetensors, WriteParseRoundTrip) {
  TempDir dir;
  const fs::path p = dir.path() / "rt.safetensors";
  std::vector<float> f32 = {1.f, -2.5f, 3.25f, 0.f, 7.f, 8.f};
  std::vector<int64_t> i64 = {-1, 1LL << 40, 3};
  std::vector<uint16_t> bf16 = {0x3f80, 0xbf80};
  std::vector<TensorBytes> tensors = {
      {"w.f32", DType::F32, {2, 3}, std::as_bytes(std::span(f32))},
      {"w.i64", DType::I64, {3}, std::as_bytes(std::span(i64))},
      {"w.bf16", DType::BF16, {1, 2}, std::as_bytes(std::span(bf16))},
      {"w.empty", DType::F16, {0}, {}},
  };
  safetensors_write(p, tensors, {{"format", "pt"}, {"note", "héllo \"quoted\""}});

  const Bytes raw = read_all(p);
  ASSERT_GE(raw.size(), 8u);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(raw[static_cast<size_t>(i)]);
  EXPECT_EQ((8 + n) % 8, 0u) << "header is padded to a multiple of 8";

  SafetensorsFile file(p);
  const SafetensorsHeader& h = file.header();
  EXPECT_EQ(h.metadata.size(), 2u);
  EXPECT_EQ(h.metadata.at("note"), "héllo \"quoted\"");
  ASSERT_EQ(h.tensors.size(), tensors.size());
  for (const auto& t : tensors) {
    const TensorInfo* info = file.find(t.name);
    ASSERT_NE(info, nullptr) << t.name;
    EXPECT_EQ(info->dtype, t.dtype);
    EXPECT_EQ(info->shape, t.shape);
    std::span<const std::byte> got = file.bytes(*info);
    ASSERT_EQ(got.size(), t.data.size()) << t.name;
    EXPECT_TRUE(std::equal(got.begin(), got.end(), t.data.begin())) << t.name;
  }
  EXPECT_EQ(file.find("absent"), nullptr);
  // The same bytes parse identically from memory.
  SafetensorsHeader again = parse_ok(raw);
  EXPECT_EQ(again.tensors.size(), h.tensors.size());
  EXPECT_EQ(again.data_start, h.data_start);

  // Move keeps the mapping valid.
  SafetensorsFile moved = std::move(file);
  EXPECT_EQ(moved.bytes(*moved.find("w.f32")).size(), f32.size() * sizeof(float));
}

TEST(Safetensors, TruncationAtEveryOffsetIsAnInputError) {
  TempDir dir;
  const fs::path p = dir.path() / "full.safetensors";
  std::vector<float> a = {1, 2, 3, 4, 5, 6};
  std::vector<uint8_t> b = {9, 8, 7};
  safetensors_write(p, {{"a", DType::F32, {2, 3}, std::as_bytes(std::span(a))}, {"b", DType::U8, {3}, std::as_bytes(std::span(b))}},
                    {{"format", "pt"}});
  const Bytes full = read_all(p);
  ASSERT_NO_THROW(parse_ok(full));
  for (size_t k = 0; k < full.size(); ++k) {
    SCOPED_TRACE("truncated to " + std::to_string(k) + " of " + std::to_string(full.size()) + " bytes");
    Failure f = parse_fails(Bytes(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(k)));
    EXPECT_FALSE(f.field.empty());
    // Also through the file path (mmap of a truncated file).
    if (k % 7 == 0 || k < 9) {
      const fs::path t = dir.path() / "trunc.safetensors";
      {
        std::ofstream out(t, std::ios::binary | std::ios::trunc);
        out.write(reinterpret_cast<const char*>(full.data()), static_cast<std::streamsize>(k));
      }
      try {
        SafetensorsFile bad(t);
        ADD_FAILURE() << "opened a truncated file";
      } catch (const InputError& e) {
        EXPECT_EQ(e.file(), t.string());
      }
    }
  }
  // Appending a byte is an error too (not covered by any tensor).
  Bytes longer = full;
  longer.push_back(std::byte{0});
  EXPECT_TRUE(contains(parse_fails(longer).message, "not covered"));
}

TEST(Safetensors, HeaderLength) {
  for (size_t n = 0; n < 8; ++n) {
    Failure f = parse_fails(Bytes(n, std::byte{0}));
    EXPECT_EQ(f.field, "<header length>");
    EXPECT_TRUE(contains(f.message, "8-byte")) << f.message;
  }
  // Larger than the file.
  Failure past = parse_fails(make_file("{}", 0, 1000, true));
  EXPECT_EQ(past.field, "<header length>");
  EXPECT_TRUE(contains(past.message, "past the end")) << past.message;
  // Above the 100 MB bound: refused before looking at the file size.
  Failure huge = parse_fails(make_file("{}", 0, SAFETENSORS_MAX_HEADER + 1, true));
  EXPECT_EQ(huge.field, "<header length>");
  EXPECT_TRUE(contains(huge.message, "100 MB")) << huge.message;
  Failure max = parse_fails(make_file("{}", 0, std::numeric_limits<uint64_t>::max(), true));
  EXPECT_EQ(max.field, "<header length>");
  // Zero-length header.
  Failure zero = parse_fails(make_file(""));
  EXPECT_EQ(zero.field, "<header>");
}

TEST(Safetensors, HeaderMustBeAJsonObjectStartingWithBrace) {
  for (const char* h : {" {}", "[]", "\"x\"", "1", "null", "\n{}", "\xef\xbb\xbf{}"}) {
    Failure f = parse_fails(make_file(h));
    EXPECT_EQ(f.field, "<header>") << h;
    EXPECT_TRUE(contains(f.message, "'{'")) << f.message;
  }
  for (const char* h : {"{", "{\"a\":", "{}}", "{\"a\":1,}", "{'a':1}", "{} x", "{\"a\":{\"dtype\":\"F32\"", "{\"\xff\":{}}",
                        "{\"a\":1e400}", "{\"a\":{\"dtype\":\"U8\",\"shape\":[-1e999],\"data_offsets\":[0,0]}}"}) {
    Failure f = parse_fails(make_file(h));
    EXPECT_EQ(f.field, "<json>") << h << " -> " << f.message;
  }
  // Trailing spaces (the writer's padding) are fine.
  EXPECT_NO_THROW(parse_ok(make_file("{}      ")));
}

TEST(Safetensors, DuplicateKeysAreRejected) {
  Failure f = parse_fails(make_file(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                                    R"("a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                                    2));
  EXPECT_EQ(f.field, "a");
  EXPECT_TRUE(contains(f.message, "duplicate")) << f.message;
  Failure inner = parse_fails(make_file(R"({"a":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}})", 1));
  EXPECT_EQ(inner.field, "dtype");
  Failure meta = parse_fails(make_file(R"({"__metadata__":{"k":"1","k":"2"}})"));
  EXPECT_EQ(meta.field, "k");
}

TEST(Safetensors, OffsetsMustTileTheBufferExactly) {
  // Hole between tensors.
  Failure hole = parse_fails(make_file(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                                       R"("b":{"dtype":"U8","shape":[2],"data_offsets":[3,5]}})",
                                       5));
  EXPECT_EQ(hole.field, "b.data_offsets");
  EXPECT_TRUE(contains(hole.message, "hole")) << hole.message;
  // Hole at the start.
  Failure front = parse_fails(make_file(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}})", 3));
  EXPECT_EQ(front.field, "a.data_offsets");
  // Overlap.
  Failure overlap = parse_fails(make_file(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                                          R"("b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})",
                                          4));
  EXPECT_TRUE(contains(overlap.message, "overlaps")) << overlap.message;
  EXPECT_TRUE(overlap.field == "b.data_offsets" || overlap.field == "a.data_offsets") << overlap.field;
  // Two tensors on the same bytes.
  Failure same = parse_fails(make_file(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                                       R"("b":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})",
                                       2));
  EXPECT_TRUE(contains(same.message, "overlaps")) << same.message;
  // Data past the end of the file.
  Failure past = parse_fails(make_file(R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}})", 4));
  EXPECT_EQ(past.field, "<data>");
  EXPECT_TRUE(contains(past.message, "past the end")) << past.message;
  Failure far = parse_fails(make_file(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[18446744073709551614,18446744073709551615]}})", 1));
  EXPECT_EQ(far.field, "a.data_offsets");
  // Bytes not covered by any tensor.
  Failure tail = parse_fails(make_file(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})", 5));
  EXPECT_EQ(tail.field, "<data>");
  EXPECT_TRUE(contains(tail.message, "3 bytes not covered")) << tail.message;
  Failure empty_header_with_data = parse_fails(make_file("{}", 1));
  EXPECT_EQ(empty_header_with_data.field, "<data>");
  // end < begin.
  Failure backwards = parse_fails(make_file(R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[2,0]}})", 2));
  EXPECT_EQ(backwards.field, "a.data_offsets");
  // Malformed offsets.
  for (const char* offs : {"[0]", "[0,1,2]", "[-1,0]", "[0,1.0]", "\"0,1\"", "null", "[0,\"1\"]", "{}"}) {
    Failure f = parse_fails(make_file(std::string(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":)") + offs + "}}", 1));
    EXPECT_EQ(f.field, "a.data_offsets") << offs;
  }
}

TEST(Safetensors, SizeMustMatchDtypeAndShape) {
  // F32 [2] needs 8 bytes, offsets cover 4 ("wrong dtype size").
  Failure f = parse_fails(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", 4));
  EXPECT_EQ(f.field, "a.data_offsets");
  EXPECT_TRUE(contains(f.message, "needs 8")) << f.message;
  Failure bf16 = parse_fails(make_file(R"({"a":{"dtype":"BF16","shape":[3],"data_offsets":[0,12]}})", 12));
  EXPECT_TRUE(contains(bf16.message, "needs 6")) << bf16.message;
}

TEST(Safetensors, DtypeAndShapeValues) {
  auto tensor = [](const std::string& dtype, const std::string& shape) {
    return make_file(R"({"a":{"dtype":)" + dtype + R"(,"shape":)" + shape + R"(,"data_offsets":[0,4]}})", 4);
  };
  for (const char* d : {"\"F33\"", "\"f32\"", "\"\"", "\"F8_E4M3FN\"", "\"complex64\""}) {
    Failure f = parse_fails(tensor(d, "[4]"));
    EXPECT_EQ(f.field, "a.dtype") << d;
    EXPECT_TRUE(contains(f.message, "unsupported dtype")) << f.message;
  }
  for (const char* d : {"32", "null", "[\"F32\"]"}) EXPECT_EQ(parse_fails(tensor(d, "[4]")).field, "a.dtype") << d;
  for (const char* s : {"[-1]", "[2,-2]", "[1.5]", "[4.0]", "[\"4\"]", "[null]", "[[4]]", "4", "\"[4]\"", "null", "{}",
                        "[18446744073709551615]", "[281474976710657]"}) {
    Failure f = parse_fails(tensor("\"U8\"", s));
    EXPECT_EQ(f.field, "a.shape") << s << " -> " << f.message;
  }
  // All dtypes are recognised with their sizes.
  const std::pair<const char*, int> sizes[] = {{"BOOL", 1}, {"U8", 1}, {"I8", 1},  {"I16", 2}, {"U16", 2},    {"F16", 2},     {"BF16", 2}, {"I32", 4},
                                               {"U32", 4},  {"F32", 4}, {"F64", 8}, {"I64", 8}, {"U64", 8}, {"F8_E5M2", 1}, {"F8_E4M3", 1}};
  for (const auto& [name, size] : sizes) {
    const std::string n = std::to_string(3 * size);
    SafetensorsHeader h =
        parse_ok(make_file(std::string(R"({"a":{"dtype":")") + name + R"(","shape":[3],"data_offsets":[0,)" + n + "]}}", static_cast<size_t>(3 * size)));
    EXPECT_STREQ(dtype_name(h.tensors[0].dtype), name);
    EXPECT_EQ(dtype_bits(h.tensors[0].dtype), 8 * size);
  }
}

TEST(Safetensors, HugeShapesOverflowCleanly) {
  // Each dimension is within bounds, the product is not: element count overflow.
  Failure numel = parse_fails(make_file(R"({"a":{"dtype":"U8","shape":[281474976710656,281474976710656],"data_offsets":[0,4]}})", 4));
  EXPECT_EQ(numel.field, "a.shape");
  EXPECT_TRUE(contains(numel.message, "overflow")) << numel.message;
  // Element count fits in 64 bits, the byte count does not.
  Failure bytes = parse_fails(make_file(R"({"a":{"dtype":"F64","shape":[4294967296,1073741824],"data_offsets":[0,4]}})", 4));
  EXPECT_EQ(bytes.field, "a.shape");
  EXPECT_TRUE(contains(bytes.message, "overflow")) << bytes.message;
  // A partial product past INT64_MAX followed by a zero dimension: TensorInfo::numel() must never overflow.
  try {
    SafetensorsHeader h = parse_ok(make_file(R"({"a":{"dtype":"U8","shape":[281474976710656,32768,0],"data_offsets":[0,0]}})"));
    ASSERT_EQ(h.tensors.size(), 1u);
    EXPECT_EQ(h.tensors[0].numel(), 0);
  } catch (const InputError& e) {
    EXPECT_EQ(e.field(), "a.shape") << e.what();
  }
  // A huge but empty tensor next to real data is fine as long as the bytes add up.
  EXPECT_NO_THROW(parse_ok(make_file(R"({"z":{"dtype":"F32","shape":[0,281474976710656],"data_offsets":[0,0]},)"
                                     R"("a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})",
                                     2)));
}

TEST(Safetensors, MetadataValuesMustBeStrings) {
  for (const char* v : {"1", "null", "true", "[\"a\"]", "{\"x\":\"y\"}"}) {
    Failure f = parse_fails(make_file(std::string(R"({"__metadata__":{"format":)") + v + "}}"));
    EXPECT_EQ(f.field, "__metadata__.format") << v;
    EXPECT_TRUE(contains(f.message, "strings")) << f.message;
  }
  for (const char* m : {"\"pt\"", "[]", "1", "null"}) EXPECT_EQ(parse_fails(make_file(std::string(R"({"__metadata__":)") + m + "}")).field, "__metadata__") << m;
  EXPECT_EQ(parse_ok(make_file(R"({"__metadata__":{}})")).metadata.size(), 0u);
}

TEST(Safetensors, TensorEntriesAreStrict) {
  Failure unknown = parse_fails(make_file(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"extra":1}})", 1));
  EXPECT_EQ(unknown.field, "a.extra");
  EXPECT_TRUE(contains(unknown.message, "unknown tensor field")) << unknown.message;
  for (const char* missing : {R"({"a":{"shape":[1],"data_offsets":[0,1]}})", R"({"a":{"dtype":"U8","data_offsets":[0,1]}})",
                              R"({"a":{"dtype":"U8","shape":[1]}})"}) {
    Failure f = parse_fails(make_file(missing, 1));
    EXPECT_TRUE(f.field.rfind("a.", 0) == 0) << f.field;
    EXPECT_TRUE(contains(f.message, "missing")) << f.message;
  }
  for (const char* v : {"1", "\"x\"", "[]", "null"}) EXPECT_EQ(parse_fails(make_file(std::string(R"({"a":)") + v + "}")).field, "a") << v;
}

TEST(Safetensors, FileErrorsNameThePath) {
  TempDir dir;
  try {
    SafetensorsFile f(dir.path() / "absent.safetensors");
    ADD_FAILURE() << "opened a missing file";
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), (dir.path() / "absent.safetensors").string());
  }
  try {
    SafetensorsFile f(dir.path());
    ADD_FAILURE() << "opened a directory";
  } catch (const InputError& e) {
    EXPECT_TRUE(contains(e.what(), "regular file")) << e.what();
  }
  // A FIFO must be refused, not block in open() waiting for a writer.
  const fs::path fifo = dir.path() / "fifo.safetensors";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  try {
    SafetensorsFile f(fifo);
    ADD_FAILURE() << "opened a FIFO";
  } catch (const InputError& e) {
    EXPECT_TRUE(contains(e.what(), "regular file")) << e.what();
  }
  const fs::path empty = dir.path() / "empty.safetensors";
  std::ofstream(empty).close();
  try {
    SafetensorsFile f(empty);
    ADD_FAILURE() << "opened an empty file";
  } catch (const InputError& e) {
    EXPECT_EQ(e.field(), "<header length>");
  }
}
