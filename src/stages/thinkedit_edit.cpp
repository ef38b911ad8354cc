// Stage `thinkedit edit`: the ThinkEdit weight edit (docs/algorithms.md §C.4, §C.5; docs/thinkedit.md),
// written as an HF checkpoint that transformers (and thinksteer) load.
//   in : model.path (the source checkpoint), thinkedit.direction (default <run.dir>/thinkedit/attn.h5: the
//        length direction measured at resid_mid, meant for attn_out), thinkedit.heads = auto with
//        thinkedit.heads_file (default <run.dir>/thinkedit/heads.h5) and heads_k or heads_share, or an
//        explicit list of layer.head entries
//   out: thinkedit.out (default <run.dir>/thinkedit/edited/): the checkpoint (model/checkpoint_edit.h: every
//        tensor but the edited o_proj weights byte for byte, or all in float32 with thinkedit.dtype =
//        float32), with thinkedit.json (the heads, their scores, the unit direction of each edited layer,
//        provenance); <run.dir>/thinkedit/edit.json (the same record and the checkpoint's file hashes) and
//        its .done marker
// The edit: for each selected (l, h), o_proj.weight[:, h E:(h+1) E] <- (I - weight v v^T) o_proj.weight[:, ...],
// v = direction[l] / |direction[l]| (fp32; thinkedit/thinkedit.h), the same column block a hook on that
// head's output would project (tests/thinkedit).
#include <ATen/ATen.h>

#include <filesystem>
#include <map>

#include "artifacts/thinkedit.h"
#include "core/atomic_file.h"
#include "core/done_marker.h"
#include "core/error.h"
#include "core/log.h"
#include "core/sha256.h"
#include "io/vectors.h"
#include "model/checkpoint_edit.h"
#include "model/checkpoint_files.h"
#include "model/checkpoint_identity.h"
#include "stages/stage.h"
#include "thinkedit/thinkedit.h"

