#include "io/gguf.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <set>
#include <stdexcept>

#include "core/error.h"

namespace ts {
namespace {

// Scalars are copied with memcpy in host order: the format is little-endian and so is every host
// we build for (a big-endian port would byte-swap here).
static_assert(std::endian::native == std::endian::little, "io/gguf assumes a little-endian host");

constexpr char MAGIC[4] = {'G', 'G', 'U', 'F'};
constexpr uint32_t LAST_VALUE_TYPE = static_cast<uint32_t>(GgufType::FLOAT64);
// Smallest encodings, used to bound counts by the bytes left before allocating anything:
// a key/value pair is a key length, a type and at least one value byte; a tensor info is a name
// length, n_dims, a type and an offset.
constexpr uint64_t MIN_KV_BYTES = 8 + 4 + 1;
constexpr uint64_t MIN_TENSOR_INFO_BYTES = 8 + 4 + 4 + 8;

bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_mul_overflow(a, b, out); }
bool checked_add(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_add_overflow(a, b, out); }

// Bytes of one fixed-size scalar of `type`; 0 for STRING and ARRAY.
uint64_t scalar_size(GgufType type) {
  switch (type) {
    case GgufType::UINT8: case GgufType::INT8: case GgufType::BOOL: return 1;
    case GgufType::UINT16: case GgufType::INT16: return 2;
    case GgufType::UINT32: case GgufType::INT32: case GgufType::FLOAT32: return 4;
    case GgufType::UINT64: case GgufType::INT64: case GgufType::FLOAT64: return 8;
    case GgufType::STRING: case GgufType::ARRAY: return 0;
  }
  return 0;
}

uint64_t ggml_type_size(GgmlType type) {
  switch (type) {
    case GgmlType::I8: return 1;
    case GgmlType::F16: case GgmlType::BF16: case GgmlType::I16: return 2;
    case GgmlType::F32: case GgmlType::I32: return 4;
    case GgmlType::F64: case GgmlType::I64: return 8;
  }
  return 0;
}

bool known_ggml_type(uint32_t raw) {
  for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::I8, GgmlType::I16, GgmlType::I32, GgmlType::I64, GgmlType::F64, GgmlType::BF16})
    if (static_cast<uint32_t>(t) == raw) return true;
  return false;
}

// A bounds-checked cursor over the file. Every read names the field it is for.
class Reader {
 public:
  Reader(std::span<const std::byte> bytes, const std::string& file) : bytes_(bytes), file_(file) {}
  uint64_t pos() const { return pos_; }
  uint64_t left() const { return bytes_.size() - pos_; }
  const std::string& file() const { return file_; }

  [[noreturn]] void fail(const std::string& field, const std::string& what) const { throw InputError(file_, field, what); }

  void need(uint64_t n, const std::string& field) const {
    if (n > left())
      fail(field, "needs " + std::to_string(n) + " bytes at offset " + std::to_string(pos_) + " but the file has " +
                      std::to_string(bytes_.size()) + " bytes; truncated?");
  }
  template <typename T>
  T take(const std::string& field) {
    need(sizeof(T), field);
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  void skip(uint64_t n, const std::string& field) {
    need(n, field);
    pos_ += n;
  }
  std::string take_string(const std::string& field, uint64_t max_len, const char* what) {
    const uint64_t n = take<uint64_t>(field);
    if (n > max_len) fail(field, std::string(what) + " length " + std::to_string(n) + " exceeds the limit of " + std::to_string(max_len) + " bytes");
    need(n, field);
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), static_cast<size_t>(n));
    pos_ += n;
    return s;
  }

 private:
  std::span<const std::byte> bytes_;
  const std::string& file_;
  uint64_t pos_ = 0;
};

GgufType take_type(Reader& r, const std::string& field) {
  const uint32_t raw = r.take<uint32_t>(field);
  if (raw > LAST_VALUE_TYPE) r.fail(field, "unknown value type " + std::to_string(raw));
  return static_cast<GgufType>(raw);
}

