// io/vectors: malformed files of each format (built here by hand) give an InputError that names the file and the
// dataset, attribute, tensor or key, never a crash. Serial HDF5 only (no MPI needed).

#include "vectors_test_util.h"

using namespace ts;
using namespace vectors_test;

namespace {

// ---------------------------------------------------------------------------------------------
// Malformed HDF5

// The HDF5 layout written field by field from parts a test can break (no validation here).
struct RawH5 {
  std::vector<int64_t> shape;
  std::vector<float> values;
  std::vector<std::string> names;
  std::vector<int64_t> layers, counts, counts_shape;
  std::map<std::string, std::string> attrs;
  int64_t version = 1;
  bool has_version = true;

  explicit RawH5(const VectorSet& s)
      : shape{static_cast<int64_t>(s.names.size()), static_cast<int64_t>(s.layers.size()), s.d_model}, values(s.values), names(s.names),
        layers(s.layers), counts(s.counts), counts_shape{shape[0], shape[1]},
        attrs{{"format", "thinksteer.vectors"}, {"hook_measured", s.hook_measured}, {"hook_applied", s.hook_applied},
              {"architecture", s.architecture}, {"model", s.model}, {"provenance", s.provenance_json}} {}

  void write(const fs::path& p) const {
    h5::SerialFile f(p, h5::SerialFile::Mode::CREATE);
    f.write_dataset({"/vectors", h5::DType::F32, shape, {}, {}}, values.data());
    f.write_strings("/names", names, "names_dim");
    f.write_dataset({"/layers", h5::DType::I64, {static_cast<int64_t>(layers.size())}, {}, {}}, layers.data());
    if (!counts.empty()) f.write_dataset({"/counts", h5::DType::I64, counts_shape, {}, {}}, counts.data());
    for (const auto& [k, v] : attrs) f.set_attr("/", k, v);
    if (has_version) f.set_attr("/", "format_version", version);
  }
};

TEST_F(Vectors, MalformedH5NamesTheDatasetOrAttribute) {
  const VectorSet good = ts_test::sample_vectors();
  const std::vector<std::pair<std::string, std::function<void(RawH5&)>>> cases = {
      {"/@format", [](RawH5& r) { r.attrs["format"] = "thinksteer.activations"; }},
      {"/@format", [](RawH5& r) { r.attrs.erase("format"); }},
      {"/@format_version", [](RawH5& r) { r.version = 2; }},
      {"/@format_version", [](RawH5& r) { r.has_version = false; }},
      {"/@hook_applied", [](RawH5& r) { r.attrs.erase("hook_applied"); }},
      {"/@hook_applied", [](RawH5& r) { r.attrs["hook_applied"] = "resid_post"; }},
      {"/@provenance", [](RawH5& r) { r.attrs["provenance"] = "[1,"; }},
      {"/vectors", [](RawH5& r) { r.values[5] = std::nanf(""); }},
      {"/vectors", [](RawH5& r) { r.values[6] = -std::numeric_limits<float>::infinity(); }},
      {"/layers", [](RawH5& r) { r.shape = {3, 9, 2}; }},  // /vectors and /layers disagree
      {"/vectors", [](RawH5& r) { r.shape = {3, 18}; }},
      {"/names", [](RawH5& r) { r.names.pop_back(); }},
      {"/names", [](RawH5& r) { r.names[2] = "overall"; }},
      {"/names", [](RawH5& r) { r.names[0] = "has space"; }},
      {"/layers", [](RawH5& r) { r.layers = {0, 5, 2}; }},
      {"/layers", [](RawH5& r) { r.layers = {0, 2}; }},
      {"/layers", [](RawH5& r) { r.layers = {-3, 2, 5}; }},
      {"/counts", [](RawH5& r) { r.counts[4] = -1; }},
      {"/counts", [](RawH5& r) { r.counts_shape = {9}; }},
      {"/vectors", [](RawH5& r) { r.counts[0] = 0; }},  // count 0 with non-zero values
  };
  for (const auto& [field, breakage] : cases) {
    RawH5 raw(good);
    breakage(raw);
    const fs::path p = path("bad.h5");
    fs::remove(p);
    raw.write(p);
    EXPECT_EQ(read_fails(vectors_read_h5, p).field(), field);
  }
  // The raw writer itself is faithful: unbroken, it gives a readable file.
  RawH5(good).write(path("good.h5"));
  expect_same_set(vectors_read_h5(path("good.h5")), good);
}

TEST_F(Vectors, NotOrTruncatedH5IsAnInputError) {
  EXPECT_EQ(read_fails(vectors_read_h5, path("missing.h5")).field(), "file");
  spit(path("text.h5"), "this is not HDF5\n");
  EXPECT_EQ(read_fails(vectors_read_h5, path("text.h5")).field(), "file");
  vectors_write_h5(path("v.h5"), ts_test::sample_vectors());
  const std::string bytes = slurp(path("v.h5"));
  for (size_t n : {size_t{0}, size_t{7}, size_t{100}, bytes.size() / 2, bytes.size() - 1}) {
    spit(path("cut.h5"), bytes.substr(0, n));
    (void)read_fails(vectors_read_h5, path("cut.h5"));
  }
}

// ---------------------------------------------------------------------------------------------
// Malformed safetensors

struct RawSt {
  struct Tensor {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    std::vector<std::byte> data;
  };
  std::vector<Tensor> tensors;
  std::map<std::string, std::string> metadata;

