// io/vectors: bit-exact round trips through HDF5, safetensors and GGUF; the GGUF layer mapping
// against llama.cpp's loader (emulated); writers refusing bad sets without leaving files behind;
// and malformed files of each format (built here by hand) giving an InputError that names the file
// and the dataset, attribute, tensor or key, never a crash. Serial HDF5 only (no MPI needed).
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

using namespace ts;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void spit(const fs::path& p, const std::string& bytes) { std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes; }

// Bit-for-bit equality of float arrays (== would equate -0 and +0).
void expect_same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
}

void expect_same_set(const VectorSet& got, const VectorSet& want) {
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
InputError read_fails(const std::function<VectorSet(const fs::path&)>& read, const fs::path& path) {
  try {
    read(path);
    ADD_FAILURE() << path << " was read without error";
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), path.string()) << e.what();
    return e;
  } catch (const std::exception& e) {
    ADD_FAILURE() << path << ": not an InputError: " << e.what();
  }
  return InputError("", "", "");
}

std::vector<fs::path> files_in(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename());
  std::sort(out.begin(), out.end());
  return out;
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

// ---------------------------------------------------------------------------------------------
// Round trips

TEST_F(Vectors, H5RoundTripIsBitExact) {
  const VectorSet s = ts_test::sample_vectors();
  vectors_write_h5(path("v.h5"), s);
  expect_same_set(vectors_read_h5(path("v.h5")), s);
  // h5py/xarray see the documented layout (also checked from Python in test_vectors.py).
  h5::SerialFile f(path("v.h5"), h5::SerialFile::Mode::READ_ONLY);
  EXPECT_EQ(f.shape("/vectors"), (std::vector<int64_t>{3, 3, 6}));
  EXPECT_EQ(f.shape("/counts"), (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(f.attr_string("/", "format"), "thinksteer.vectors");
  EXPECT_EQ(f.attr_int("/", "format_version"), 1);
  EXPECT_TRUE(f.exists("/name") && f.exists("/layer") && f.exists("/d_model"));  // dimension scales
}

TEST_F(Vectors, SafetensorsRoundTripIsBitExact) {
  const VectorSet s = ts_test::sample_vectors();
  vectors_write_safetensors(path("v.safetensors"), s);
  expect_same_set(vectors_read_safetensors(path("v.safetensors")), s);
  const SafetensorsFile st(path("v.safetensors"));
  ASSERT_NE(st.find("backtracking"), nullptr);
  EXPECT_EQ(st.find("backtracking")->shape, (std::vector<int64_t>{3, 6}));
  EXPECT_EQ(st.find("backtracking.counts")->dtype, DType::I64);
  EXPECT_EQ(st.header().metadata.at("layers"), "[0,2,5]");
  for (const TensorInfo& t : st.header().tensors) EXPECT_EQ(t.begin % (dtype_bits(t.dtype) / 8), 0u) << t.name;  // aligned
}

TEST_F(Vectors, SetsWithoutCountsAndLongProvenanceRoundTrip) {
  VectorSet s = ts_test::sample_vectors();
  s.counts.clear();
  // A resolved config can be long: past HDF5's 64 KiB compact-attribute limit.
  s.provenance_json = json{{"config", std::string(200000, 'x')}, {"note", "\u00fc \u2713"}}.dump();
  s.hook_measured = "blocks.{l}.hook_resid_mid";  // measured and applied may differ (ThinkEdit)
  s.hook_applied = "blocks.{l}.hook_attn_out";
  s.architecture.clear();
  vectors_write_h5(path("v.h5"), s);
  vectors_write_safetensors(path("v.safetensors"), s);
  expect_same_set(vectors_read_h5(path("v.h5")), s);
  expect_same_set(vectors_read_safetensors(path("v.safetensors")), s);
  s.provenance_json.clear();
  vectors_write_h5(path("v.h5"), s);
  vectors_write_safetensors(path("v.safetensors"), s);
  expect_same_set(vectors_read_h5(path("v.h5")), s);
  expect_same_set(vectors_read_safetensors(path("v.safetensors")), s);
}

// The vectors of name `i` at the layer indices `ks` of `s`, concatenated.
std::vector<float> vectors_at(const VectorSet& s, size_t i, const std::vector<size_t>& ks) {
  std::vector<float> out;
  for (size_t k : ks) out.insert(out.end(), s.vector(i, k), s.vector(i, k) + s.d_model);
  return out;
}

GgufFile parse_gguf(const std::string& bytes) { return gguf_parse(std::as_bytes(std::span(bytes)), "v.gguf"); }

std::vector<std::string> tensor_names(const GgufFile& f) {
  std::vector<std::string> out;
  for (const GgufTensorInfo& t : f.tensors) out.push_back(t.name);
  return out;
}

TEST_F(Vectors, GgufLayerMapNames) {
  EXPECT_EQ(gguf_layer_map_name(GgufLayerMap::next_block), "next-block");
  EXPECT_EQ(gguf_layer_map_name(GgufLayerMap::same_block), "same-block");
  for (GgufLayerMap m : {GgufLayerMap::next_block, GgufLayerMap::same_block}) EXPECT_EQ(gguf_layer_map_from_name(gguf_layer_map_name(m)), m);
  try {
    (void)gguf_layer_map_from_name("next_block");
    ADD_FAILURE() << "accepted next_block";
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("\"next_block\""), std::string::npos) << what;
    EXPECT_NE(what.find("next-block"), std::string::npos) << what;
    EXPECT_NE(what.find("same-block"), std::string::npos) << what;
  }
  EXPECT_THROW((void)gguf_layer_map_from_name(""), std::invalid_argument);
}

// The default map (docs/decisions.md "Names and indexing"): resid_post[l] -> direction.{l+1}, layer 0
// included as direction.1.
TEST_F(Vectors, GgufDefaultExportWritesDirectionLPlusOne) {
  const VectorSet s = ts_test::sample_vectors();
  const std::vector<int64_t> written = vectors_write_gguf(path("v.gguf"), s, "backtracking");
  EXPECT_EQ(written, (std::vector<int64_t>{0, 2, 5}));  // our layers, every one of them
  const VectorSet g = vectors_read_gguf(path("v.gguf"));
  EXPECT_EQ(g.names, std::vector<std::string>{"backtracking"});
  EXPECT_EQ(g.layers, written);  // back to our layers
  EXPECT_EQ(g.hook_applied, "blocks.{l}.hook_resid_post");
  EXPECT_EQ(g.hook_measured, s.hook_measured);
  EXPECT_EQ(g.architecture, "qwen2");
  EXPECT_EQ(g.model, s.model);
  EXPECT_EQ(g.provenance_json, s.provenance_json);
  EXPECT_TRUE(g.counts.empty());
  expect_same_bits(g.values, vectors_at(s, 1, {0, 1, 2}));

  // The container as llama.cpp sees it.
  const GgufFile f = parse_gguf(slurp(path("v.gguf")));
  EXPECT_EQ(f.version, 3u);
  EXPECT_EQ(f.alignment, 32u);
  EXPECT_EQ(f.find("general.architecture")->s, "controlvector");
  EXPECT_EQ(f.find("controlvector.model_hint")->s, "qwen2");
  EXPECT_EQ(f.find("controlvector.layer_count")->type, GgufType::INT32);
  EXPECT_EQ(f.find("controlvector.layer_count")->i, 3);
  ASSERT_NE(f.find("thinksteer.layer_map"), nullptr);
  EXPECT_EQ(f.find("thinksteer.layer_map")->type, GgufType::STRING);
  EXPECT_EQ(f.find("thinksteer.layer_map")->s, "next-block");
  EXPECT_EQ(tensor_names(f), (std::vector<std::string>{"direction.1", "direction.3", "direction.6"}));
  for (const GgufTensorInfo& t : f.tensors) {
    EXPECT_EQ(t.type, GgmlType::F32);
    EXPECT_EQ(t.dims, std::vector<uint64_t>{6});
    EXPECT_EQ((f.data_start + t.offset) % 32, 0u);
  }

  // Asking for next_block explicitly gives the same bytes.
  (void)vectors_write_gguf(path("explicit.gguf"), s, "backtracking", 1.0, GgufLayerMap::next_block);
  EXPECT_EQ(slurp(path("explicit.gguf")), slurp(path("v.gguf")));
}

// The alternative: resid_post[l] -> direction.{l}, layer 0 left out.
TEST_F(Vectors, GgufSameBlockExportWritesDirectionLAndDropsLayerZero) {
  const VectorSet s = ts_test::sample_vectors();
  const std::vector<int64_t> written = vectors_write_gguf(path("v.gguf"), s, "backtracking", 1.0, GgufLayerMap::same_block);
  EXPECT_EQ(written, (std::vector<int64_t>{2, 5}));  // layer 0 has no slot
  const VectorSet g = vectors_read_gguf(path("v.gguf"));
  EXPECT_EQ(g.names, std::vector<std::string>{"backtracking"});
  EXPECT_EQ(g.layers, written);
  EXPECT_EQ(g.hook_measured, s.hook_measured);
  expect_same_bits(g.values, vectors_at(s, 1, {1, 2}));
  const GgufFile f = parse_gguf(slurp(path("v.gguf")));
  EXPECT_EQ(f.find("controlvector.layer_count")->i, 2);
  EXPECT_EQ(f.find("thinksteer.layer_map")->s, "same-block");
  EXPECT_EQ(tensor_names(f), (std::vector<std::string>{"direction.2", "direction.5"}));
}

TEST_F(Vectors, GgufScaleIsAppliedInDoubleAndRoundedOnce) {
  VectorSet s = ts_test::sample_vectors();
  for (float& v : s.values) v = std::isfinite(v * 4.0f) ? v : 1.0f;  // keep -3x finite
  for (GgufLayerMap map : {GgufLayerMap::next_block, GgufLayerMap::same_block}) {
    const auto written = vectors_write_gguf(path("v.gguf"), s, "overall", -3.0, map);
    const VectorSet g = vectors_read_gguf(path("v.gguf"));
    ASSERT_EQ(g.layers, written);
    for (size_t k = 0; k < g.n_layers(); ++k)
      for (int64_t j = 0; j < s.d_model; ++j)
        EXPECT_EQ(g.vector(0, k)[j], static_cast<float>(static_cast<double>(s.vector(0, *s.layer_index(g.layers[k]))[j]) * -3.0)) << k << " " << j;
    EXPECT_EQ(parse_gguf(slurp(path("v.gguf"))).find("thinksteer.scale")->f, -3.0);
  }
}

// What llama.cpp does with a control-vector file, step by step (docs/conventions.md §4.7):
//  1. common/common.cpp, common_control_vector_load_one: for each tensor direction.N (N >= 1),
//     its n_embd floats go to buffer row N-1 (rows are summed across tensors and files).
//  2. src/llama-adapter.cpp, llama_adapter_cvec::init/apply: tensors[0] stays null ("there's never
//     a tensor for layer 0"); for il = 1..n_layer-1, tensors[il] takes buffer row il-1 (rows past
//     n_layer-2 are loaded but go nowhere).
//  3. src/models/<arch>.cpp: for (il = 0; il < n_layer; ++il) {...; cur = build_cvec(cur, il);
//     cb(cur, "l_out", il); } adds tensors[il] to the output of block il (0-based), i.e. to
//     blocks.{il}.hook_resid_post.
// The result: per 0-based block, the vector llama.cpp adds to that block's output.
std::map<int64_t, std::vector<float>> llama_cpp_adds(const GgufFile& f, std::span<const std::byte> bytes, int64_t n_layer) {
  std::vector<std::vector<float>> buffer;  // step 1
  for (const GgufTensorInfo& t : f.tensors) {
    const int64_t n = std::stoll(t.name.substr(std::string("direction.").size()));
    if (static_cast<int64_t>(buffer.size()) < n) buffer.resize(static_cast<size_t>(n));
    std::vector<float>& row = buffer[static_cast<size_t>(n - 1)];
    row.resize(t.dims[0], 0.0f);
    const auto src = gguf_tensor_bytes(bytes, f, t);
    for (size_t j = 0; j < row.size(); ++j) {
      float v;
      std::memcpy(&v, src.data() + j * 4, 4);
      row[j] += v;
    }
  }
  std::map<int64_t, std::vector<float>> adds;
  for (int64_t il = 1; il < n_layer; ++il)  // steps 2 and 3
    if (il - 1 < static_cast<int64_t>(buffer.size()) && !buffer[static_cast<size_t>(il - 1)].empty())
      adds[il] = buffer[static_cast<size_t>(il - 1)];
  return adds;
}

TEST_F(Vectors, GgufLayerMappingMatchesLlamaCpp) {
  constexpr int64_t n_layer = 28;  // a 28-layer model (Qwen-1.5B)
  VectorSet s = ts_test::sample_vectors();
  s.layers = {0, 1, 3, n_layer - 1};  // first, second, middle, last block
  s.names = {"v"};
  s.counts.clear();
  s.values.clear();
  for (int64_t l : s.layers)
    for (int64_t j = 0; j < s.d_model; ++j) s.values.push_back(static_cast<float>(100 * l + j));
  auto ours = [&](int64_t layer) {
    const size_t k = *s.layer_index(layer);
    return std::vector<float>(s.vector(0, k), s.vector(0, k) + s.d_model);
  };
  // For each map: our layer -> the block at whose output llama.cpp adds that vector (none: absent).
  struct Case {
    GgufLayerMap map;
    std::vector<int64_t> written;
    std::map<int64_t, int64_t> applied_at;
  };
  const std::vector<Case> cases = {
      // same_block: applied exactly where measured; layer 0 cannot be exported.
      {GgufLayerMap::same_block, {1, 3, n_layer - 1}, {{1, 1}, {3, 3}, {n_layer - 1, n_layer - 1}}},
      // next_block: applied one block after the measurement (as llama-cvector-generator's files);
      // our last layer becomes direction.{n_layer}, which llama.cpp loads but applies nowhere.
      {GgufLayerMap::next_block, {0, 1, 3, n_layer - 1}, {{0, 1}, {1, 2}, {3, 4}}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(gguf_layer_map_name(c.map));
    const auto written = vectors_write_gguf(path("v.gguf"), s, "v", 1.0, c.map);
    EXPECT_EQ(written, c.written);
    const std::string bytes = slurp(path("v.gguf"));
    const auto span = std::as_bytes(std::span(bytes));
    const auto adds = llama_cpp_adds(gguf_parse(span, "v.gguf"), span, n_layer);
    ASSERT_EQ(adds.size(), c.applied_at.size());
    for (const auto& [layer, block] : c.applied_at) {
      ASSERT_TRUE(adds.count(block)) << "llama.cpp adds nothing at block " << block;
      EXPECT_EQ(adds.at(block), ours(layer)) << "our layer " << layer << " should be added at block " << block;
    }
    if (c.map == GgufLayerMap::next_block) {
      // Nothing lands on block 0, and our last layer's vector is added at no block at all.
      EXPECT_FALSE(adds.count(0));
      for (const auto& [block, v] : adds) EXPECT_NE(v, ours(n_layer - 1)) << "block " << block;
    }
    // Our reader returns the layers we wrote, whichever the map.
    EXPECT_EQ(vectors_read_gguf(path("v.gguf")).layers, written);
  }
}

// next_block names our last possible layer direction.{VECTORS_MAX_LAYERS}; the reader takes it back.
TEST_F(Vectors, GgufNextBlockReachesTheLastLayer) {
  VectorSet s = ts_test::sample_vectors();
  s.layers = {VECTORS_MAX_LAYERS - 1};
  s.names = {"v"};
  s.counts.clear();
  s.values.assign(static_cast<size_t>(s.d_model), 0.5f);
  EXPECT_EQ(vectors_write_gguf(path("v.gguf"), s, "v"), s.layers);
  EXPECT_EQ(tensor_names(parse_gguf(slurp(path("v.gguf")))), std::vector<std::string>{"direction." + std::to_string(VECTORS_MAX_LAYERS)});
  EXPECT_EQ(vectors_read_gguf(path("v.gguf")).layers, s.layers);
}

// ---------------------------------------------------------------------------------------------
// Writers refuse bad sets and leave nothing behind

TEST_F(Vectors, WritersRejectInvalidSetsWithoutLeavingFiles) {
  const std::vector<std::pair<std::string, std::function<void(VectorSet&)>>> breakages = {
      {"values", [](VectorSet& s) { s.values[7] = std::nanf(""); }},
      {"values", [](VectorSet& s) { s.values[8] = std::numeric_limits<float>::infinity(); }},
      {"values", [](VectorSet& s) { s.values.pop_back(); }},
      {"values", [](VectorSet& s) { s.values[2 * 3 * 6 + 1] = 1.0f; }},  // the missing vector must stay zero
      {"counts", [](VectorSet& s) { s.counts[1] = -4; }},
      {"counts", [](VectorSet& s) { s.counts.pop_back(); }},
      {"names", [](VectorSet& s) { s.names[1] = "overall"; }},
      {"names", [](VectorSet& s) { s.names[1] = "a/b"; }},
      {"names", [](VectorSet& s) { s.names[1] = "x.counts"; }},
      {"names", [](VectorSet& s) { s.names[1] = ""; }},
      {"layers", [](VectorSet& s) { s.layers = {0, 5, 2}; }},
      {"layers", [](VectorSet& s) { s.layers = {-1, 2, 5}; }},
      {"d_model", [](VectorSet& s) { s.d_model = 0; }},
      {"hook_applied", [](VectorSet& s) { s.hook_applied = "blocks.3.hook_resid_post"; }},
      {"hook_measured", [](VectorSet& s) { s.hook_measured = "blocks.{l}.{l}"; }},
      {"model", [](VectorSet& s) { s.model = std::string("a\0b", 3); }},
      {"model", [](VectorSet& s) { s.model = "\xff"; }},
      {"provenance_json", [](VectorSet& s) { s.provenance_json = "{not json"; }},
      {"architecture", [](VectorSet& s) { s.architecture = "qwen 2"; }},
  };
  for (const auto& [field, breakage] : breakages) {
    VectorSet s = ts_test::sample_vectors();
    breakage(s);
    EXPECT_THROW(vectors_validate(s, "set"), InputError) << field;
    try {
      vectors_validate(s, "set");
    } catch (const InputError& e) {
      EXPECT_EQ(e.field(), field) << e.what();
    }
    EXPECT_THROW(vectors_write_h5(path("v.h5"), s), std::invalid_argument) << field;
    EXPECT_THROW(vectors_write_safetensors(path("v.safetensors"), s), std::invalid_argument) << field;
    EXPECT_THROW((void)vectors_write_gguf(path("v.gguf"), s, "overall"), std::invalid_argument) << field;
  }
  EXPECT_TRUE(files_in(dir_.path()).empty());
}

TEST_F(Vectors, GgufExportRefusals) {
  const VectorSet good = ts_test::sample_vectors();
  auto refuses = [&](VectorSet s, const std::string& name, double scale, const std::string& says) {
    try {
      (void)vectors_write_gguf(path("v.gguf"), s, name, scale);
      ADD_FAILURE() << "exported: " << says;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
    }
  };
  VectorSet attn = good;
  attn.hook_applied = "blocks.{l}.hook_attn_out";
  refuses(attn, "overall", 1.0, "layer's output, i.e. at blocks.{l}.hook_resid_post");
  VectorSet no_arch = good;
  no_arch.architecture.clear();
  refuses(no_arch, "overall", 1.0, "model_hint");
  refuses(good, "nope", 1.0, "no vector named \"nope\"");
  refuses(good, "overall", std::numeric_limits<double>::infinity(), "scale must be finite");
  refuses(good, "overall", 2.0, "not finite");  // float max x 2 overflows
  VectorSet layer0 = good;
  layer0.layers = {0};
  layer0.counts = {1, 1, 1};
  layer0.values.resize(3 * 6);
  try {
    (void)vectors_write_gguf(path("v.gguf"), layer0, "overall", 1.0, GgufLayerMap::same_block);
    ADD_FAILURE() << "exported layer 0 with the same-block map";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("layer 0 has no direction tensor"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(files_in(dir_.path()).empty());
  // The default map has a slot for layer 0: direction.1.
  EXPECT_EQ(vectors_write_gguf(path("v.gguf"), layer0, "overall"), std::vector<int64_t>{0});
  EXPECT_EQ(tensor_names(parse_gguf(slurp(path("v.gguf")))), std::vector<std::string>{"direction.1"});
}

TEST_F(Vectors, WritesReplaceAtomicallyAndCreateDirectories) {
  const VectorSet s = ts_test::sample_vectors();
  const fs::path sub = path("run/vectors");
  vectors_write_h5(sub / "v.h5", s);
  vectors_write_safetensors(sub / "v.safetensors", s);
  (void)vectors_write_gguf(sub / "v.gguf", s, "overall");
  VectorSet t = s;
  t.values[0] = 42.0f;
  vectors_write_h5(sub / "v.h5", t);  // over an existing file
  vectors_write_safetensors(sub / "v.safetensors", t);
  EXPECT_EQ(vectors_read_h5(sub / "v.h5").values[0], 42.0f);
  EXPECT_EQ(vectors_read_safetensors(sub / "v.safetensors").values[0], 42.0f);
  EXPECT_EQ(files_in(sub), (std::vector<fs::path>{"v.gguf", "v.h5", "v.safetensors"}));  // no temporaries left
}

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
