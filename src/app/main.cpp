// thinksteer: one executable, a subcommand per stage. main() only initialises MPI, parses the Config,
// builds the Runtime and dispatches. Exit codes: 0 done (or already complete), 2 bad input, 3 incomplete
// (reduce with sweep tasks missing), 75
// stopped early on request with progress saved (rerun continues), 1 any other failure. With more than
// one rank, a failure on one rank is logged there and ends every rank (MPI_Abort), so no rank waits
// in a collective for a peer that is gone.
#include <cstring>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "dist/mpi.h"
#include "dist/runtime.h"
#include "dist/stop.h"
#include "stages/stages.h"

namespace {

struct Subcommand {
  void (*run)(const ts::Config&, ts::Runtime&);
  const char* help;
};

const std::map<std::string, Subcommand>& subcommands() {
  static const std::map<std::string, Subcommand> m = {
      {"generate", {ts::stages::generate::run, "generate thinking traces for a prompt dataset"}},
      {"collect", {ts::stages::collect::run, "activations at named hook points, written to parallel HDF5"}},
      {"annotate", {ts::stages::annotate::run, "behaviour spans (label, characters, tokens) of traces, written to parallel HDF5"}},
      {"vectors", {ts::stages::vectors::run, "difference-of-means steering vectors per behaviour and layer (HDF5, safetensors, GGUF)"}},
      {"attribute", {ts::stages::attribute::run, "attribution patching (ALGORITHMS §A.7): effect of each vector per layer, layer selection"}},
      {"inspect", {ts::stages::inspect::run, "validate and describe a checkpoint directory"}},
      {"steer", {ts::stages::steer::run, "a steering sweep on these ranks: plan, every task (skipping finished ones), reduce"}},
      {"sweep plan", {ts::stages::sweep_plan::run, "write the sweep's manifest (one row per Slurm array task); prints --array=..."}},
      {"sweep run", {ts::stages::sweep_run::run, "run one manifest row (--task-id N, or $SLURM_ARRAY_TASK_ID): steered generation, measurements"}},
      {"reduce", {ts::stages::reduce::run, "gather a sweep's finished tasks into summary.h5 + summary.csv; lists missing tasks"}},
      {"toy corpus", {ts::stages::toy_corpus::run, "planted-truth toy corpus: word problems with labelled traces"}},
      {"toy tokenizer", {ts::stages::toy_tokenizer::run, "byte-level BPE tokenizer (HF tokenizer.json) trained on the toy corpus"}},
      {"toy eval", {ts::stages::toy_eval::run, "toy model traces (generate/generations.jsonl) against the corpus: accuracy, behaviour shares"}},
      {"toy train", {ts::stages::toy_train::run, "train a small Qwen2 model on the toy corpus (data parallel over ranks), write an HF checkpoint"}},
  };
  return m;
}

// Two-word subcommands ("toy corpus") share their first word; `thinksteer toy --help` lists them.
void group_usage(std::ostream& out, const std::string& group) {
  out << "usage: thinksteer " << group << " <subcommand> [--config FILE] [--section.key value ...]\n\nsubcommands:\n";
  for (const auto& [name, sub] : subcommands())
    if (name.rfind(group + " ", 0) == 0) out << "  " << name << std::string(name.size() < 15 ? 15 - name.size() : 1, ' ') << sub.help << "\n";
  out << "\n`thinksteer " << group << " <subcommand> --help` lists its options.\n";
}

void usage(std::ostream& out) {
  out << "usage: thinksteer <subcommand> [--config FILE] [--section.key value ...]\n\nsubcommands:\n";
  for (const auto& [name, sub] : subcommands())
    out << "  " << name << std::string(name.size() < 15 ? 15 - name.size() : 1, ' ') << sub.help << "\n";
  out << "\n`thinksteer <subcommand> --help` lists its options.\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    usage(argc < 2 ? std::cerr : std::cout);
    return argc < 2 ? ts::EXIT_BAD_INPUT : 0;
  }
  std::string name = argv[1];
  int first = 1;  // argv index of the subcommand's last word (config_parse skips it like argv[0])
  if (name == "toy" || name == "sweep") {
    if (argc < 3 || std::strcmp(argv[2], "--help") == 0 || std::strcmp(argv[2], "-h") == 0) {
      group_usage(argc < 3 ? std::cerr : std::cout, name);
      return argc < 3 ? ts::EXIT_BAD_INPUT : 0;
    }
    name.append(" ").append(argv[2]);
    first = 2;
  }
  auto it = subcommands().find(name);
  ts::mpi::Env mpi_env(&argc, &argv);
  int rank = 0, world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  ts::log_init("info", rank, world);
  if (it == subcommands().end()) {
    spdlog::error("<command line>: subcommand: unknown subcommand '{}'", name);
    if (rank == 0) usage(std::cerr);
    return ts::EXIT_BAD_INPUT;
  }
  // A failure on one rank ends them all; a lone rank just returns its code.
  auto fail = [world](int code) {
    if (world > 1) ts::mpi::abort_world(code);
    return code;
  };
  try {
    ts::Config cfg;
    // `sweep run --task-id N` is the Slurm-facing spelling of --sweep.task_id N.
    std::vector<std::string> args(argv + first, argv + argc);
    for (auto& a : args)
      if (a == "--task-id") a = "--sweep.task_id";
      else if (a.rfind("--task-id=", 0) == 0) a = "--sweep.task_id=" + a.substr(10);
    std::vector<const char*> arg_ptrs;
    for (const auto& a : args) arg_ptrs.push_back(a.c_str());
    if (!ts::config_parse(static_cast<int>(arg_ptrs.size()), arg_ptrs.data(), name, cfg)) return 0;
    spdlog::set_level(spdlog::level::from_str(cfg.log.level));
    ts::stop_install(cfg.run.dir, cfg.parallel.term_grace_seconds);
    ts::Runtime rt = ts::runtime_init(cfg);
    spdlog::debug("resolved config:\n{}", ts::config_to_ini(cfg));
    it->second.run(cfg, rt);
    return 0;
  } catch (const ts::StopRequested& e) {
    spdlog::warn("{}: {}", name, e.what());  // every rank stops at the same batch boundary
    return ts::EXIT_RESUMABLE;
  } catch (const ts::IncompleteError& e) {
    spdlog::error("{}", ts::error_one_line(e.what()));
    return ts::EXIT_INCOMPLETE;  // every rank reaches it (reduce decides on rank 0 and broadcasts)
  } catch (const ts::InputError& e) {
    spdlog::error("{}", ts::error_one_line(e.what()));
    return fail(ts::EXIT_BAD_INPUT);
  } catch (const std::exception& e) {
    spdlog::error("{} failed: {}", name, ts::error_one_line(e.what()));
    return fail(1);
  }
}
