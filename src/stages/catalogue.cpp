#include "stages/catalogue.h"

#include <algorithm>

namespace ts::stages {

const std::vector<StageInfo>& stage_catalogue() {
  static const std::vector<StageInfo> table = {
#define THINKSTEER_STAGE(id, name, help, ...) StageInfo{name, help, {__VA_ARGS__}},
#include "stages/stage_list.inc"
#undef THINKSTEER_STAGE
  };
  return table;
}

const StageInfo* find_stage(std::string_view name) {
  const auto& t = stage_catalogue();
  const auto it = std::find_if(t.begin(), t.end(), [&](const StageInfo& s) { return s.name == name; });
  return it == t.end() ? nullptr : &*it;
}

bool is_stage_group(std::string_view word) {
  for (const StageInfo& s : stage_catalogue())
    if (s.name.size() > word.size() && s.name.compare(0, word.size(), word) == 0 && s.name[word.size()] == ' ') return true;
  return false;
}

}  // namespace ts::stages
