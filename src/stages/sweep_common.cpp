#include "stages/sweep_common.h"

#include "core/error.h"
#include "core/sha256.h"
#include "stages/common.h"

namespace ts::stages {
namespace fs = std::filesystem;

fs::path sweep_dir(const Config& cfg) { return fs::path(cfg.run.dir) / "sweep"; }

fs::path task_file(const Config& cfg, const SweepPoint& p) { return sweep_dir(cfg) / "tasks" / (p.key + ".h5"); }

fs::path steer_vectors_path(const Config& cfg) {
  return run_input(cfg.steer.vectors, cfg, "vectors", "vectors.h5");
}

std::unique_ptr<Annotator> make_sweep_annotator(const Config& cfg) {
  if (cfg.annotate.annotator == "llm" && cfg.annotate.llm_endpoint.empty())
    throw InputError("[annotate]", "annotate.llm_endpoint", "steer measures behaviours with the lexicon, toy, or an llm annotator on an endpoint (not a local checkpoint)");
  return make_annotator(cfg);
}

TaskInputs task_inputs(const Config& cfg, const Annotator& annotator) {
  TaskInputs in;
  in.vectors_file = steer_vectors_path(cfg).string();
  if (!fs::exists(in.vectors_file))
    throw InputError(in.vectors_file, "steer.vectors", "no vectors file (run `thinksteer vectors` first, or set steer.vectors)");
  in.vectors_sha = sha256_file(in.vectors_file);
  in.checkpoint_id = checkpoint_identity(cfg.model.path);
  in.annotator_identity = annotator.identity();
  return in;
}

std::string task_hash(const Config& cfg, const SweepPoint& p, const TaskInputs& in) {
  Config c = cfg;
  c.data.prompts = p.dataset;
  json point = p.to_json();
  point.erase("task");
  return output_config_hash(c, {"model", "data", "generate", "annotate"},
                            point.dump() + "\nsave_text=" + (cfg.steer.save_text ? "1" : "0") + "\nvectors=" + in.vectors_sha +
                                "\nprompts=" + prompts_identity(c) + "\ncheckpoint=" + in.checkpoint_id + "\nannotator=" + in.annotator_identity);
}

}  // namespace ts::stages