  explicit RawSt(const VectorSet& s) {
    metadata = {{"format", "thinksteer.vectors"}, {"format_version", "1"}, {"names", json(s.names).dump()}, {"layers", json(s.layers).dump()},
                {"d_model", std::to_string(s.d_model)}, {"hook_measured", s.hook_measured}, {"hook_applied", s.hook_applied},
                {"architecture", s.architecture}, {"model", s.model}, {"provenance", s.provenance_json}};
    const size_t l = s.layers.size(), d = static_cast<size_t>(s.d_model);
    for (size_t i = 0; i < s.names.size(); ++i) {
      add(s.names[i] + ".counts", DType::I64, {static_cast<int64_t>(l)}, s.counts.data() + i * l, l * 8);
      add(s.names[i], DType::F32, {static_cast<int64_t>(l), s.d_model}, s.values.data() + i * l * d, l * d * 4);
    }
  }
  void add(const std::string& name, DType dtype, std::vector<int64_t> shape, const void* p, size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    tensors.push_back({name, dtype, std::move(shape), std::vector<std::byte>(b, b + n)});
  }
  Tensor& find(const std::string& name) {
    for (Tensor& t : tensors)
      if (t.name == name) return t;
    throw std::logic_error("no tensor " + name);
  }
  void write(const fs::path& p) const {
    std::vector<TensorBytes> out;
    for (const Tensor& t : tensors) out.push_back({t.name, t.dtype, t.shape, t.data});
    safetensors_write(p, out, metadata);
  }
};

TEST_F(Vectors, MalformedSafetensorsNamesTheTensorOrKey) {
  const VectorSet good = ts_test::sample_vectors();
  const float nan = std::nanf("");
  const std::vector<std::pair<std::string, std::function<void(RawSt&)>>> cases = {
      {"__metadata__.format", [](RawSt& r) { r.metadata["format"] = "steer"; }},
      {"__metadata__.format", [](RawSt& r) { r.metadata.erase("format"); }},
      {"__metadata__.format_version", [](RawSt& r) { r.metadata["format_version"] = "2"; }},
      {"__metadata__.format_version", [](RawSt& r) { r.metadata["format_version"] = "one"; }},
      {"__metadata__.names", [](RawSt& r) { r.metadata["names"] = "overall"; }},
      {"__metadata__.names", [](RawSt& r) { r.metadata["names"] = "[1]"; }},
      {"__metadata__.names", [](RawSt& r) { r.metadata["names"] = R"(["overall","overall","x"])"; }},
      {"__metadata__.layers", [](RawSt& r) { r.metadata["layers"] = "[0, 2.5, 5]"; }},
      {"__metadata__.layers", [](RawSt& r) { r.metadata["layers"] = "[5, 2, 0]"; }},
      {"__metadata__.d_model", [](RawSt& r) { r.metadata["d_model"] = "-6"; }},
      {"__metadata__.hook_applied", [](RawSt& r) { r.metadata["hook_applied"] = ""; }},
      {"backtracking", [](RawSt& r) { r.find("backtracking").dtype = DType::I32; }},
      {"backtracking", [](RawSt& r) { r.find("backtracking").shape = {6, 3}; }},
      {"backtracking", [&](RawSt& r) { std::memcpy(r.find("backtracking").data.data() + 8, &nan, 4); }},
      {"backtracking", [](RawSt& r) { r.tensors.erase(r.tensors.begin() + 3); }},  // "backtracking" itself
      {"backtracking.counts", [](RawSt& r) { r.find("backtracking.counts").shape = {1, 3}; }},
      {"overall.counts", [](RawSt& r) { r.find("overall.counts").data[0] = std::byte{0xff}; r.find("overall.counts").data[7] = std::byte{0xff}; }},
      {"backtracking.counts", [](RawSt& r) { r.tensors.erase(r.tensors.begin() + 2); }},  // one counts tensor gone
      {"backtracking.counts", [](RawSt& r) { r.tensors.erase(r.tensors.begin()); }},  // counts for some names only
      {"extra", [](RawSt& r) { r.add("extra", DType::F32, {1}, "abcd", 4); }},
  };
  for (const auto& [field, breakage] : cases) {
    RawSt raw(good);
    breakage(raw);
    raw.write(path("bad.safetensors"));
    EXPECT_EQ(read_fails(vectors_read_safetensors, path("bad.safetensors")).field(), field);
  }
  RawSt(good).write(path("good.safetensors"));
  expect_same_set(vectors_read_safetensors(path("good.safetensors")), good);
}

TEST_F(Vectors, TruncatedSafetensorsIsAnInputError) {
  vectors_write_safetensors(path("v.safetensors"), ts_test::sample_vectors());
  const std::string bytes = slurp(path("v.safetensors"));
  for (size_t n = 0; n < bytes.size(); n += 13) {
    spit(path("cut.safetensors"), bytes.substr(0, n));
    (void)read_fails(vectors_read_safetensors, path("cut.safetensors"));
  }
}

// ---------------------------------------------------------------------------------------------
// Malformed GGUF control vectors

struct RawGguf {
  std::vector<GgufKeyValue> kv = {{"general.architecture", GgufValue::string("controlvector")},
                                  {"controlvector.model_hint", GgufValue::string("qwen2")},
                                  {"controlvector.layer_count", GgufValue::int32(2)}};
  struct Tensor {
    std::string name;
    std::vector<uint64_t> dims;
    GgmlType type = GgmlType::F32;
    std::vector<float> values;
  };
  std::vector<Tensor> tensors = {{"direction.1", {4}, GgmlType::F32, {1, 2, 3, 4}}, {"direction.3", {4}, GgmlType::F32, {5, 6, 7, 8}}};