namespace ts::stages::thinkedit_edit {
namespace fs = std::filesystem;
using thinkedit::Head;

namespace {

constexpr const char* EDIT_FORMAT = "thinksteer.thinkedit_edit";

struct Setup {
  fs::path direction_file, heads_file, out_dir;
  std::string direction_sha;
  VectorSet direction;
  ModelConfig model;
  std::vector<Head> heads;
  std::vector<double> scores;  // per head, when the heads come from the scores file
};

// The direction must be the attn one (resid_mid -> attn_out) of this checkpoint.
void check_direction(const Config& cfg, Setup& in) {
  const std::string file = in.direction_file.string();
  const VectorSet& d = in.direction;
  if (d.hook_measured != "blocks.{l}.hook_resid_mid" || d.hook_applied != "blocks.{l}.hook_attn_out")
    throw InputError(file, "hook_applied", "is a direction measured at " + d.hook_measured + " for " + d.hook_applied +
                                               "; the edit projects the attn direction (resid_mid, for attn_out: <run.dir>/thinkedit/attn.h5)");
  if (!d.name_index(artifacts::LENGTH_DIRECTION)) throw InputError(file, "names", "has no direction named 'length' (not a `thinkedit direction` output)");
  if (d.d_model != in.model.d_model)
    throw InputError(file, "d_model", "the direction has d_model " + std::to_string(d.d_model) + ", the model " + std::to_string(in.model.d_model));
  const json prov = d.provenance_json.empty() ? json::object() : json::parse(d.provenance_json, nullptr, false);
  const std::string measured_on = prov.is_object() ? prov.value("model_identity", "") : "";
  if (!measured_on.empty() && measured_on != checkpoint_identity(cfg.model.path))
    throw InputError(file, "model", "was measured on another checkpoint (" + d.model + ") than model.path " + cfg.model.path);
}

// Top k of the scores file, or the explicit list.
void choose_heads(const Config& cfg, Setup& in) {
  const int64_t L = in.model.n_layer, H = in.model.n_head, total = L * H;
  const auto& list = cfg.thinkedit.heads;
  if (list.size() == 1 && list[0] == "auto") {
    const int64_t k = cfg.thinkedit.heads_k > 0 ? cfg.thinkedit.heads_k : std::max<int64_t>(1, std::llround(cfg.thinkedit.heads_share * static_cast<double>(total)));
    if (k > total) throw InputError("<config>", "thinkedit.heads_k", "k = " + std::to_string(k) + " is more than the model's " + std::to_string(total) +
                                                                     " heads (" + std::to_string(L) + " layers x " + std::to_string(H) + ")");
    const artifacts::HeadScores s = artifacts::read_head_scores(in.heads_file, "thinkedit.heads_file");
    if (s.layers != L || s.heads != H)
      throw InputError(in.heads_file.string(), "/scores", "scores [" + std::to_string(s.layers) + ", " + std::to_string(s.heads) + "] are for another model (model.path has " +
                                                              std::to_string(L) + " layers x " + std::to_string(H) + " heads)");
    if (s.direction_sha256 != in.direction_sha)
      throw InputError(in.heads_file.string(), "direction_sha256", "the heads were scored against another direction than " + in.direction_file.string() +
                                                                       " (rerun `thinksteer thinkedit direction`)");
    for (int64_t r = 0; r < k; ++r) {
      const Head h{s.ranking[static_cast<size_t>(2 * r)], s.ranking[static_cast<size_t>(2 * r + 1)]};
      in.heads.push_back(h);
      in.scores.push_back(s.scores[static_cast<size_t>(h.layer * H + h.head)]);
    }
    return;
  }
  for (const std::string& e : list) {
    const size_t dot = e.find('.');
    Head h;
    try {
      size_t used = 0, used2 = 0;
      h.layer = std::stoll(e.substr(0, dot), &used);
      h.head = dot == std::string::npos ? -1 : std::stoll(e.substr(dot + 1), &used2);
      if (dot == std::string::npos || used != dot || used2 != e.size() - dot - 1) throw std::invalid_argument(e);
    } catch (const std::exception&) {
      throw InputError("<config>", "thinkedit.heads", "'" + e + "' is not layer.head (e.g. 21.2) or auto");
    }
    if (h.layer < 0 || h.layer >= L || h.head < 0 || h.head >= H)
      throw InputError("<config>", "thinkedit.heads", "head " + e + " is outside the model's " + std::to_string(L) + " layers x " + std::to_string(H) + " heads");
    if (std::find(in.heads.begin(), in.heads.end(), h) != in.heads.end()) throw InputError("<config>", "thinkedit.heads", "head " + e + " is listed twice");
    in.heads.push_back(h);
  }
}

// The edited o_proj weights, per layer with a selected head.
std::map<int64_t, at::Tensor> edit_layers(const Config& cfg, const Setup& in, json& unit) {
  std::map<int64_t, std::vector<int64_t>> by_layer;
  for (const Head& h : in.heads) by_layer[h.layer].push_back(h.head);
  std::map<int64_t, at::Tensor> out;
  const CheckpointFiles ck = checkpoint_open(cfg.model.path);
  const size_t name = *in.direction.name_index(artifacts::LENGTH_DIRECTION);
  for (const auto& [l, heads] : by_layer) {
    const auto li = in.direction.layer_index(l);
    if (!li) throw InputError(in.direction_file.string(), "layers", "holds no direction at layer " + std::to_string(l) + " (a selected head's layer)");
    const at::Tensor v = at::from_blob(const_cast<float*>(in.direction.vector(name, *li)), {in.direction.d_model}, at::kFloat).clone();
    if (v.norm().item<double>() == 0) throw InputError(in.direction_file.string(), "values[length]", "the direction is zero at layer " + std::to_string(l));
    const std::string tensor = "model.layers." + std::to_string(l) + ".self_attn.o_proj.weight";
    out[l] = thinkedit::project_out_heads(checkpoint_tensor_f32(ck, tensor), v, heads, in.model.d_head, cfg.thinkedit.weight);
    const at::Tensor u = (v / v.norm()).contiguous();
    unit[std::to_string(l)] = std::vector<float>(u.data_ptr<float>(), u.data_ptr<float>() + u.numel());
  }
  return out;
}

// What the checkpoint's thinkedit.json and edit.json share (each adds its own "direction" entry).
json edit_record(const Config& cfg, const Setup& in, const json& prov) {
  json heads = json::array();
  for (const Head& h : in.heads) heads.push_back({h.layer, h.head});
  return {{"format", EDIT_FORMAT},
          {"heads", heads},
          {"scores", in.scores},
          {"k", in.heads.size()},
          {"n_heads_total", in.model.n_layer * in.model.n_head},
          {"source", fs::absolute(cfg.model.path).string()},
          {"out", fs::absolute(in.out_dir).string()},
          {"dtype", option_text(cfg.thinkedit.dtype)},
          {"weight", cfg.thinkedit.weight},
          {"provenance", prov}};
}

// Rank 0: the checkpoint, then edit.json and its marker.
void write_edit(const Config& cfg, StageOutput& out, const Setup& in) {
  const json prov = out.provenance(cfg.model.path);
  json unit = json::object();
  CheckpointEdit edit;
  for (auto& [l, w] : edit_layers(cfg, in, unit)) edit.replace["model.layers." + std::to_string(l) + ".self_attn.o_proj.weight"] = w;
  edit.float32 = cfg.thinkedit.dtype == EditDType::float32;
  json record = edit_record(cfg, in, prov);
  const json direction = {{"file", fs::absolute(in.direction_file).string()}, {"sha256", in.direction_sha}};
  json marker = record;  // the checkpoint's record also holds the hooks and each edited layer's unit direction
  marker["direction"] = direction;
  marker["direction"].update({{"hook_measured", in.direction.hook_measured}, {"hook_applied", in.direction.hook_applied}, {"unit", unit}});
  edit.marker = artifacts::THINKEDIT_MARKER;
  edit.marker_content = marker.dump(1) + "\n";
  edit.metadata["thinksteer"] = "thinkedit edit";
  edit.files["provenance.json"] = prov.dump(2) + "\n";  // this edit's, not the source's
  write_edited_checkpoint(cfg.model.path, in.out_dir, edit, "thinkedit.out");
  json files = json::object();
  for (const auto& e : fs::directory_iterator(in.out_dir)) files[e.path().filename().string()] = content_hash(e.path()).second;
  record["files"] = files;
  record["direction"] = direction;
  write_file_atomic(out.path(), record.dump(2) + "\n");
  out.commit_file(prov, {.provenance_json = false, .resolved_config = true, .certified = {}});
  std::string list;
  for (const Head& h : in.heads) list += fmt::format("{}{}.{}", list.empty() ? "" : ",", h.layer, h.head);
  spdlog::info("thinkedit edit: {} of {} heads edited ({}), {} written ({})", in.heads.size(), in.model.n_layer * in.model.n_head, list,
               in.out_dir.string(), option_text(cfg.thinkedit.dtype));
}

}  // namespace

void run(const Config& cfg, Runtime& rt) {
  if (cfg.model.path.empty()) throw InputError("<config>", "model.path", "no checkpoint directory given");
  Setup in;
  in.direction_file = artifacts::input_path(cfg.thinkedit.direction, cfg, artifacts::THINKEDIT_ATTN_H5);
  in.heads_file = artifacts::input_path(cfg.thinkedit.heads_file, cfg, artifacts::THINKEDIT_HEADS_H5);
  in.out_dir = cfg.thinkedit.out.empty() ? artifacts::THINKEDIT_EDITED.in(cfg) : fs::path(cfg.thinkedit.out);
  if (!fs::is_regular_file(in.direction_file))
    throw InputError(in.direction_file.string(), "thinkedit.direction", "no direction file (run `thinksteer thinkedit direction` first, or set thinkedit.direction)");
  in.direction_sha = sha256_file(in.direction_file);
  const bool automatic = cfg.thinkedit.heads.size() == 1 && cfg.thinkedit.heads[0] == "auto";
  const std::string heads_sha = automatic && fs::is_regular_file(in.heads_file) ? sha256_file(in.heads_file) : "";
  const Config::ThinkEdit& e = cfg.thinkedit;
  std::string spec;
  for (const auto& h : e.heads) spec += h + ",";
  const std::string hash = artifacts::output_config_hash(
      cfg, {"model"}, fmt::format("{}\n{}\n{}\n{} {} {} {} {} {}", in.direction_sha, heads_sha, checkpoint_identity(cfg.model.path), spec, e.heads_k,
                                  e.heads_share, e.weight, option_text(e.dtype), fs::absolute(in.out_dir).string()));
  StageOutput out(cfg, rt, "thinkedit edit", artifacts::THINKEDIT_EDIT_JSON.in(cfg), hash);
  if (out.complete({in.out_dir / artifacts::THINKEDIT_MARKER})) return;
  in.direction = vectors_read_h5(in.direction_file);
  artifacts::verify_committed(in.direction_file, "thinkedit.direction");
  in.model = checkpoint_open(cfg.model.path).config;
  check_direction(cfg, in);
  choose_heads(cfg, in);
  check_edited_destination(cfg.model.path, in.out_dir, artifacts::THINKEDIT_MARKER, "thinkedit.out");
  out.begin();
  if (rt.rank == 0) write_edit(cfg, out, in);
  rt.world_comm.barrier();
}

}  // namespace ts::stages::thinkedit_edit
