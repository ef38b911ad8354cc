// The subcommands of thinksteer as data (stages/stage_list.inc): names, help lines and the config
// sections each reads. Torch-free, so thinksteer-check resolves a stage's options on a login node.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace ts::stages {

struct StageInfo {
  std::string name;                   // "generate", "sweep run"
  std::string help;                   // one line for `thinksteer --help`
  std::vector<std::string> sections;  // config sections it reads
};

// Every subcommand, in the order `thinksteer --help` lists them.
const std::vector<StageInfo>& stage_catalogue();
// The subcommand called `name`, or nullptr.
const StageInfo* find_stage(std::string_view name);
// True when `word` is the first word of two-word subcommands ("toy", "sweep", "basevec", "thinkedit").
bool is_stage_group(std::string_view word);

}  // namespace ts::stages
