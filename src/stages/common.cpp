#include "stages/common.h"

#include <H5public.h>
#include <mpi.h>

#include <algorithm>
#include <fstream>

#include "core/error.h"
#include "core/log.h"
#include "core/provenance.h"
#include "core/sha256.h"
#include "dist/stop.h"
#include "toy/corpus.h"

#include "reasoning_tasks.inc"  // REASONING_TASKS_JSONL: configs/prompts/reasoning_tasks.jsonl, compiled in
#ifdef THINKSTEER_HAVE_NCCL
#include "dist/nccl.h"
#endif

namespace ts::stages {
namespace fs = std::filesystem;

namespace {

constexpr const char* BUILTIN = "builtin:";

// SHA-256 of a safetensors file's 8-byte length and JSON header (cheap; names, dtypes, shapes, offsets).
std::string safetensors_header_sha256(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  uint64_t n = 0;
  in.read(reinterpret_cast<char*>(&n), 8);
  if (!in || n > 100'000'000) return "unreadable";
  std::string head(8 + n, '\0');
  in.seekg(0);
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  return in ? sha256_hex(head) : "unreadable";
}

}  // namespace

std::vector<Prompt> load_prompts(const Config& cfg, const std::string& spans_field) {
  if (cfg.data.prompts.empty()) throw InputError("<config>", "data.prompts", "no prompts given (a JSONL file or builtin:toy-test)");
  if (cfg.data.prompts.rfind(BUILTIN, 0) != 0)
    return prompts_read_jsonl(cfg.data.prompts, cfg.data.prompt_field, cfg.data.id_field, cfg.data.answer_field, cfg.data.limit, spans_field);
  const std::string set = cfg.data.prompts.substr(std::string(BUILTIN).size());
  const std::string family = set.substr(0, set.find('-')), split = set.find('-') == std::string::npos ? "" : set.substr(set.find('-') + 1);
  if ((family != "toy" && family != "reasoning") || (split != "" && split != "train" && split != "test"))
    throw InputError("<config>", "data.prompts",
                     "unknown built-in set '" + cfg.data.prompts + "' (builtin:toy, builtin:reasoning, each also with -train or -test)");
  if (!spans_field.empty()) throw InputError("<config>", "collect.positions", "built-in prompt sets have no spans");
  std::vector<Prompt> all;
  if (family == "reasoning") {
    all = prompts_parse_jsonl(REASONING_TASKS_JSONL, "builtin:reasoning (configs/prompts/reasoning_tasks.jsonl)", "question", "id", "answer");
  } else {
    for (const ToyProblem& p : toy_corpus_generate(toy_corpus_options(cfg.toy))) all.push_back({p.id, p.question, p.answer, {}, p.template_name, p.split});
  }
  std::vector<Prompt> out;
  for (Prompt& p : all) {
    if (!split.empty() && p.split != split) continue;
    out.push_back(std::move(p));
    if (cfg.data.limit > 0 && static_cast<int64_t>(out.size()) >= cfg.data.limit) break;
  }
  if (out.empty()) throw InputError("<config>", "data.prompts", cfg.data.prompts + " is empty for this config");
  return out;
}

std::string prompts_identity(const Config& cfg) {
  if (cfg.data.prompts.rfind(BUILTIN, 0) == 0)
    return cfg.data.prompts + "\n" + config_to_ini(cfg, {"toy"}) + sha256_hex(std::string(REASONING_TASKS_JSONL));
  return sha256_file(cfg.data.prompts);
}

StageModel load_stage_model(const Config& cfg, const Runtime& rt) {
  if (cfg.model.path.empty()) throw InputError("<config>", "model.path", "no checkpoint directory given");
  StageModel m;
  m.dir = cfg.model.path;
  m.tokenizer = std::make_shared<const Tokenizer>(Tokenizer::from_file(m.dir / "tokenizer.json"));
  // Validate the whole inventory once (cheap, headers only), then map only this stage's tensors.
  const ModelConfig full = checkpoint_open(m.dir).config;
  if (rt.n_stages > full.n_layer)
    throw InputError("<config>", "parallel.pipeline_stages",
                     std::to_string(rt.n_stages) + " stages for a model with " + std::to_string(full.n_layer) + " layers");
  m.layers = rt.layers(full.n_layer);
  CheckpointFiles ck = checkpoint_open(m.dir, m.layers.begin, m.layers.end, rt.first_stage(), rt.last_stage());
  if (rt.rank == 0)
    for (const auto& name : ck.unexpected) spdlog::warn("checkpoint tensor {} is not used by the model", name);
  m.config = ck.config;
  LoadOptions load;
  load.device = rt.device;
  load.dtype = dtype_resolve(cfg.model.dtype, ck.config, rt.device);
  load.layer_begin = m.layers.begin;
  load.layer_end = m.layers.end;
  load.with_embed = rt.first_stage();
  load.with_head = rt.last_stage();
  m.dtype = load.dtype;
  m.model = std::make_unique<Transformer>(weights_load(ck, load));
  spdlog::info("model {}: layers [{}, {}) of {}{}{}, d_model {}, {} heads ({} kv), vocab {}: {:.1f} MB resident as {} on {}",
               m.dir.string(), m.layers.begin, m.layers.end, full.n_layer, rt.first_stage() ? " + embeddings" : "",
               rt.last_stage() ? " + head" : "", ck.config.d_model, ck.config.n_head, ck.config.n_kv_head, ck.config.n_vocab,
               static_cast<double>(m.model->weights().parameter_bytes) / 1e6, c10::toString(load.dtype), rt.device.str());

  m.eos_ids = ck.config.eos_token_ids;
  const fs::path gen_config = m.dir / "generation_config.json";
  if (fs::exists(gen_config)) {
    json g = json_read_file(gen_config);
    if (g.contains("eos_token_id") && !g["eos_token_id"].is_null()) m.eos_ids = json_token_ids(g, "eos_token_id", gen_config.string());
  }
  m.pad_id = ck.config.pad_token_id >= 0 ? ck.config.pad_token_id : (m.eos_ids.empty() ? 0 : m.eos_ids[0]);
  return m;
}

GenerateOptions generate_options(const Config& cfg, const StageModel& m) {
  GenerateOptions gen;
  gen.max_new_tokens = cfg.generate.max_new_tokens;
  gen.sampling = {cfg.generate.temperature, cfg.generate.top_p, cfg.generate.top_k};
  gen.seed = cfg.generate.seed;
  gen.eos_ids = m.eos_ids;
  gen.stop_strings = cfg.generate.stop;
  auto tok = m.tokenizer;
  gen.decode = [tok](std::span<const int32_t> ids) { return tok->decode(ids); };
  gen.pad_id = m.pad_id;
  return gen;
}

std::vector<std::pair<int64_t, int64_t>> generated_token_offsets(const Tokenizer& tok, const std::vector<int32_t>& ids, int64_t base) {
  // O(n): each piece is decoded from the last point where the text ended on a complete character;
  // a piece ending in U+FFFD ends inside a character.
  std::vector<std::pair<int64_t, int64_t>> out(ids.size());
  size_t clean = 0;
  int64_t clean_len = base, prev_end = base;
  bool prev_partial = false;
  for (size_t j = 0; j < ids.size(); ++j) {
    const std::string piece = tok.decode(std::span<const int32_t>(ids.data() + clean, j + 1 - clean));
    const bool partial = piece.size() >= 3 && piece.compare(piece.size() - 3, 3, "\xEF\xBF\xBD") == 0;
    const int64_t end = clean_len + utf8_length(piece);
    const int64_t begin = std::min(end, prev_partial ? prev_end - 1 : prev_end);  // a split character starts before
    out[j] = {begin, end};
    prev_end = end;
    prev_partial = partial;
    if (!partial) {
      clean = j + 1;
      clean_len = end;
    }
  }
  return out;
}

TokenSequence generation_sequence(const Tokenizer& tok, const std::string& prompt_text, const std::vector<int32_t>& generated) {
  TokenSequence s;
  Encoding e = tok.encode(prompt_text);
  s.ids = std::move(e.ids);
  s.offsets = std::move(e.offsets);
  s.n_prompt = static_cast<int64_t>(s.ids.size());
  s.prompt_chars = utf8_length(prompt_text);
  s.text = prompt_text + tok.decode(generated);
  const auto gen_offsets = generated_token_offsets(tok, generated, s.prompt_chars);
  s.ids.insert(s.ids.end(), generated.begin(), generated.end());
  s.offsets.insert(s.offsets.end(), gen_offsets.begin(), gen_offsets.end());
  return s;
}

// What identifies the checkpoint for the config hash: config.json, and each weight file's header,
// size and modification time (a retrained model at the same path is new work; hashing every weight
// would cost minutes on large models).
std::string checkpoint_identity(const fs::path& dir) {
  // Missing or unreadable files are left to the loader, which reports them with the field at fault.
  std::error_code ec;
  auto file_sha = [&](const char* name) { return fs::is_regular_file(dir / name, ec) ? sha256_file(dir / name) : std::string("absent"); };
  std::string id = std::string("config ") + file_sha("config.json") + "\ntokenizer " + file_sha("tokenizer.json") + "\n";
  std::vector<fs::path> shards;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().extension() == ".safetensors") shards.push_back(it->path());
  std::sort(shards.begin(), shards.end());
  for (const auto& p : shards)
    id += p.filename().string() + " " + std::to_string(fs::file_size(p, ec)) + " " +
          std::to_string(fs::last_write_time(p, ec).time_since_epoch().count()) + "\n";
  return id;
}

