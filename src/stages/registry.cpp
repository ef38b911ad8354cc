// The run function of every subcommand of stages/stage_list.inc.
#include <map>

#include "stages/stage.h"

namespace ts::stages {

#define THINKSTEER_STAGE(id, name, help, ...) \
  namespace id {                              \
  void run(const Config& cfg, Runtime& rt);   \
  }
#include "stages/stage_list.inc"
#undef THINKSTEER_STAGE

StageFn stage_function(const std::string& name) {
  static const std::map<std::string, StageFn> table = {
#define THINKSTEER_STAGE(id, name, help, ...) {name, &id::run},
#include "stages/stage_list.inc"
#undef THINKSTEER_STAGE
  };
  const auto it = table.find(name);
  return it == table.end() ? nullptr : it->second;
}

}  // namespace ts::stages
