// The prompt sets a run reads (data.prompts): a JSONL file (io/prompts.h), or a built-in set, each
// also as a "-train" / "-test" split:
//   builtin:toy        the toy world's word problems per [toy] (question + exact answer; category =
//                      template)
//   builtin:reasoning  240 reasoning tasks written for thinksteer, 24 in each of the ten categories
//                      of the steering-vector paper (configs/prompts/reasoning_tasks.jsonl, compiled
//                      in; 4 per category held out as test)
//   builtin:control    230 templated factual questions with answers written for thinksteer (capitals,
//                      authors, colours, years, chemical symbols, largest-of, unit conversions): the
//                      control set of the reasoning-direction analyses (docs/directions.md; a sixth of
//                      each category held out as test)
// data.template then wraps every prompt's text ({prompt} replaced; spans shifted with it).
#pragma once
#include <string>
#include <vector>

#include "core/config.h"
#include "io/prompts.h"

namespace ts::artifacts {

std::vector<Prompt> load_prompts(const Config& cfg, const std::string& spans_field = "");
// What identifies the prompts for config hashes: the file's SHA-256, or the set name + [toy] keys.
std::string prompts_identity(const Config& cfg);

}  // namespace ts::artifacts
