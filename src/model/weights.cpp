#include "model/weights.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "core/error.h"

namespace ts {

namespace {

// Memory for the weights of a CPU model, advised for transparent huge pages (docs/architecture.md "Decode kernels"): a
// decode step streams every weight once, and with 4 KiB pages it walks the page tables every 4 KiB of each of the four
// rows a block of the decode kernel reads at once. With 2 MiB pages a steered decode step of bench_engine's 97.7M model
// ran 1.075x faster in fp32 at batch 8 and 1.036x in bf16, and batch-1 fp32 read 55-56 GB/s of weights instead of 50-53
// where the plain read gave 75 (bench/README.md "Huge pages for the weights"). Chunks of at least 64 MiB, 2 MiB aligned,
// each tensor at a 64-byte offset; a chunk lives while any tensor in it does. Loading writes each weight there once
// (docs/decisions.md). madvise is a hint: with THP off the pages are ordinary ones, and where posix_memalign fails the
// tensor is torch's.
class HugePageArena {
 public:
  // An uninitialised tensor of `o`'s dtype and device: in a chunk on the CPU; torch's memory elsewhere, for an empty
  // tensor, or where no chunk can be had.
  at::Tensor empty(at::IntArrayRef sizes, const at::TensorOptions& o) {
    const size_t bytes = static_cast<size_t>(c10::multiply_integers(sizes)) * c10::elementSize(c10::typeMetaToScalarType(o.dtype()));
    const size_t need = round_up(bytes, 64);
    if (!o.device().is_cpu() || bytes == 0 || (used_ + need > capacity_ && !grow(need))) return at::empty(sizes, o);
    auto* dst = static_cast<std::byte*>(chunk_.get()) + used_;
    used_ += need;
    return at::from_blob(dst, sizes, [keep = chunk_](void*) {}, o);
  }

 private:
  static constexpr size_t HUGE_PAGE = size_t{1} << 21, MIN_CHUNK = size_t{64} << 20;
  static size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

  bool grow(size_t need) {
    const size_t size = round_up(std::max(need, MIN_CHUNK), HUGE_PAGE);
    void* p = nullptr;
    if (posix_memalign(&p, HUGE_PAGE, size) != 0) return false;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    madvise(p, size, MADV_HUGEPAGE);  // before the first touch, so the pages fault in huge
#endif
    chunk_ = std::shared_ptr<void>(p, std::free);
    capacity_ = size;
    used_ = 0;
    return true;
  }

