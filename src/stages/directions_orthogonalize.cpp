// Stage `directions orthogonalize`: directional ablation as a weight edit (docs/algorithms.md §D;
// directions/orthogonalize.h): the unit direction projected out of the embedding and of every o_proj and
// down_proj (and their biases), written as an HF checkpoint; with tied embeddings the export unties
// lm_head so the unembedding stays the original.
//   in : model.path; directions.direction (a vectors file, e.g. directions/contrast.h5), directions.vector,
//        directions.layer (which of its vectors)
//   out: directions.out (default <run.dir>/directions/orthogonalized/: the checkpoint with orthogonalize.json,
//        through model/checkpoint_edit.h), <run.dir>/directions/orthogonalize.json (the record with the files'
//        hashes) and its .done marker
// The same ablation by hooks is the intervention sweep's mode `direction` (sweep.kind = intervene); a
// baselines-only steering sweep on the exported checkpoint measures accuracy and behaviour fractions.
#include <ATen/ATen.h>
#include <fmt/format.h>

#include <filesystem>

#include "artifacts/directions.h"
#include "core/atomic_file.h"
#include "core/done_marker.h"
#include "core/error.h"
#include "core/log.h"
#include "directions/orthogonalize.h"
#include "model/checkpoint_edit.h"
#include "model/checkpoint_files.h"
#include "model/checkpoint_identity.h"
#include "stages/directions_inputs.h"
#include "stages/stage.h"

namespace ts::stages::directions_orthogonalize {
namespace fs = std::filesystem;

void run(const Config& cfg, Runtime& rt) {
  if (cfg.model.path.empty()) throw InputError("<config>", "model.path", "no checkpoint directory given");
  const Config::Directions& d = cfg.directions;
  const fs::path out_dir = d.out.empty() ? artifacts::ORTHOGONALIZED.in(cfg) : fs::path(d.out);
  const CheckpointFiles ck = checkpoint_open(cfg.model.path);
  const ChosenDirection dir = read_direction(cfg, ck.config.d_model);
  const std::string hash = artifacts::output_config_hash(cfg, {"model"}, fmt::format("orthogonalize\n{}\n{} {}\n{}\n{}\n{}", dir.sha256, dir.name, dir.layer,
                                                                                    checkpoint_identity(cfg.model.path), option_text(d.dtype),
                                                                                    fs::absolute(out_dir).string()));
  StageOutput out(cfg, rt, "directions orthogonalize", artifacts::ORTHOGONALIZE_JSON.in(cfg), hash);
  if (out.complete({out_dir / artifacts::ORTHOGONALIZE_MARKER})) return;
  check_edited_destination(cfg.model.path, out_dir, artifacts::ORTHOGONALIZE_MARKER, "directions.out");
  out.begin();
  if (rt.rank == 0) {
    const json prov = out.provenance(cfg.model.path);
    CheckpointEdit edit = directions::orthogonalize(ck, dir.vector);
    edit.float32 = d.dtype == EditDType::float32;
    const at::Tensor unit = (dir.vector / dir.vector.norm()).contiguous();
    json record = {{"format", "thinksteer.orthogonalize"},
                   {"direction", {{"file", fs::absolute(dir.file).string()}, {"sha256", dir.sha256}, {"name", dir.name}, {"layer", dir.layer},
                                  {"hook_measured", dir.hook_measured}}},
                   {"source", fs::absolute(cfg.model.path).string()},
                   {"out", fs::absolute(out_dir).string()},
                   {"dtype", option_text(d.dtype)},
                   {"untied_lm_head", ck.config.tie_word_embeddings},
                   {"provenance", prov}};
    json marker = record;
    marker["direction"]["unit"] = std::vector<float>(unit.data_ptr<float>(), unit.data_ptr<float>() + unit.numel());
    edit.marker = artifacts::ORTHOGONALIZE_MARKER;
    edit.marker_content = marker.dump(1) + "\n";
    edit.metadata["thinksteer"] = "directions orthogonalize";
    edit.files["provenance.json"] = prov.dump(2) + "\n";
    write_edited_checkpoint(cfg.model.path, out_dir, edit, "directions.out");
    json files = json::object();
    for (const auto& e : fs::directory_iterator(out_dir)) files[e.path().filename().string()] = content_hash(e.path()).second;
    record["files"] = files;
    write_file_atomic(out.path(), record.dump(2) + "\n");
    out.commit_file(prov, {.provenance_json = false, .resolved_config = true, .certified = {}});
    spdlog::info("directions orthogonalize: {} (layer {}) projected out of the embedding, {} o_proj and down_proj{}; wrote {}", dir.name, dir.layer,
                 ck.config.n_layer, ck.config.tie_word_embeddings ? " (lm_head untied)" : "", out_dir.string());
  }
  rt.world_comm.barrier();
}

}  // namespace ts::stages::directions_orthogonalize
