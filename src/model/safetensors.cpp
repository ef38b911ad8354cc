#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>

#include "core/error.h"
#include "core/json.h"

namespace ts {
namespace {

struct DTypeEntry {
  const char* name;
  DType dtype;
  int bits;
  bool is_float;
};
constexpr DTypeEntry DTYPES[] = {
    {"BOOL", DType::BOOL, 8, false}, {"U8", DType::U8, 8, false},     {"I8", DType::I8, 8, false},
    {"I16", DType::I16, 16, false},  {"U16", DType::U16, 16, false},  {"F16", DType::F16, 16, true},
    {"BF16", DType::BF16, 16, true}, {"I32", DType::I32, 32, false},  {"U32", DType::U32, 32, false},
    {"F32", DType::F32, 32, true},   {"F64", DType::F64, 64, true},   {"I64", DType::I64, 64, false},
    {"U64", DType::U64, 64, false},  {"F8_E5M2", DType::F8_E5M2, 8, true}, {"F8_E4M3", DType::F8_E4M3, 8, true},
};

const DTypeEntry& entry(DType d) {
  for (const auto& e : DTYPES)
    if (e.dtype == d) return e;
  return DTYPES[0];
}

bool mul_overflows(uint64_t a, uint64_t b, uint64_t* out) { return __builtin_mul_overflow(a, b, out); }

}  // namespace

const char* dtype_name(DType d) { return entry(d).name; }
int dtype_bits(DType d) { return entry(d).bits; }
bool dtype_is_float(DType d) { return entry(d).is_float; }

std::string shape_to_string(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

SafetensorsHeader safetensors_parse(std::span<const std::byte> bytes, const std::string& file) {
  if (bytes.size() < 8) throw InputError(file, "<header length>", "file has " + std::to_string(bytes.size()) + " bytes; a safetensors file starts with an 8-byte header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(bytes[static_cast<size_t>(i)]);
  if (n > SAFETENSORS_MAX_HEADER)
    throw InputError(file, "<header length>", "header length " + std::to_string(n) + " exceeds the 100 MB limit");
  if (n > bytes.size() - 8)
    throw InputError(file, "<header length>", "header length " + std::to_string(n) + " runs past the end of the file (" + std::to_string(bytes.size()) + " bytes); truncated?");
  std::string_view text(reinterpret_cast<const char*>(bytes.data() + 8), n);
  if (text.empty() || text.front() != '{') throw InputError(file, "<header>", "JSON header must start with '{'");

  json header = json_parse_strict(text, file);
  if (!header.is_object()) throw InputError(file, "<header>", "JSON header must be an object");

  SafetensorsHeader out;
  out.data_start = 8 + n;
  const uint64_t data_size = bytes.size() - out.data_start;
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      if (!value.is_object()) throw InputError(file, "__metadata__", "must be an object of strings");
      for (const auto& [k, v] : value.items()) {
        if (!v.is_string()) throw InputError(file, "__metadata__." + k, "metadata values must be strings");
        out.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    if (!value.is_object()) throw InputError(file, name, "tensor entry must be an object");
    for (const auto& [k, v] : value.items())
      if (k != "dtype" && k != "shape" && k != "data_offsets") throw InputError(file, name + "." + k, "unknown tensor field");
    TensorInfo info;
    info.name = name;
    const std::string dtype = json_string(value, "dtype", file, name);
    auto it = std::find_if(std::begin(DTYPES), std::end(DTYPES), [&](const DTypeEntry& e) { return dtype == e.name; });
    if (it == std::end(DTYPES)) throw InputError(file, name + ".dtype", "unsupported dtype '" + dtype + "'");
    info.dtype = it->dtype;
    const json& shape = json_require(value, "shape", file, name);
    if (!shape.is_array()) throw InputError(file, name + ".shape", "must be an array of non-negative integers");
    uint64_t numel = 1;
    for (const auto& dim : shape) {
      if (!dim.is_number_integer() || dim.get<int64_t>() < 0 || dim.get<uint64_t>() > (1ull << 48))
        throw InputError(file, name + ".shape", "must be an array of non-negative integers, got " + shape.dump());
      // Every partial product must fit in int64 too: TensorInfo::numel() multiplies in int64.
      if (mul_overflows(numel, dim.get<uint64_t>(), &numel) || numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        throw InputError(file, name + ".shape", "element count overflows");
      info.shape.push_back(dim.get<int64_t>());
    }
    const json& offsets = json_require(value, "data_offsets", file, name);
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned())
      throw InputError(file, name + ".data_offsets", "must be [begin, end] with non-negative integers");
    info.begin = offsets[0].get<uint64_t>();
    info.end = offsets[1].get<uint64_t>();
    if (info.end < info.begin) throw InputError(file, name + ".data_offsets", "end is before begin");
    uint64_t bits = 0;
    if (mul_overflows(numel, static_cast<uint64_t>(it->bits), &bits)) throw InputError(file, name + ".shape", "byte size overflows");
    if (bits % 8 != 0) throw InputError(file, name + ".shape", "tensor does not fill a whole number of bytes");
    if (info.end - info.begin != bits / 8)
      throw InputError(file, name + ".data_offsets", "covers " + std::to_string(info.end - info.begin) + " bytes but shape " +
                                                         shape.dump() + " x " + dtype + " needs " + std::to_string(bits / 8));
    out.tensors.push_back(std::move(info));
  }

  // The buffer must be tiled exactly: sorted by begin, each tensor starts where the previous ended.
  std::vector<const TensorInfo*> sorted;
  for (const auto& t : out.tensors) sorted.push_back(&t);
  std::sort(sorted.begin(), sorted.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t cursor = 0;
  for (const TensorInfo* t : sorted) {
    if (t->begin != cursor)
      throw InputError(file, t->name + ".data_offsets",
                       t->begin < cursor ? "overlaps the previous tensor" : "leaves a hole in the data buffer before this tensor");
    cursor = t->end;
  }
  if (cursor != data_size)
    throw InputError(file, "<data>", cursor > data_size ? "tensor data runs past the end of the file (" + std::to_string(cursor) + " > " + std::to_string(data_size) + " bytes); truncated?"
                                                         : "data buffer has " + std::to_string(data_size - cursor) + " bytes not covered by any tensor");
  return out;
}

SafetensorsFile::SafetensorsFile(const std::filesystem::path& path) : path_(path) {
  // O_NONBLOCK: a FIFO (or other special file) must reach the regular-file check below instead of blocking open().
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw InputError(path.string(), "<file>", std::string("cannot open: ") + std::strerror(errno));
  struct stat st{};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw InputError(path.string(), "<file>", "not a regular file");
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    map_ = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map_ == MAP_FAILED) {
      map_ = nullptr;
      ::close(fd);
      throw InputError(path.string(), "<file>", std::string("mmap failed: ") + std::strerror(errno));
    }
  }
  ::close(fd);
  try {
    header_ = safetensors_parse({static_cast<const std::byte*>(map_), size_}, path.string());
  } catch (...) {
    if (map_) ::munmap(map_, size_);
    map_ = nullptr;
    throw;
  }
  for (size_t i = 0; i < header_.tensors.size(); ++i) index_[header_.tensors[i].name] = i;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(map_, size_);
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&& o) noexcept
    : path_(std::move(o.path_)), header_(std::move(o.header_)), index_(std::move(o.index_)), map_(o.map_), size_(o.size_) {
  o.map_ = nullptr;
  o.size_ = 0;
}

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& o) noexcept {
  if (this != &o) {
    if (map_) ::munmap(map_, size_);
    path_ = std::move(o.path_);
    header_ = std::move(o.header_);
    index_ = std::move(o.index_);
    map_ = o.map_;
    size_ = o.size_;
    o.map_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &header_.tensors[it->second];
}

std::span<const std::byte> SafetensorsFile::bytes(const TensorInfo& info) const {
  return {static_cast<const std::byte*>(map_) + header_.data_start + info.begin, info.end - info.begin};
}

void safetensors_write_each(const std::filesystem::path& path, const std::vector<TensorBytes>& layout,
                            const std::map<std::string, std::string>& metadata,
                            const std::function<std::span<const std::byte>(size_t)>& bytes) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  std::vector<uint64_t> sizes;
  for (const auto& t : layout) {
    int64_t numel = 1;
    for (int64_t d : t.shape) numel *= d;
    sizes.push_back(static_cast<uint64_t>(numel) * static_cast<uint64_t>(dtype_bits(t.dtype)) / 8);
    header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + sizes.back()}}};
    offset += sizes.back();
  }
  std::string text = header.dump();
  while ((8 + text.size()) % 8 != 0) text.push_back(' ');
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw InputError(path.string(), "<file>", "cannot open for writing");
  uint64_t n = text.size();
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>((n >> (8 * i)) & 0xff);
  out.write(reinterpret_cast<const char*>(len), 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (size_t i = 0; i < layout.size(); ++i) {
    const std::span<const std::byte> data = bytes(i);
    if (data.size() != sizes[i])
      throw std::logic_error("safetensors_write: tensor " + layout[i].name + " has " + std::to_string(data.size()) + " bytes, its shape and dtype " +
                             std::to_string(sizes[i]));
    out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  }
  out.flush();
  if (!out) throw InputError(path.string(), "<file>", "write failed");
}

void safetensors_write(const std::filesystem::path& path, const std::vector<TensorBytes>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  safetensors_write_each(path, tensors, metadata, [&](size_t i) { return tensors[i].data; });
}

}  // namespace ts
