// One task of a base-vector sweep (stages/basevec_train.h): the points, the task's identity, the
// pieces both trainers use (batched forward with the shift, data-parallel gradients, resumable state)
// and the correction trainer (docs/algorithms.md §B.10).
//   in : <run.dir>/basevec/records.h5 (basevec collect), basevec.base_model, the point (method, seed)
//   out: <run.dir>/basevec/tasks/<key>.h5 + <key>.vectors.h5 (+ .done; artifacts/basevec_task.h)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <optional>

#include "core/done_marker.h"
#include "core/error.h"
#include "core/log.h"
#include "core/sha256.h"
#include "core/splitmix.h"
#include "dist/batch_loop.h"
#include "dist/stop.h"
#include "model/checkpoint_identity.h"
#include "model/safetensors.h"
#include "model/weights.h"
#include "stages/basevec_train.h"
#include "stages/stage.h"

namespace ts::stages {
namespace fs = std::filesystem;

// --- points and identity -------------------------------------------------------------------------

json BasevecPoint::to_json() const { return {{"task", task}, {"key", key}, {"method", method}, {"seed", seed}}; }

BasevecPoint BasevecPoint::from_json(const json& row, const std::string& where) {
  BasevecPoint p;
  p.task = json_int(row, "task", where), p.seed = json_int(row, "seed", where);
  p.key = json_string(row, "key", where), p.method = json_string(row, "method", where);
  if (!option_parse<BasevecMethod>(p.method)) throw InputError(where, "method", "'" + p.method + "' is not correction or linear");
  return p;
}

std::vector<BasevecPoint> basevec_points(const Config& cfg) {
  std::vector<BasevecPoint> out;
  for (const std::string& m : cfg.basevec.methods)
    for (const std::string& s : cfg.basevec.seeds) {
      BasevecPoint p;
      p.task = static_cast<int64_t>(out.size()), p.method = m, p.seed = std::stoll(s);
      p.key = sha256_hex("basevec " + m + " " + std::to_string(p.seed)).substr(0, 16);
      out.push_back(p);
    }
  return out;
}

fs::path basevec_records_path(const Config& cfg) { return artifacts::BASEVEC_RECORDS_H5.in(cfg); }

std::string basevec_task_hash(const Config& cfg, const BasevecPoint& p, const std::string& records_hash) {
  Config c = cfg;  // the axes and the collection's inputs (certified by the records' hash) do not decide a task
  c.basevec.methods.clear(), c.basevec.seeds.clear();
  c.basevec.generations.clear(), c.basevec.sae.clear(), c.basevec.collect_batch_size = 0;
  json point = p.to_json();
  point.erase("task");
  return artifacts::output_config_hash(c, {"basevec"}, point.dump() + "\nrecords=" + records_hash + "\nbase=" + checkpoint_identity(cfg.basevec.base_model));
}

// --- shared pieces -------------------------------------------------------------------------------

at::Tensor batch_logits(const StageModel& m, const Runtime& rt, const artifacts::BasevecRecords& r, const std::vector<TrainItem>& items, int64_t layer,
                        const at::Tensor& vectors, const at::Tensor& bias, const basevec::CoefMlp& mlp) {
  int64_t T = 0;
  for (const TrainItem& it : items) T = std::max(T, it.len);
  const auto B = static_cast<int64_t>(items.size());
  at::Tensor tokens = at::full({B, T}, m.pad_id, at::kLong);
  std::vector<int64_t> shift_rows, shift_cat, loss_rows;
  for (int64_t b = 0; b < B; ++b) {
    const TrainItem& it = items[static_cast<size_t>(b)];
    const int64_t off = r.token_offset[static_cast<size_t>(it.example)];
    std::vector<int64_t> ids(r.tokens.begin() + off, r.tokens.begin() + off + it.len);
    tokens[b].narrow(0, 0, it.len).copy_(at::tensor(ids, at::kLong));
    for (size_t i = 0; i < it.shift_pos.size(); ++i) shift_rows.push_back(b * T + it.shift_pos[i]), shift_cat.push_back(it.shift_cat[i]);
    for (int64_t p : it.loss_pos) loss_rows.push_back(b * T + p);
  }
  HookSet hooks(m.config.n_layer);
  if (vectors.defined() && !shift_rows.empty())
    hooks.add_fn({HookSite::RESID_POST, layer}, basevec::shift_fn({at::tensor(shift_rows, at::kLong), at::tensor(shift_cat, at::kLong)}, vectors, bias, mlp));
  ForwardArgs a;
  a.tokens = tokens.to(rt.device);
  a.positions = at::arange(T, at::TensorOptions().dtype(at::kLong)).unsqueeze(0).expand({B, T}).contiguous().to(rt.device);
  a.hooks = &hooks;
  a.logits = LogitsMode::NONE;
  const at::Tensor h = m.model->forward(a);
  return m.model->head(h.reshape({B * T, h.size(-1)}).index_select(0, at::tensor(loss_rows, at::kLong).to(rt.device)));
}

std::pair<size_t, size_t> rank_slice(size_t n, const Runtime& rt) {
  const auto w = static_cast<size_t>(rt.world), k = static_cast<size_t>(rt.rank);
  return {n * k / w, n * (k + 1) / w};
}

std::vector<double> allreduce_grads(Runtime& rt, std::vector<AdamW*> opts, std::vector<double> extras, size_t divisor_index) {
  std::vector<float> flat;
  std::vector<size_t> sizes;
  for (AdamW* o : opts) {
    const std::vector<float> g = o->flatten_grads();
    sizes.push_back(g.size());
    flat.insert(flat.end(), g.begin(), g.end());
  }
  std::vector<double> sums = extras;
  if (rt.world > 1) {
    rt.world_comm.allreduce_sum(std::span<float>(flat));
    rt.world_comm.allreduce_sum(std::span<double>(sums));
  }
  const double divisor = std::max(1.0, sums[divisor_index]);
  size_t off = 0;
  for (size_t i = 0; i < opts.size(); ++i) {
    opts[i]->unflatten_grads(std::span<const float>(flat).subspan(off, sizes[i]), divisor);
    off += sizes[i];
  }
  return sums;
}

uint64_t stream_seed(int64_t seed, const char* what, int64_t a, int64_t b) {
  const std::string h = sha256_hex(std::string(what) + " " + std::to_string(seed) + " " + std::to_string(a) + " " + std::to_string(b));
  return std::stoull(h.substr(0, 16), nullptr, 16);
}

std::vector<float> tensor_values(const at::Tensor& t) {
  const at::Tensor c = t.detach().to(at::kFloat).cpu().contiguous();
  return {c.data_ptr<float>(), c.data_ptr<float>() + c.numel()};
}

void save_train_state(const fs::path& file, const TrainState& s, const std::string& hash) {
  std::vector<at::Tensor> keep;
  std::vector<TensorBytes> tensors;
  keep.reserve(s.tensors.size());
  for (const auto& [name, t] : s.tensors) {
    keep.push_back(t.detach().to(at::kFloat).cpu().contiguous());
    tensors.push_back({name, DType::F32, keep.back().sizes().vec(),
                       {reinterpret_cast<const std::byte*>(keep.back().data_ptr()), static_cast<size_t>(keep.back().nbytes())}});
  }
  const fs::path tmp = file.string() + ".tmp";
  safetensors_write(tmp, tensors, {{"config_sha256", hash}, {"progress", s.progress.dump()}});
  fs::rename(tmp, file);
}

std::optional<TrainState> load_train_state(const fs::path& file, const std::string& hash, Runtime& rt) {
  std::optional<TrainState> s;
  if (fs::exists(file)) {
    try {
      SafetensorsFile f(file);
      const auto& meta = f.header().metadata;
      if (meta.count("config_sha256") && meta.at("config_sha256") == hash && meta.count("progress")) {
        TrainState st;
        st.progress = json_parse_strict(meta.at("progress"), file.string());
        for (const TensorInfo& info : f.header().tensors) st.tensors.emplace_back(info.name, tensor_from_safetensors(info, f.bytes(info)).clone());
        s = std::move(st);
      } else {
        spdlog::warn("basevec: {} was saved for another task or config; starting over", file.string());
      }
    } catch (const std::exception& e) {
      spdlog::warn("basevec: cannot resume from {} ({}); starting over", file.string(), e.what());
    }
  }
  const int64_t have = s ? 1 : 0;
  if (rt.world_comm.allreduce_min(have) != rt.world_comm.allreduce_max(have)) throw std::runtime_error("basevec: ranks disagree about the resumable state in " + file.string());
  return s;
}

// --- the task ------------------------------------------------------------------------------------

bool run_basevec_task(const Config& cfg, Runtime& rt, const BasevecPoint& p, BasevecData& data) {
  const fs::path file = artifacts::BASEVEC_SWEEP.task(cfg, p.key);
  const std::string hash = basevec_task_hash(cfg, p, data.records_hash);
  StageOutput out(cfg, rt, "sweep run", file, hash);
  if (out.complete({artifacts::basevec_vectors_file(file)})) return false;
  if (cfg.basevec.layer >= data.base.config.n_layer)
    throw InputError("<config>", "basevec.layer", std::to_string(cfg.basevec.layer) + " is not a layer of the base model (" + std::to_string(data.base.config.n_layer) + ")");
  out.begin();
  artifacts::BasevecTask t;
  t.task = p.task, t.key = p.key, t.point = p.to_json().dump(), t.method = p.method, t.seed = p.seed;
  t.layer = cfg.basevec.layer, t.hook = "blocks." + std::to_string(t.layer) + ".hook_resid_post";
  t.c = data.records.n_categories, t.d = data.base.config.d_model;
  t.records_file = data.records_file.string(), t.records_hash = data.records_hash, t.base_model = cfg.basevec.base_model;
  const fs::path state = file.string() + ".state.safetensors";
  {
    ResumablePhase resumable;
    if (p.method == "correction") train_correction(cfg, rt, p, data, state, hash, t);
    else train_linear(cfg, rt, p, data, state, hash, t);
  }
  on_rank0(rt, [&] {
    t.norms.clear();
    for (int64_t c = 0; c < t.c; ++c) {
      double s = 0;
      for (int64_t j = 0; j < t.d; ++j) s += static_cast<double>(t.vectors[static_cast<size_t>(c * t.d + j)]) * t.vectors[static_cast<size_t>(c * t.d + j)];
      t.norms.push_back(static_cast<float>(std::sqrt(s)));
    }
    const json prov = artifacts::stage_provenance(cfg, rt, "sweep run", hash, cfg.basevec.base_model);
    const fs::path vfile = artifacts::basevec_vectors_file(file);
    artifacts::write_basevec_task(out.partial(), vfile, t, prov);
    out.commit_h5(prov, artifacts::BASEVEC_TASK, artifacts::basevec_task_datasets(t), {.provenance_json = false, .resolved_config = false, .certified = {vfile}});
    fs::remove(state);
    spdlog::info("basevec: task {} ({} seed {}) written to {}: {}", p.task, p.method, p.seed, file.string(), t.metrics.dump());
  });
  return true;
}

}  // namespace ts::stages
