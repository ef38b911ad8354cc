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
      {"toy corpus", {ts::stages::toy_corpus::run, "planted-truth toy corpus: word problems with labelled traces"}},
  };
  return m;
}

// Two-word subcommands ("toy corpus") share their first word; `thinksteer toy --help` lists them.
void group_usage(std::ostream& out, const std::string& group) {
  out << "usage: thinksteer " << group << " <subcommand> [--config FILE] [--section.key value ...]\n\nsubcommands:\n";
  for (const auto& [name, sub] : subcommands())
    if (name.rfind(group + " ", 0) == 0) out << "  " << name << std::string(name.size() < 12 ? 12 - name.size() : 1, ' ') << sub.help << "\n";
  out << "\n`thinksteer " << group << " <subcommand> --help` lists its options.\n";
}

void usage(std::ostream& out) {
  out << "usage: thinksteer <subcommand> [--config FILE] [--section.key value ...]\n\nsubcommands:\n";
  for (const auto& [name, sub] : subcommands())
    out << "  " << name << std::string(name.size() < 12 ? 12 - name.size() : 1, ' ') << sub.help << "\n";
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
  if (name == "toy") {
    if (argc < 3 || std::strcmp(argv[2], "--help") == 0 || std::strcmp(argv[2], "-h") == 0) {
      group_usage(argc < 3 ? std::cerr : std::cout, name);
      return argc < 3 ? ts::EXIT_BAD_INPUT : 0;
    }
    name.append(" ").append(argv[2]);
    first = 2;
  }
  auto it = subcommands().find(name);
  ts::log_init("info", ts::env_rank(), ts::env_world_size());
  if (it == subcommands().end()) {
    spdlog::error("<command line>: subcommand: unknown subcommand '{}'", name);
    usage(std::cerr);
    return ts::EXIT_BAD_INPUT;
  }
  try {
    ts::Config cfg;
    if (!ts::config_parse(argc - first, argv + first, name, cfg)) return 0;
    spdlog::set_level(spdlog::level::from_str(cfg.log.level));
    ts::Runtime rt = ts::runtime_init(cfg);
    spdlog::debug("resolved config:\n{}", ts::config_to_ini(cfg));
    it->second.run(cfg, rt);
    return 0;
  } catch (const ts::InputError& e) {
    spdlog::error("{}", ts::error_one_line(e.what()));
    return ts::EXIT_BAD_INPUT;
  } catch (const std::exception& e) {
    spdlog::error("{} failed: {}", name, ts::error_one_line(e.what()));
    return 1;
  }
}