  void set(const std::string& key, GgufValue v) {
    for (GgufKeyValue& e : kv)
      if (e.key == key) {
        e.value = std::move(v);
        return;
      }
    kv.push_back({key, std::move(v)});
  }
  void write(const fs::path& p) const {
    std::vector<GgufTensorOut> out;
    for (const Tensor& t : tensors) {
      const size_t bytes = t.type == GgmlType::F16 ? t.values.size() * 2 : t.values.size() * 4;
      out.push_back({t.name, t.dims, t.type, std::as_bytes(std::span(t.values)).first(bytes)});
    }
    spit(p, gguf_serialize(kv, out));
  }
};

TEST_F(Vectors, MalformedGgufNamesTheTensorOrKey) {
  const std::vector<std::pair<std::string, std::function<void(RawGguf&)>>> cases = {
      {"general.architecture", [](RawGguf& r) { r.set("general.architecture", GgufValue::string("llama")); }},
      {"general.architecture", [](RawGguf& r) { r.kv.erase(r.kv.begin()); }},
      {"general.architecture", [](RawGguf& r) { r.set("general.architecture", GgufValue::int32(1)); }},
      {"controlvector.layer_count", [](RawGguf& r) { r.set("controlvector.layer_count", GgufValue::int32(28)); }},
      {"controlvector.layer_count", [](RawGguf& r) { r.set("controlvector.layer_count", GgufValue::string("2")); }},
      {"controlvector.model_hint", [](RawGguf& r) { r.set("controlvector.model_hint", GgufValue::uint32(2)); }},
      {"controlvector.model_hint", [](RawGguf& r) { r.set("controlvector.model_hint", GgufValue::string("qwen 2")); }},
      {"thinksteer.hook_applied", [](RawGguf& r) { r.set("thinksteer.hook_applied", GgufValue::string("blocks.{l}.hook_mlp_out")); }},
      {"thinksteer.hook_measured", [](RawGguf& r) { r.set("thinksteer.hook_measured", GgufValue::string("resid")); }},
      {"thinksteer.provenance", [](RawGguf& r) { r.set("thinksteer.provenance", GgufValue::string("{")); }},
      {"thinksteer.layer_map", [](RawGguf& r) { r.set("thinksteer.layer_map", GgufValue::string("next_block")); }},
      {"thinksteer.layer_map", [](RawGguf& r) { r.set("thinksteer.layer_map", GgufValue::string("")); }},
      {"thinksteer.layer_map", [](RawGguf& r) { r.set("thinksteer.layer_map", GgufValue::int32(1)); }},
      {"direction.0", [](RawGguf& r) { r.tensors[0].name = "direction.0"; }},
      {"direction.0", [](RawGguf& r) { r.set("thinksteer.layer_map", GgufValue::string("next-block")); r.tensors[0].name = "direction.0"; }},
      {"direction.16384", [](RawGguf& r) { r.tensors[1].name = "direction.16384"; }},  // layer 16384 > limit
      {"direction.3", [](RawGguf& r) { r.set("thinksteer.layer_map", GgufValue::string("next-block")); r.tensors[1].values[1] = std::nanf(""); }},
      {"direction.01", [](RawGguf& r) { r.tensors[0].name = "direction.01"; }},
      {"direction.-1", [](RawGguf& r) { r.tensors[0].name = "direction.-1"; }},
      {"direction.1x", [](RawGguf& r) { r.tensors[0].name = "direction.1x"; }},
      {"dir.1", [](RawGguf& r) { r.tensors[0].name = "dir.1"; }},
      {"direction.99999", [](RawGguf& r) { r.tensors[0].name = "direction.99999"; }},
      {"direction.1", [](RawGguf& r) { r.tensors[0].type = GgmlType::F16; }},
      {"direction.1", [](RawGguf& r) { r.tensors[0].dims = {2, 2}; }},
      {"direction.3", [](RawGguf& r) { r.tensors[1].dims = {2}; r.tensors[1].values.resize(2); }},
      {"direction.3", [](RawGguf& r) { r.tensors[1].values[2] = std::nanf(""); }},
      {"direction.1", [](RawGguf& r) { r.tensors[0].values[0] = std::numeric_limits<float>::infinity(); }},
      {"<tensors>", [](RawGguf& r) { r.tensors.clear(); r.set("controlvector.layer_count", GgufValue::int32(0)); }},
  };
  for (const auto& [field, breakage] : cases) {
    RawGguf raw;
    breakage(raw);
    raw.write(path("bad.gguf"));
    EXPECT_EQ(read_fails(vectors_read_gguf, path("bad.gguf")).field(), field);
  }
  RawGguf().write(path("good.gguf"));  // a foreign file: no thinksteer.* keys
  const VectorSet g = vectors_read_gguf(path("good.gguf"));
  EXPECT_EQ(g.names, std::vector<std::string>{"direction"});
  EXPECT_EQ(g.layers, (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(g.hook_measured, "");
  EXPECT_EQ(g.values, (std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8}));
  RawGguf unsigned_count;  // repeng-style UINT32 layer_count is fine too
  unsigned_count.set("controlvector.layer_count", GgufValue::uint32(2));
  unsigned_count.write(path("u32.gguf"));
  EXPECT_EQ(vectors_read_gguf(path("u32.gguf")).layers, (std::vector<int64_t>{1, 3}));
  // The same tensors under each thinksteer.layer_map: direction.N is our layer N-1 or N.
  for (const auto& [map, layers] : {std::pair<std::string, std::vector<int64_t>>{"next-block", {0, 2}}, {"same-block", {1, 3}}}) {
    RawGguf mapped;
    mapped.set("thinksteer.layer_map", GgufValue::string(map));
    mapped.write(path("mapped.gguf"));
    const VectorSet m = vectors_read_gguf(path("mapped.gguf"));
    EXPECT_EQ(m.layers, layers) << map;
    EXPECT_EQ(m.values, (std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8})) << map;
  }
}

TEST_F(Vectors, LayerNumbersMustBePlainDecimal) {
  // Tensor names are unique, but llama.cpp reads N with std::stoi, so "direction.2" and
  // "direction.02" would both land on layer 2 and be added up. Only the plain spelling is accepted,
  // which also makes every layer appear at most once.
  ts_test::GgufBytes g;
  g.header(2, 1).kv_string("general.architecture", "controlvector").tensor("direction.2", {1}, 0, 0).tensor("direction.02", {1}, 0, 32).pad();
  g.f32(1).pad().f32(2).pad();
  spit(path("dup.gguf"), std::string(reinterpret_cast<const char*>(g.bytes().data()), g.size()));
  const InputError e = read_fails(vectors_read_gguf, path("dup.gguf"));
  EXPECT_EQ(e.field(), "direction.02");  // not plain decimal
}

TEST_F(Vectors, MalformedGgufContainerIsAnInputError) {
  (void)vectors_write_gguf(path("v.gguf"), ts_test::sample_vectors(), "overall");
  const std::string bytes = slurp(path("v.gguf"));
  const GgufFile f = gguf_parse(std::as_bytes(std::span(bytes)), "v.gguf");
  const uint64_t data_end = f.data_start + f.tensors.back().offset + f.tensors.back().bytes;
  for (size_t n = 0; n < data_end; ++n) {  // truncated anywhere before the end of the data
    spit(path("cut.gguf"), bytes.substr(0, n));
    (void)read_fails(vectors_read_gguf, path("cut.gguf"));
  }
  auto patched = [&](size_t at, const void* p, size_t len) {
    std::string b = bytes;
    std::memcpy(b.data() + at, p, len);
    spit(path("patched.gguf"), b);
    return read_fails(vectors_read_gguf, path("patched.gguf")).field();
  };
  EXPECT_EQ(patched(0, "GGML", 4), "<magic>");
  const uint32_t v4 = 4;
  EXPECT_EQ(patched(4, &v4, 4), "<version>");
  const uint64_t huge = uint64_t{1} << 60;
  EXPECT_EQ(patched(8, &huge, 8), "<tensor_count>");
  EXPECT_EQ(patched(16, &huge, 8), "<metadata_kv_count>");
  // The last tensor's offset (the last 8 bytes of the tensor infos) moved past the end, then off
  // the alignment.
  const std::string last = f.tensors.back().name;
  ASSERT_EQ(last, "direction.6");  // our layer 5 under the default next-block map
  const size_t last_offset_at = bytes.find(last) + last.size() + 4 + 8 + 4;
  const uint64_t far = uint64_t{1} << 40, odd = f.tensors.back().offset + 4;
  EXPECT_EQ(patched(last_offset_at, &far, 8), last);
  EXPECT_EQ(patched(last_offset_at, &odd, 8), last);
  const uint64_t onto_previous = f.tensors[0].offset;  // overlaps the first tensor
  EXPECT_EQ(patched(last_offset_at, &onto_previous, 8), last);

  EXPECT_EQ(read_fails(vectors_read_gguf, path("missing.gguf")).field(), "<file>");
  ASSERT_EQ(::mkfifo(path("fifo.gguf").c_str(), 0600), 0);
  EXPECT_EQ(read_fails(vectors_read_gguf, path("fifo.gguf")).field(), "<file>");  // refused, not blocked on
}
}  // namespace