fs::path run_input(const std::string& given, const Config& cfg, const char* stage_dir, const char* file) {
  return given.empty() ? fs::path(cfg.run.dir) / stage_dir / file : fs::path(given);
}

ThinkingLength thinking_length(std::span<const int32_t> generated, std::optional<int32_t> think_close) {
  ThinkingLength t{static_cast<int64_t>(generated.size()), false};
  if (think_close)
    if (auto it = std::find(generated.begin(), generated.end(), *think_close); it != generated.end()) t = {it - generated.begin(), true};
  return t;
}

std::string output_config_hash(const Config& cfg, const std::vector<std::string>& sections, const std::string& inputs) {
  return sha256_hex(config_to_ini(cfg, sections) + "\n" + inputs + "\n" + git_commit());
}

json stage_provenance(const Config& cfg, const Runtime& rt, const std::string& stage, const std::string& config_hash,
                      const fs::path& model_dir) {
  json prov = provenance_json(cfg, config_hash);
  prov["stage"] = stage;
  prov["world_size"] = rt.world;
  prov["pipeline_stages"] = rt.n_stages;
  prov["data_parallel_replicas"] = rt.n_replicas;
  prov["device"] = rt.device.str();
  if (!model_dir.empty()) {
    prov["model_path"] = fs::absolute(model_dir).string();
    prov["model_config_sha256"] = fs::exists(model_dir / "config.json") ? sha256_file(model_dir / "config.json") : "absent";
    prov["tokenizer_sha256"] = sha256_file(model_dir / "tokenizer.json");
    json shards = json::object();
    for (const auto& entry : fs::directory_iterator(model_dir))
      if (entry.path().extension() == ".safetensors")
        shards[entry.path().filename().string()] = {{"bytes", static_cast<int64_t>(entry.file_size())},
                                                    {"header_sha256", safetensors_header_sha256(entry.path())}};
    prov["checkpoint_shards"] = shards;
  }
  prov["prompts"] = cfg.data.prompts;
  if (cfg.data.prompts.rfind(BUILTIN, 0) != 0 && fs::exists(cfg.data.prompts)) prov["prompts_sha256"] = sha256_file(cfg.data.prompts);
  char mpi_version[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(mpi_version, &len);
  std::string mpi(mpi_version, static_cast<size_t>(len));
  if (auto nl = mpi.find_first_of(",\n"); nl != std::string::npos) mpi.resize(nl);
  unsigned maj = 0, min = 0, rel = 0;
  H5get_libversion(&maj, &min, &rel);
  prov["versions"]["mpi"] = mpi;
  prov["versions"]["hdf5"] = std::to_string(maj) + "." + std::to_string(min) + "." + std::to_string(rel);
#ifdef THINKSTEER_HAVE_NCCL
  prov["versions"]["nccl"] = NcclComm::version();
#endif
  for (const char* var : {"SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_RESTART_COUNT", "SLURM_JOB_NODELIST"})
    if (const char* v = std::getenv(var)) prov["slurm"][var] = v;
  return prov;
}

void write_h5_provenance(h5::SerialFile& f, const json& prov, const std::string& format) {
  f.set_attr("/", "format", format);
  f.set_attr("/", "schema_version", int64_t{1});
  f.set_attr("/", "stage", prov.value("stage", ""));
  f.set_attr("/", "config", prov.value("config", ""));
  f.set_attr("/", "config_sha256", prov.value("config_sha256", ""));
  f.set_attr("/", "git_commit", prov.value("git_commit", ""));
  f.set_attr("/", "thinksteer_version", prov.value("thinksteer_version", ""));
  f.set_attr("/", "created_utc", prov.value("created_utc", ""));
  f.set_attr("/", "world_size", prov.value("world_size", int64_t{1}));
  f.set_attr("/", "pipeline_stages", prov.value("pipeline_stages", int64_t{1}));
  f.set_attr("/", "seed", static_cast<int64_t>(prov.value("seed", uint64_t{0})));
  f.set_attr("/", "model_path", prov.value("model_path", ""));
  f.set_attr("/", "model_config_sha256", prov.value("model_config_sha256", ""));
  f.set_attr("/", "provenance", prov.dump());
}

void run_batches(Runtime& rt, int64_t my_batches, const BatchLoop& loop) {
  const int64_t rounds = rt.world_comm.allreduce_max(my_batches);
  Progress progress(loop.what, rounds, loop.progress_seconds);
  MPI_Request pending = MPI_REQUEST_NULL;
  int64_t vote[2] = {0, 0}, result[2] = {0, 0};  // {stop requested, bytes buffered}: MAX over ranks
  auto finish_vote = [&] {
    if (pending != MPI_REQUEST_NULL) mpi::check(MPI_Wait(&pending, MPI_STATUS_IGNORE), "MPI_Wait(batch vote)");
  };
  for (int64_t b = 0; b < rounds; ++b) {
    if (b < my_batches) loop.work(b);
    fault_point("batch", rt.rank);
    if (pending != MPI_REQUEST_NULL) {
      finish_vote();  // the previous round's vote: the same on every rank
      if (result[0] > 0) {
        spdlog::warn("{}: stop requested ({}); stopping after round {} of {}", loop.what, result[0] == 2 ? "SIGTERM" : "SIGUSR1 or STOP file",
                     b + 1, rounds);
        loop.save();
        throw StopRequested();
      }
      if (loop.flush && result[1] >= loop.flush_bytes) loop.flush();
    }
    vote[0] = stop_local();
    vote[1] = loop.pending_bytes ? loop.pending_bytes() : 0;
    mpi::check(MPI_Iallreduce(vote, result, 2, MPI_INT64_T, MPI_MAX, rt.world_comm.get(), &pending), "MPI_Iallreduce(batch vote)");
    progress.update(b + 1, loop.detail ? loop.detail() : "");
  }
  finish_vote();
  if (loop.flush) loop.flush();
  progress.finish(loop.detail ? loop.detail() : "");
}

void on_rank0(Runtime& rt, const std::function<void()>& work) {
  if (rt.rank == 0) work();
  rt.world_comm.barrier();
}

std::vector<h5::RowRange> row_ranges(const std::vector<int64_t>& rows) {
  std::vector<h5::RowRange> out;
  for (int64_t r : rows) {
    if (!out.empty() && out.back().begin + out.back().count == r) ++out.back().count;
    else out.push_back({r, 1});
  }
  return out;
}

}  // namespace ts::stages