// One scalar (not ARRAY) of `type` into `v`.
void take_scalar(Reader& r, GgufType type, const std::string& field, GgufValue& v) {
  switch (type) {
    case GgufType::UINT8: v.u = r.take<uint8_t>(field); break;
    case GgufType::INT8: v.i = r.take<int8_t>(field); break;
    case GgufType::UINT16: v.u = r.take<uint16_t>(field); break;
    case GgufType::INT16: v.i = r.take<int16_t>(field); break;
    case GgufType::UINT32: v.u = r.take<uint32_t>(field); break;
    case GgufType::INT32: v.i = r.take<int32_t>(field); break;
    case GgufType::UINT64: v.u = r.take<uint64_t>(field); break;
    case GgufType::INT64: v.i = r.take<int64_t>(field); break;
    case GgufType::FLOAT32: v.f = std::bit_cast<float>(r.take<uint32_t>(field)); break;
    case GgufType::FLOAT64: v.f = std::bit_cast<double>(r.take<uint64_t>(field)); break;
    case GgufType::BOOL: {
      const uint8_t b = r.take<uint8_t>(field);
      if (b > 1) r.fail(field, "bool value " + std::to_string(b) + " is neither 0 nor 1");
      v.i = b;
      break;
    }
    case GgufType::STRING: v.s = r.take_string(field, r.left(), "string"); break;
    case GgufType::ARRAY: r.fail(field, "nested arrays are not supported");
  }
}

// An array: element type and count are kept, the elements are checked and skipped. The count is
// bounded by the bytes left before the loop, so a huge count costs nothing.
void take_array(Reader& r, const std::string& field, GgufValue& v) {
  v.array_type = take_type(r, field);
  if (v.array_type == GgufType::ARRAY) r.fail(field, "nested arrays are not supported");
  v.array_size = r.take<uint64_t>(field);
  const uint64_t min_each = v.array_type == GgufType::STRING ? 8 : scalar_size(v.array_type);
  uint64_t min_total = 0;
  if (!checked_mul(v.array_size, min_each, &min_total) || min_total > r.left())
    r.fail(field, "array of " + std::to_string(v.array_size) + " " + gguf_type_name(v.array_type) + " values does not fit in the " +
                      std::to_string(r.left()) + " bytes left; truncated or corrupt?");
  if (v.array_type != GgufType::STRING && v.array_type != GgufType::BOOL) {
    r.skip(min_total, field);
    return;
  }
  GgufValue element;
  for (uint64_t k = 0; k < v.array_size; ++k) take_scalar(r, v.array_type, field, element);
}

