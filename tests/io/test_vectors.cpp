// io/vectors: bit-exact round trips through HDF5, safetensors and GGUF; the GGUF layer mapping
// against llama.cpp's loader (emulated); writers refusing bad sets without leaving files behind;
// (malformed files of each format: test_vectors_malformed.cpp). Serial HDF5 only (no MPI needed).

#include "vectors_test_util.h"

using namespace ts;
using namespace vectors_test;

namespace {

std::vector<fs::path> files_in(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename());
  std::sort(out.begin(), out.end());
  return out;
}


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
      {"model", [](VectorSet& s) { s.model.assign("a\0b", 3); }},
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

}  // namespace
