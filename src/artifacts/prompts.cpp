#include "artifacts/prompts.h"

#include <filesystem>

#include "core/error.h"
#include "core/sha256.h"
#include "toy/corpus.h"

#include "control_questions.inc"  // CONTROL_QUESTIONS_JSONL: configs/prompts/control_questions.jsonl, compiled in
#include "reasoning_tasks.inc"    // REASONING_TASKS_JSONL: configs/prompts/reasoning_tasks.jsonl, compiled in

namespace ts::artifacts {

namespace {
constexpr const char* BUILTIN = "builtin:";

// data.template applied: the text with {prompt} replaced, spans shifted by the template's prefix.
void apply_template(const Config& cfg, std::vector<Prompt>& prompts) {
  if (cfg.data.template_text.empty()) return;
  const std::string tpl = config_unescape(cfg.data.template_text);
  const size_t at = tpl.find("{prompt}");
  const std::string prefix = tpl.substr(0, at), suffix = tpl.substr(at + std::string("{prompt}").size());
  const int64_t shift = utf8_length(prefix);
  for (Prompt& p : prompts) {
    p.text = prefix + p.text + suffix;
    for (PromptSpan& sp : p.spans) {
      sp.begin += shift;
      sp.end += shift;
    }
  }
}

std::vector<Prompt> load_builtin(const Config& cfg, const std::string& spans_field);
}  // namespace

std::vector<Prompt> load_prompts(const Config& cfg, const std::string& spans_field) {
  std::vector<Prompt> prompts;
  if (cfg.data.prompts.empty()) throw InputError("<config>", "data.prompts", "no prompts given (a JSONL file or builtin:toy-test)");
  if (cfg.data.prompts.rfind(BUILTIN, 0) != 0)
    prompts = prompts_read_jsonl(cfg.data.prompts, cfg.data.prompt_field, cfg.data.id_field, cfg.data.answer_field, cfg.data.limit, spans_field);
  else
    prompts = load_builtin(cfg, spans_field);
  apply_template(cfg, prompts);
  return prompts;
}

namespace {
std::vector<Prompt> load_builtin(const Config& cfg, const std::string& spans_field) {
  std::string set = cfg.data.prompts.substr(std::string(BUILTIN).size());
  Config::Toy toy = cfg.toy;  // builtin:toy[-split]@SEED: the problems of another problem seed
  if (const size_t at = set.find('@'); at != std::string::npos) {
    const std::string seed = set.substr(at + 1);
    if (seed.empty() || seed.find_first_not_of("0123456789") != std::string::npos || seed.size() > 19)
      throw InputError("<config>", "data.prompts", "'" + cfg.data.prompts + "': @ must be followed by a problem seed (digits)");
    toy.seed = std::stoull(seed);
    set = set.substr(0, at);
  }
  const std::string family = set.substr(0, set.find('-')), split = set.find('-') == std::string::npos ? "" : set.substr(set.find('-') + 1);
  if ((family != "toy" && family != "reasoning" && family != "control") || (split != "" && split != "train" && split != "test") ||
      (family != "toy" && cfg.data.prompts.find('@') != std::string::npos))
    throw InputError("<config>", "data.prompts",
                     "unknown built-in set '" + cfg.data.prompts + "' (builtin:toy, builtin:reasoning, builtin:control, each also with -train or -test; toy sets also @SEED)");
  if (!spans_field.empty()) throw InputError("<config>", "collect.positions", "built-in prompt sets have no spans");
  std::vector<Prompt> all;
  if (family == "reasoning") {
    all = prompts_parse_jsonl(REASONING_TASKS_JSONL, "builtin:reasoning (configs/prompts/reasoning_tasks.jsonl)", "question", "id", "answer");
  } else if (family == "control") {
    all = prompts_parse_jsonl(CONTROL_QUESTIONS_JSONL, "builtin:control (configs/prompts/control_questions.jsonl)", "question", "id", "answer");
  } else {
    for (const ToyProblem& p : toy_corpus_generate(toy_corpus_options(toy))) all.push_back({p.id, p.question, p.answer, {}, p.template_name, p.split});
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
}  // namespace

std::string prompts_identity(const Config& cfg) {
  if (cfg.data.prompts.rfind(BUILTIN, 0) == 0)
    return cfg.data.prompts + "\n" + config_to_ini(cfg, {"toy"}) + sha256_hex(std::string(REASONING_TASKS_JSONL)) +
           (cfg.data.prompts.rfind("builtin:control", 0) == 0 ? sha256_hex(std::string(CONTROL_QUESTIONS_JSONL)) : "");
  std::error_code ec;
  if (!std::filesystem::is_regular_file(cfg.data.prompts, ec))
    throw InputError(cfg.data.prompts, "data.prompts", std::filesystem::exists(cfg.data.prompts, ec) ? "is not a regular file" : "no such file");
  return sha256_file(cfg.data.prompts);
}

}  // namespace ts::artifacts
