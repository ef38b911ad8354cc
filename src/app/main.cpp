// thinksteer: one executable, a subcommand per stage. main() only parses the Config, builds the
// Runtime and dispatches; errors become one log line and an exit code (2: bad input, 1: failure).
#include <cstring>
#include <iostream>
#include <map>
#include <string>

#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/runtime.h"
#include "stages/stages.h"

namespace {

struct Subcommand {
  void (*run)(const ts::Config&, ts::Runtime&);
  const char* help;
};

const std::map<std::string, Subcommand>& subcommands() {
  static const std::map<std::string, Subcommand> m = {
      {"generate", {ts::stages::generate::run, "generate thinking traces for a prompt dataset"}},
      {"inspect", {ts::stages::inspect::run, "validate and describe a checkpoint directory"}},
  };
  return m;
}

void usage(std::ostream& out) {
  out << "usage: thinksteer <subcommand> [--config FILE] [--section.key value ...]\n\nsubcommands:\n";
  for (const auto& [name, sub] : subcommands()) out << "  " << name << std::string(12 - name.size(), ' ') << sub.help << "\n";
  out << "\n`thinksteer <subcommand> --help` lists its options.\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    usage(argc < 2 ? std::cerr : std::cout);
    return argc < 2 ? ts::EXIT_BAD_INPUT : 0;
  }
  const std::string name = argv[1];
  auto it = subcommands().find(name);
  ts::log_init("info", ts::env_rank(), ts::env_world_size());
  if (it == subcommands().end()) {
    spdlog::error("<command line>: subcommand: unknown subcommand '{}'", name);
    usage(std::cerr);
    return ts::EXIT_BAD_INPUT;
  }
  try {
    ts::Config cfg;
    if (!ts::config_parse(argc - 1, argv + 1, name, cfg)) return 0;
    spdlog::set_level(spdlog::level::from_str(cfg.log.level));
    ts::Runtime rt = ts::runtime_init(cfg);
    spdlog::debug("resolved config:\n{}", ts::config_to_ini(cfg));
    it->second.run(cfg, rt);
    return 0;
  } catch (const ts::InputError& e) {
    spdlog::error("{}", e.what());
    return ts::EXIT_BAD_INPUT;
  } catch (const std::exception& e) {
    spdlog::error("{} failed: {}", name, e.what());
    return 1;
  }
}