bool key_is_ascii(const std::string& key) {
  return std::all_of(key.begin(), key.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

GgufKeyValue take_kv(Reader& r, uint64_t index) {
  const std::string where = "<metadata #" + std::to_string(index) + ">";
  GgufKeyValue kv;
  kv.key = r.take_string(where, GGUF_MAX_KEY, "key");
  if (kv.key.empty()) r.fail(where, "empty key");
  if (!key_is_ascii(kv.key)) r.fail(where, "key is not printable ASCII");
  kv.value.type = take_type(r, kv.key);
  if (kv.value.type == GgufType::ARRAY) take_array(r, kv.key, kv.value);
  else take_scalar(r, kv.value.type, kv.key, kv.value);
  return kv;
}

// general.alignment: a UINT32, a non-zero multiple of 8 (gguf.md).
uint64_t alignment_of(const GgufFile& f, const Reader& r) {
  const GgufValue* a = f.find("general.alignment");
  if (!a) return GGUF_DEFAULT_ALIGNMENT;
  if (a->type != GgufType::UINT32) r.fail("general.alignment", std::string("must be UINT32, found ") + gguf_type_name(a->type));
  if (a->u == 0 || a->u % 8 != 0) r.fail("general.alignment", std::to_string(a->u) + " is not a non-zero multiple of 8");
  return a->u;
}

GgufTensorInfo take_tensor_info(Reader& r, uint64_t index, uint64_t alignment) {
  const std::string where = "<tensor #" + std::to_string(index) + ">";
  GgufTensorInfo t;
  t.name = r.take_string(where, GGUF_MAX_TENSOR_NAME, "tensor name");
  if (t.name.empty()) r.fail(where, "empty tensor name");
  const uint32_t n_dims = r.take<uint32_t>(t.name);
  if (n_dims == 0 || n_dims > GGUF_MAX_DIMS) r.fail(t.name, std::to_string(n_dims) + " dimensions (1 to 4 allowed)");
  uint64_t numel = 1;
  for (uint32_t k = 0; k < n_dims; ++k) {
    const uint64_t d = r.take<uint64_t>(t.name);
    // ggml holds extents and element counts as int64.
    if (!checked_mul(numel, d, &numel) || numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      r.fail(t.name, "element count overflows");
    t.dims.push_back(d);
  }
  const uint32_t raw_type = r.take<uint32_t>(t.name);
  if (!known_ggml_type(raw_type)) r.fail(t.name, "unsupported tensor type " + std::to_string(raw_type) + " (quantized or unknown)");
  t.type = static_cast<GgmlType>(raw_type);
  t.offset = r.take<uint64_t>(t.name);
  if (t.offset % alignment != 0) r.fail(t.name, "offset " + std::to_string(t.offset) + " is not a multiple of the alignment " + std::to_string(alignment));
  if (!checked_mul(numel, ggml_type_size(t.type), &t.bytes)) r.fail(t.name, "byte size overflows");
  return t;
}

uint64_t align_up(uint64_t x, uint64_t alignment, const Reader& r) {
  uint64_t up = 0;
  if (!checked_add(x, alignment - 1, &up)) r.fail("<data>", "offset overflows");
  return up / alignment * alignment;
}

// Every tensor inside the data section, none overlapping another.
void check_tensor_extents(const GgufFile& f, uint64_t file_size, const Reader& r) {
  const uint64_t data_size = f.data_start <= file_size ? file_size - f.data_start : 0;
  std::vector<const GgufTensorInfo*> sorted;
  for (const GgufTensorInfo& t : f.tensors) {
    uint64_t end = 0;
    if (!checked_add(t.offset, t.bytes, &end) || end > data_size)
      r.fail(t.name, "data [" + std::to_string(t.offset) + ", " + std::to_string(t.offset) + " + " + std::to_string(t.bytes) +
                         ") runs past the end of the data section (" + std::to_string(data_size) + " bytes); truncated?");
    sorted.push_back(&t);
  }
  // Stable: of two tensors at one offset, the later one in the file is the one reported.
  std::stable_sort(sorted.begin(), sorted.end(), [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->offset < b->offset; });
  const GgufTensorInfo* furthest = nullptr;  // the tensor reaching furthest so far
  for (const GgufTensorInfo* t : sorted) {
    if (t->bytes == 0) continue;
    if (furthest && t->offset < furthest->offset + furthest->bytes) r.fail(t->name, "data overlaps tensor " + furthest->name);
    if (!furthest || t->offset + t->bytes > furthest->offset + furthest->bytes) furthest = t;
  }
}

void check_header(Reader& r, GgufFile& f) {
  r.need(24, "<header>");  // magic, version, two counts
  char magic[4];
  for (char& c : magic) c = static_cast<char>(r.take<uint8_t>("<magic>"));
  if (std::memcmp(magic, MAGIC, 4) != 0) r.fail("<magic>", "not a GGUF file (the first 4 bytes are not \"GGUF\")");
  f.version = r.take<uint32_t>("<version>");
  if (f.version == 0x03000000u || f.version == 0x02000000u) r.fail("<version>", "big-endian GGUF files are not supported");
  if (f.version != 2 && f.version != 3) r.fail("<version>", "version " + std::to_string(f.version) + " is not supported (2 or 3)");
}

}  // namespace

const char* gguf_type_name(GgufType type) {
  static constexpr const char* NAMES[] = {"UINT8", "INT8",  "UINT16", "INT16",  "UINT32", "INT32",  "FLOAT32",
                                          "BOOL",  "STRING", "ARRAY", "UINT64", "INT64",  "FLOAT64"};
  const auto k = static_cast<uint32_t>(type);
  return k <= LAST_VALUE_TYPE ? NAMES[k] : "?";
}

const char* ggml_type_name(GgmlType type) {
  switch (type) {
    case GgmlType::F32: return "F32";
    case GgmlType::F16: return "F16";
    case GgmlType::I8: return "I8";
    case GgmlType::I16: return "I16";
    case GgmlType::I32: return "I32";
    case GgmlType::I64: return "I64";
    case GgmlType::F64: return "F64";
    case GgmlType::BF16: return "BF16";
  }
  return "?";
}

GgufValue GgufValue::string(std::string value) {
  GgufValue v;
  v.type = GgufType::STRING;
  v.s = std::move(value);
  return v;
}
GgufValue GgufValue::int32(int32_t value) {
  GgufValue v;
  v.type = GgufType::INT32;
  v.i = value;
  return v;
}
GgufValue GgufValue::uint32(uint32_t value) {
  GgufValue v;
  v.type = GgufType::UINT32;
  v.u = value;
  return v;
}
GgufValue GgufValue::int64(int64_t value) {
  GgufValue v;
  v.type = GgufType::INT64;
  v.i = value;
  return v;
}
GgufValue GgufValue::float64(double value) {
  GgufValue v;
  v.type = GgufType::FLOAT64;
  v.f = value;
  return v;
}
bool GgufValue::is_integer() const {
  switch (type) {
    case GgufType::UINT8: case GgufType::INT8: case GgufType::UINT16: case GgufType::INT16:
    case GgufType::UINT32: case GgufType::INT32: case GgufType::UINT64: case GgufType::INT64: return true;
    default: return false;
  }
}

const GgufValue* GgufFile::find(const std::string& key) const {
  for (const GgufKeyValue& kv : metadata)
    if (kv.key == key) return &kv.value;
  return nullptr;
}

const GgufTensorInfo* GgufFile::tensor(const std::string& name) const {
  for (const GgufTensorInfo& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

GgufFile gguf_parse(std::span<const std::byte> bytes, const std::string& file) {
  Reader r(bytes, file);
  GgufFile f;
  check_header(r, f);
  const uint64_t n_tensors = r.take<uint64_t>("<tensor_count>");
  const uint64_t n_kv = r.take<uint64_t>("<metadata_kv_count>");
  if (n_kv > r.left() / MIN_KV_BYTES)
    r.fail("<metadata_kv_count>", std::to_string(n_kv) + " key/value pairs cannot fit in the " + std::to_string(r.left()) + " bytes left");
  if (n_tensors > r.left() / MIN_TENSOR_INFO_BYTES)
    r.fail("<tensor_count>", std::to_string(n_tensors) + " tensors cannot fit in the " + std::to_string(r.left()) + " bytes left");

  std::set<std::string> seen;
  for (uint64_t k = 0; k < n_kv; ++k) {
    GgufKeyValue kv = take_kv(r, k);
    if (!seen.insert(kv.key).second) r.fail(kv.key, "duplicate key");
    f.metadata.push_back(std::move(kv));
  }
  f.alignment = alignment_of(f, r);
  seen.clear();
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensorInfo t = take_tensor_info(r, k, f.alignment);
    if (!seen.insert(t.name).second) r.fail(t.name, "duplicate tensor name");
    f.tensors.push_back(std::move(t));
  }
  f.data_start = align_up(r.pos(), f.alignment, r);
  // Writers pad the last tensor too, but a file without tensors may end right after the infos.
  if (f.data_start > bytes.size() && !f.tensors.empty())
    r.fail("<data>", "the data section would start at offset " + std::to_string(f.data_start) + " but the file has " +
                         std::to_string(bytes.size()) + " bytes; truncated?");
  check_tensor_extents(f, bytes.size(), r);
  return f;
}

std::span<const std::byte> gguf_tensor_bytes(std::span<const std::byte> bytes, const GgufFile& file, const GgufTensorInfo& info) {
  return bytes.subspan(static_cast<size_t>(file.data_start + info.offset), static_cast<size_t>(info.bytes));
}

// ---------------------------------------------------------------------------------------------
// Writing

namespace {

class Writer {
 public:
  void u32(uint32_t v) { raw(&v, 4); }
  void u64(uint64_t v) { raw(&v, 8); }
  void str(const std::string& s) {
    u64(s.size());
    out_.append(s);
  }
  void raw(const void* p, size_t n) { out_.append(static_cast<const char*>(p), n); }
  void pad_to(uint64_t alignment) { out_.append((alignment - out_.size() % alignment) % alignment, '\0'); }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

void put_scalar(Writer& w, const std::string& key, const GgufValue& v) {
  auto as = [&](auto x) { w.raw(&x, sizeof x); };
  switch (v.type) {
    case GgufType::UINT8: as(static_cast<uint8_t>(v.u)); break;
    case GgufType::INT8: as(static_cast<int8_t>(v.i)); break;
    case GgufType::UINT16: as(static_cast<uint16_t>(v.u)); break;
    case GgufType::INT16: as(static_cast<int16_t>(v.i)); break;
    case GgufType::UINT32: as(static_cast<uint32_t>(v.u)); break;
    case GgufType::INT32: as(static_cast<int32_t>(v.i)); break;
    case GgufType::UINT64: as(v.u); break;
    case GgufType::INT64: as(v.i); break;
    case GgufType::FLOAT32: as(static_cast<float>(v.f)); break;
    case GgufType::FLOAT64: as(v.f); break;
    case GgufType::BOOL: as(static_cast<uint8_t>(v.i != 0)); break;
    case GgufType::STRING: w.str(v.s); break;
    case GgufType::ARRAY: throw std::invalid_argument("gguf_serialize: " + key + ": arrays are not written");
  }
}

void check_out_tensor(const GgufTensorOut& t, std::set<std::string>& names) {
  auto bad = [&](const std::string& what) { throw std::invalid_argument("gguf_serialize: tensor " + t.name + ": " + what); };
  if (t.name.empty() || t.name.size() > GGUF_MAX_TENSOR_NAME) bad("name must be 1 to 64 bytes");
  if (!names.insert(t.name).second) bad("duplicate name");
  if (t.dims.empty() || t.dims.size() > GGUF_MAX_DIMS) bad("1 to 4 dimensions allowed");
  uint64_t bytes = ggml_type_size(t.type);
  for (uint64_t d : t.dims)
    if (!checked_mul(bytes, d, &bytes)) bad("size overflows");
  if (bytes != t.data.size()) bad("data has " + std::to_string(t.data.size()) + " bytes, shape and type need " + std::to_string(bytes));
}

}  // namespace

std::string gguf_serialize(const std::vector<GgufKeyValue>& metadata, const std::vector<GgufTensorOut>& tensors, uint64_t alignment) {
  if (alignment == 0 || alignment % 8 != 0 || alignment > std::numeric_limits<uint32_t>::max())
    throw std::invalid_argument("gguf_serialize: alignment must be a non-zero multiple of 8 that fits in 32 bits");
  std::vector<GgufKeyValue> kvs = metadata;
  if (alignment != GGUF_DEFAULT_ALIGNMENT) kvs.push_back({"general.alignment", GgufValue::uint32(static_cast<uint32_t>(alignment))});
  std::set<std::string> keys;
  for (const GgufKeyValue& kv : kvs)
    if (kv.key.empty() || kv.key.size() > GGUF_MAX_KEY || !key_is_ascii(kv.key) || !keys.insert(kv.key).second)
      throw std::invalid_argument("gguf_serialize: key '" + kv.key + "' is empty, too long, not ASCII or repeated");
  std::set<std::string> names;
  for (const GgufTensorOut& t : tensors) check_out_tensor(t, names);

  Writer w;
  w.raw(MAGIC, 4);
  w.u32(3);
  w.u64(tensors.size());
  w.u64(kvs.size());
  for (const GgufKeyValue& kv : kvs) {
    w.str(kv.key);
    w.u32(static_cast<uint32_t>(kv.value.type));
    put_scalar(w, kv.key, kv.value);
  }
  uint64_t offset = 0;
  for (const GgufTensorOut& t : tensors) {
    w.str(t.name);
    w.u32(static_cast<uint32_t>(t.dims.size()));
    for (uint64_t d : t.dims) w.u64(d);
    w.u32(static_cast<uint32_t>(t.type));
    w.u64(offset);
    offset += (t.data.size() + alignment - 1) / alignment * alignment;
  }
  w.pad_to(alignment);
  for (const GgufTensorOut& t : tensors) {
    w.raw(t.data.data(), t.data.size());
    w.pad_to(alignment);
  }
  return w.take();
}

}  // namespace ts