  std::shared_ptr<void> chunk_;
  size_t capacity_ = 0, used_ = 0;
};

}  // namespace

at::Tensor& layer_tensor(LayerWeights& lw, LayerSlot slot) {
  switch (slot) {
    case LayerSlot::attn_norm: return lw.attn_norm;
    case LayerSlot::w_qkv: return lw.w_qkv;
    case LayerSlot::b_qkv: return lw.b_qkv;
    case LayerSlot::w_o: return lw.w_o;
    case LayerSlot::b_o: return lw.b_o;
    case LayerSlot::mlp_norm: return lw.mlp_norm;
    case LayerSlot::w_gate: return lw.w_gate;
    case LayerSlot::b_gate: return lw.b_gate;
    case LayerSlot::w_up: return lw.w_up;
    case LayerSlot::b_up: return lw.b_up;
    case LayerSlot::w_down: return lw.w_down;
    case LayerSlot::b_down: return lw.b_down;
  }
  throw std::invalid_argument("layer_tensor: unknown slot");
}

const at::Tensor& layer_tensor(const LayerWeights& lw, LayerSlot slot) { return layer_tensor(const_cast<LayerWeights&>(lw), slot); }

namespace {
c10::ScalarType scalar_type_of(const TensorInfo& info) {
  switch (info.dtype) {
    case DType::F32: return at::kFloat;
    case DType::F16: return at::kHalf;
    case DType::BF16: return at::kBFloat16;
    case DType::F64: return at::kDouble;
    case DType::I64: return at::kLong;
    case DType::I32: return at::kInt;
    case DType::I16: return at::kShort;
    case DType::I8: return at::kChar;
    case DType::U8: return at::kByte;
    case DType::BOOL: return at::kBool;
    default: throw InputError(info.name, "dtype", std::string("cannot load dtype ") + dtype_name(info.dtype) + " into a tensor");
  }
}

// `out` (contiguous, its shape the tensor's) gets the file's values: their bytes copied in when the dtypes agree on
// the CPU (one copy from the mapped file), else converted by torch.
void fill_from_safetensors(at::Tensor out, const TensorInfo& info, std::span<const std::byte> bytes) {
  if (out.device().is_cpu() && out.scalar_type() == scalar_type_of(info) && out.nbytes() == bytes.size()) {
    if (!bytes.empty()) std::memcpy(out.data_ptr(), bytes.data(), bytes.size());
  } else {
    out.copy_(tensor_from_safetensors(info, bytes));
  }
}
}  // namespace

at::Tensor tensor_from_safetensors(const TensorInfo& info, std::span<const std::byte> bytes) {
  at::Tensor t = at::empty(info.shape, at::TensorOptions().dtype(scalar_type_of(info)));
  // Copy rather than alias the map: offsets are not guaranteed aligned by every writer.
  if (!bytes.empty()) std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
  return t;
}

c10::ScalarType dtype_resolve(ComputeDType dtype, const ModelConfig& cfg, const c10::Device& device) {
  if (dtype == ComputeDType::float32) return at::kFloat;
  if (dtype == ComputeDType::bfloat16) return at::kBFloat16;
  if (dtype == ComputeDType::float16) return at::kHalf;
  if (device.is_cpu()) return at::kFloat;
  if (cfg.torch_dtype == "float16") return at::kHalf;
  if (cfg.torch_dtype == "float32") return at::kFloat;
  return at::kBFloat16;
}

ModelWeights weights_load(const CheckpointFiles& ck, const LoadOptions& opts) {
  const ModelConfig& c = ck.config;
  ModelWeights w;
  w.config = c;
  const int64_t layer_end = opts.layer_end < 0 ? c.n_layer : opts.layer_end;
  w.layer_begin = opts.layer_begin;
  const auto target = at::TensorOptions().dtype(opts.dtype).device(opts.device);
  HugePageArena arena;  // CPU tensors are made there, each written once from the file
  auto load = [&](const std::string& name) {
    const TensorInfo& info = ck.info(name);
    at::Tensor out = arena.empty(info.shape, target);
    fill_from_safetensors(out, info, ck.bytes(name));
    return out;
  };
  auto load_cat = [&](const std::vector<std::string>& names) {  // rows of tensors that agree past their first dimension
    std::vector<int64_t> shape = ck.info(names[0]).shape;
    shape.at(0) = 0;
    for (const auto& n : names) {
      const std::vector<int64_t>& s = ck.info(n).shape;
      if (s.size() != shape.size() || !std::equal(s.begin() + 1, s.end(), shape.begin() + 1))
        throw InputError(n, "shape", "does not match the rows it is concatenated with (" + names[0] + ")");
      shape[0] += s[0];
    }
    at::Tensor out = arena.empty(shape, target);
    int64_t row = 0;
    for (const auto& n : names) {
      const TensorInfo& info = ck.info(n);
      fill_from_safetensors(out.narrow(0, row, info.shape[0]), info, ck.bytes(n));
      row += info.shape[0];
    }
    return out;
  };
  auto bytes_of = [](const at::Tensor& t) { return t.defined() ? t.numel() * static_cast<int64_t>(t.element_size()) : int64_t{0}; };

  if (opts.with_embed || (opts.with_head && c.tie_word_embeddings)) w.embed = load(std::string(HF_EMBED_TOKENS));
  for (int64_t l = opts.layer_begin; l < layer_end; ++l) {
    LayerWeights lw;
    for (LayerSlot slot : LAYER_SLOTS) {
      std::vector<std::string> names;  // the slot's HF tensors, q/k/v in row order
      for (const HfLayerTensor& h : HF_LAYER_TENSORS)
        if (h.slot == slot && hf_tensor_present(h, c)) names.push_back(hf_layer_tensor_name(l, h));
      if (names.size() == 1) layer_tensor(lw, slot) = load(names[0]);
      else if (!names.empty()) layer_tensor(lw, slot) = load_cat(names);
      w.parameter_bytes += bytes_of(layer_tensor(lw, slot));
    }
    w.layers.push_back(std::move(lw));
  }
  if (opts.with_head) {
    w.final_norm = load(std::string(HF_FINAL_NORM));
    if (c.tie_word_embeddings) {
      w.lm_head = w.embed;
    } else {
      w.lm_head = load(std::string(HF_LM_HEAD));
      w.parameter_bytes += bytes_of(w.lm_head);
    }
    w.parameter_bytes += bytes_of(w.final_norm);
  }
  w.parameter_bytes += bytes_of(w.embed);
  if (!opts.with_embed && !c.tie_word_embeddings) w.embed = at::Tensor();
  return w;
}

ModelWeights weights_init(const ModelConfig& c, double init_std, uint64_t seed) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  auto normal = [&](std::vector<int64_t> shape, double std) { return at::normal(0.0, std, shape, gen, f32); };
  const double out_std = init_std / std::sqrt(2.0 * static_cast<double>(c.n_layer));
  const int64_t D = c.d_model, F = c.d_mlp, qkv = (c.n_head + 2 * c.n_kv_head) * c.d_head;
  ModelWeights w;
  w.config = c;
  w.embed = normal({c.n_vocab, D}, init_std);
  for (int64_t l = 0; l < c.n_layer; ++l) {
    LayerWeights lw;
    lw.attn_norm = at::ones({D}, f32);
    lw.w_qkv = normal({qkv, D}, init_std);
    if (c.qkv_bias) lw.b_qkv = at::zeros({qkv}, f32);
    lw.w_o = normal({D, c.n_head * c.d_head}, out_std);
    if (c.o_bias) lw.b_o = at::zeros({D}, f32);
    lw.mlp_norm = at::ones({D}, f32);
    lw.w_gate = normal({F, D}, init_std);
    lw.w_up = normal({F, D}, init_std);
    lw.w_down = normal({D, F}, out_std);
    if (c.mlp_bias) lw.b_gate = at::zeros({F}, f32), lw.b_up = at::zeros({F}, f32), lw.b_down = at::zeros({D}, f32);
    w.layers.push_back(std::move(lw));
  }
  w.final_norm = at::ones({D}, f32);
  w.lm_head = c.tie_word_embeddings ? w.embed : normal({c.n_vocab, D}, init_std);
  for (const auto& [name, t] : weights_parameters(w)) w.parameter_bytes += t.numel() * static_cast<int64_t>(t.element_size());
  return w;
}

std::vector<std::pair<std::string, at::Tensor>> weights_parameters(const ModelWeights& w) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  auto add = [&](const std::string& name, const at::Tensor& t) {
    if (t.defined()) out.emplace_back(name, t);
  };
  add(std::string(HF_EMBED_TOKENS), w.embed);
  for (size_t i = 0; i < w.layers.size(); ++i)
    for (LayerSlot slot : LAYER_SLOTS) add(layer_slot_name(w.layer_begin + static_cast<int64_t>(i), slot), layer_tensor(w.layers[i], slot));
  add(std::string(HF_FINAL_NORM), w.final_norm);
  if (w.lm_head.defined() && !(w.embed.defined() && w.lm_head.is_same(w.embed))) add(std::string(HF_LM_HEAD), w.lm_head);
  return out;
}

}  // namespace ts
