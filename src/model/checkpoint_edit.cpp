#include "model/checkpoint_edit.h"

#include <ATen/ATen.h>

#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "model/checkpoint_files.h"

namespace ts {
namespace fs = std::filesystem;

namespace {

constexpr const char* INDEX = "model.safetensors.index.json";

c10::ScalarType scalar_type(DType d) {
  switch (d) {
    case DType::F32: return at::kFloat;
    case DType::BF16: return at::kBFloat16;
    case DType::F16: return at::kHalf;
    case DType::F64: return at::kDouble;
    default: throw std::invalid_argument(std::string("no floating-point scalar type for ") + dtype_name(d));
  }
}

bool is_float(DType d) { return d == DType::F32 || d == DType::BF16 || d == DType::F16 || d == DType::F64; }

// A stored tensor's bytes as a CPU tensor (no copy: it views the memory map).
at::Tensor view_of(const CheckpointFiles& ck, const std::string& name) {
  const TensorInfo& info = ck.info(name);
  const std::span<const std::byte> b = ck.bytes(name);
  return at::from_blob(const_cast<std::byte*>(b.data()), info.shape, at::TensorOptions().dtype(scalar_type(info.dtype)));
}

// Every name and shape the edit gives, checked against the source before anything is written.
void check_edit(const CheckpointFiles& ck, const CheckpointEdit& edit, const fs::path& src) {
  if (edit.marker.empty() || edit.marker.find('/') != std::string::npos) throw std::invalid_argument("write_edited_checkpoint: a plain marker file name is required");
  for (const auto& [name, t] : edit.replace) {
    if (!ck.has(name)) throw InputError(src.string(), name, "the edit replaces a tensor the checkpoint does not have");
    const TensorInfo& info = ck.info(name);
    if (!is_float(info.dtype)) throw InputError(ck.shard_path(name).string(), name, std::string("only floating-point tensors can be edited, not ") + dtype_name(info.dtype));
    if (t.sizes().vec() != info.shape)
      throw InputError(ck.shard_path(name).string(), name, "the edit's shape " + shape_to_string(t.sizes().vec()) + " is not the tensor's " + shape_to_string(info.shape));
    if (!t.is_floating_point() || !at::isfinite(t).all().item<bool>()) throw InputError(src.string(), name, "the edited values must be finite floating-point numbers");
  }
  for (const auto& [name, t] : edit.add) {
    if (ck.has(name)) throw InputError(src.string(), name, "the edit adds a tensor the checkpoint already has");
    if (!t.is_floating_point() || !at::isfinite(t).all().item<bool>()) throw InputError(src.string(), name, "the added values must be finite floating-point numbers");
  }
}

// One output shard: the source shard's tensors in its order (replaced or carried over), plus `added`.
void write_shard(const CheckpointFiles& ck, size_t shard, const CheckpointEdit& edit, const std::vector<std::string>& added, DType add_dtype,
                 const fs::path& out) {
  const SafetensorsFile& file = ck.shards[shard];
  std::vector<TensorBytes> layout;
  std::vector<const at::Tensor*> source;  // per entry: the edit's tensor, or nullptr (carried over)
  for (const TensorInfo& t : file.header().tensors) {
    const auto r = edit.replace.find(t.name);
    const DType dtype = edit.float32 && is_float(t.dtype) ? DType::F32 : t.dtype;
    layout.push_back({t.name, dtype, t.shape, {}});
    source.push_back(r == edit.replace.end() ? nullptr : &r->second);
  }
  for (const std::string& name : added) {
    const at::Tensor& t = edit.add.at(name);
    layout.push_back({name, add_dtype, t.sizes().vec(), {}});
    source.push_back(&t);
  }
  std::map<std::string, std::string> metadata = file.header().metadata;
  for (const auto& [k, v] : edit.metadata) metadata[k] = v;
  metadata.emplace("format", "pt");
  at::Tensor held;  // the converted tensor of the current entry
  safetensors_write_each(out, layout, metadata, [&](size_t i) -> std::span<const std::byte> {
    const TensorBytes& l = layout[i];
    if (source[i] == nullptr && l.dtype == file.header().tensors[i].dtype) return file.bytes(file.header().tensors[i]);  // bit for bit
    held = (source[i] != nullptr ? source[i]->detach().to(at::kCPU) : view_of(ck, l.name)).to(scalar_type(l.dtype)).contiguous();
    return {reinterpret_cast<const std::byte*>(held.data_ptr()), static_cast<size_t>(held.nbytes())};
  });
}

json edited_config(const fs::path& src, const CheckpointEdit& edit) {
  json config = json_read_file(src / "config.json");
  if (edit.float32) {
    config["torch_dtype"] = "float32";
    if (config.contains("dtype")) config["dtype"] = "float32";
  }
  config.merge_patch(edit.config_update);
  return config;
}

}  // namespace

void check_edited_destination(const fs::path& src, const fs::path& dst, const std::string& marker, const std::string& out_key) {
  std::error_code ec;
  if (fs::equivalent(src, dst, ec)) throw InputError(dst.string(), out_key, "is the source checkpoint itself; write the edit elsewhere");
  if (fs::exists(dst) && !fs::is_regular_file(dst / marker))
    throw InputError(dst.string(), out_key, "exists and was not written by this stage (no " + marker + " in it); remove it or choose another directory");
}

at::Tensor checkpoint_tensor_f32(const CheckpointFiles& ck, const std::string& name) {
  if (!ck.has(name)) throw InputError(ck.dir.string(), name, "no such tensor in the checkpoint");
  return view_of(ck, name).to(at::kFloat).clone();
}

at::Tensor checkpoint_tensor_f32(const fs::path& dir, const std::string& name) { return checkpoint_tensor_f32(checkpoint_open(dir), name); }

void write_edited_checkpoint(const fs::path& src, const fs::path& dst, const CheckpointEdit& edit, const std::string& out_key) {
  const CheckpointFiles ck = checkpoint_open(src);
  check_edit(ck, edit, src);
  check_edited_destination(src, dst, edit.marker, out_key);
  const bool sharded = fs::exists(src / INDEX);
  std::vector<std::string> added;
  for (const auto& [name, t] : edit.add) added.push_back(name);
  const DType embed_dtype = ck.info("model.embed_tokens.weight").dtype;
  const DType add_dtype = edit.float32 ? DType::F32 : embed_dtype;

  const fs::path partial = dst.string() + ".partial";
  remove_tree(partial);
  fs::create_directories(partial);
  std::set<std::string> written;
  json weight_map = json::object();
  uint64_t total = 0;
  for (size_t s = 0; s < ck.shards.size(); ++s) {
    const std::string name = ck.shards[s].path().filename().string();
    const bool last = s + 1 == ck.shards.size();
    write_shard(ck, s, edit, last ? added : std::vector<std::string>{}, add_dtype, partial / name);
    const SafetensorsFile check(partial / name);  // reread: a valid file with every tensor
    for (const TensorInfo& t : check.header().tensors) {
      weight_map[t.name] = name;
      total += t.end - t.begin;
    }
    written.insert(name);
  }
  if (sharded) {
    json index = json_read_file(src / INDEX);
    index["weight_map"] = weight_map;
    index["metadata"]["total_size"] = total;
    write_file_atomic(partial / INDEX, index.dump(2) + "\n");
    written.insert(INDEX);
  }
  write_file_atomic(partial / "config.json", edited_config(src, edit).dump(2) + "\n");
  written.insert("config.json");
  for (const auto& [name, content] : edit.files) {
    write_file_atomic(partial / name, content);
    written.insert(name);
  }
  write_file_atomic(partial / edit.marker, edit.marker_content);
  written.insert(edit.marker);
  for (const auto& e : fs::directory_iterator(src)) {  // tokenizer files, generation_config.json, chat template...
    const std::string name = e.path().filename().string();
    if (!e.is_regular_file() || written.count(name) || e.path().extension() == ".safetensors" || name.find(".partial") != std::string::npos) continue;
    write_file_atomic(partial / name, read_file(e.path()));
  }
  (void)checkpoint_open(partial);  // the result loads: every tensor present with the shape config.json implies
  remove_tree(dst);
  fs::rename(partial, dst);
}

}  // namespace ts
