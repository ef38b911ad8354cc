// thinksteer: one executable, a subcommand per stage. main() only initialises MPI, parses the Config,
// builds the Runtime and dispatches. Exit codes: 0 done (or already complete), 2 bad input, 3 incomplete
// (reduce with sweep tasks missing), 75
// stopped early on request with progress saved (rerun continues), 1 any other failure. With more than
// one rank, a failure on one rank is logged there and ends every rank (MPI_Abort), so no rank waits
// in a collective for a peer that is gone.
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "dist/mpi.h"
#include "dist/runtime.h"
#include "dist/stop.h"
#include "stages/catalogue.h"
#include "stages/stage.h"

namespace {

using ts::stages::stage_catalogue;

// Two-word subcommands ("toy corpus") share their first word; `thinksteer toy --help` lists them.
void group_usage(std::ostream& out, const std::string& group) {
  out << "usage: thinksteer " << group << " <subcommand> [--config FILE] [--section.key value ...]\n\nsubcommands:\n";
  for (const auto& s : stage_catalogue())
    if (s.name.rfind(group + " ", 0) == 0) out << "  " << s.name << std::string(s.name.size() < 15 ? 15 - s.name.size() : 1, ' ') << s.help << "\n";
  out << "\n`thinksteer " << group << " <subcommand> --help` lists its options.\n";
}

void usage(std::ostream& out) {
  out << "usage: thinksteer <subcommand> [--config FILE] [--section.key value ...]\n\nsubcommands:\n";
  for (const auto& s : stage_catalogue()) out << "  " << s.name << std::string(s.name.size() < 15 ? 15 - s.name.size() : 1, ' ') << s.help << "\n";
  out << "\n`thinksteer <subcommand> --help` lists its options.\n";
}

}  // namespace

int main(int argc, char** argv) {
  ts::pin_allocator();  // before MPI, libtorch and their threads (core/allocator.h)
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    usage(argc < 2 ? std::cerr : std::cout);
    return argc < 2 ? ts::EXIT_BAD_INPUT : 0;
  }
  std::string name = argv[1];
  int first = 1;  // argv index of the subcommand's last word (config_parse skips it like argv[0])
  if (ts::stages::is_stage_group(name)) {
    if (argc < 3 || std::strcmp(argv[2], "--help") == 0 || std::strcmp(argv[2], "-h") == 0) {
      group_usage(argc < 3 ? std::cerr : std::cout, name);
      return argc < 3 ? ts::EXIT_BAD_INPUT : 0;
    }
    name.append(" ").append(argv[2]);
    first = 2;
  }
  const ts::stages::StageInfo* stage = ts::stages::find_stage(name);
  ts::mpi::Env mpi_env(&argc, &argv);
  int rank = 0, world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  ts::log_init("info", rank, world);
  if (stage == nullptr) {
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
    if (!ts::config_parse(static_cast<int>(arg_ptrs.size()), arg_ptrs.data(), name, stage->sections, cfg)) return 0;
    spdlog::set_level(spdlog::level::from_str(ts::option_text(cfg.log.level)));
    ts::stop_install(cfg.run.dir, cfg.parallel.term_grace_seconds);
    ts::Runtime rt = ts::runtime_init(cfg);
    spdlog::debug("resolved config:\n{}", ts::config_to_ini(cfg));
    ts::stages::stage_function(name)(cfg, rt);
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
