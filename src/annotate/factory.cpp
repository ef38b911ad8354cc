#include "annotate/factory.h"

#include <cstdlib>

#include "annotate/lexicon.h"
#include "annotate/llm.h"
#include "annotate/llm_http.h"
#include "annotate/llm_local.h"
#include "annotate/toy_annotator.h"
#include "core/error.h"
#include "core/log.h"
#include "dist/rank_model.h"
#include "dist/stop.h"
#include "model/checkpoint_identity.h"
#include "tokenizer/chat_format.h"

#include "default_lexicon.inc"  // DEFAULT_LEXICON: configs/annotate/lexicon.txt, compiled in

namespace ts {

namespace {

std::shared_ptr<const LlmBackend> make_llm_http_backend(const Config::Annotate& a) {
  LlmHttpOptions o;
  o.endpoint = a.llm_endpoint;
  o.model = a.llm_model;
  o.max_tokens = a.llm_max_tokens;
  o.timeout_seconds = a.llm_timeout_seconds;
  o.retries = a.llm_retries;
  o.retry_seconds = a.llm_retry_seconds;
  o.concurrency = a.llm_concurrency;
  const char* key = std::getenv(a.llm_api_key_env.c_str());
  o.api_key = key ? key : "";
  if (o.api_key.empty()) spdlog::info("annotate: ${} (annotate.llm_api_key_env) is unset or empty: requests carry no API key", a.llm_api_key_env);
  o.cancelled = [] { return stop_local() != 0; };
  return std::make_shared<LlmHttpBackend>(std::move(o));
}

// The llm annotator's backend on annotate.llm_model_path, generating on model.device in model.dtype.
std::shared_ptr<const LlmBackend> make_llm_local_backend(const Config& cfg, const Runtime& rt) {
  Config local = cfg;
  local.model.path = cfg.annotate.llm_model_path;
  StageModel m = load_stage_model(local, rt);
  return std::make_shared<LlmLocalBackend>(std::move(m), cfg.annotate.llm_chat_format, cfg.annotate.llm_max_tokens, cfg.annotate.llm_concurrency,
                                           checkpoint_identity(cfg.annotate.llm_model_path));
}

std::unique_ptr<Annotator> make_llm_local(const Config& cfg, const Runtime& rt) { return std::make_unique<LlmAnnotator>(make_llm_local_backend(cfg, rt)); }

// Every annotator but the llm annotator on a local checkpoint.
std::unique_ptr<Annotator> make_offline_or_http(const Config& cfg) {
  const Config::Annotate& a = cfg.annotate;
  if (a.annotator == AnnotatorKind::toy) return std::make_unique<ToyAnnotator>();
  if (a.annotator == AnnotatorKind::taxonomy)  // built from the sentences file by stages/annotate_taxonomy.cpp
    throw InputError("[annotate]", "annotate.annotator", "the taxonomy annotator labels the rows of a sentences file: only `thinksteer annotate` uses it");
  if (a.annotator == AnnotatorKind::llm) return std::make_unique<LlmAnnotator>(make_llm_http_backend(a));
  Lexicon lex = a.lexicon.empty() ? Lexicon::parse(DEFAULT_LEXICON, "builtin:configs/annotate/lexicon.txt") : Lexicon::read(a.lexicon);
  return std::make_unique<LexiconAnnotator>(std::move(lex));
}

}  // namespace

bool llm_local(const Config& cfg) { return cfg.annotate.annotator == AnnotatorKind::llm && cfg.annotate.llm_endpoint.empty(); }

std::unique_ptr<Annotator> make_annotator(const Config& cfg, const Runtime& rt) {
  return llm_local(cfg) ? make_llm_local(cfg, rt) : make_offline_or_http(cfg);
}

std::string annotator_identity(const Config& cfg) {
  if (!llm_local(cfg)) return make_offline_or_http(cfg)->identity();
  return LlmAnnotator::identity_of(LlmLocalBackend::identity_of(cfg.annotate.llm_chat_format, cfg.annotate.llm_max_tokens,
                                                                checkpoint_identity(cfg.annotate.llm_model_path)));
}

std::shared_ptr<const LlmBackend> make_llm_judge_backend(const Config& cfg, const Runtime& rt) {
  if (!cfg.annotate.llm_endpoint.empty()) return make_llm_http_backend(cfg.annotate);
  if (cfg.annotate.llm_model_path.empty())
    throw InputError("[annotate]", "annotate.llm_endpoint", "the taxonomy's LLM judge needs an endpoint (annotate.llm_endpoint) or a local checkpoint (annotate.llm_model_path)");
  return make_llm_local_backend(cfg, rt);
}

std::unique_ptr<Annotator> make_measuring_annotator(const Config& cfg, const Runtime& rt) {
  if (llm_local(cfg))
    throw InputError("[annotate]", "annotate.llm_endpoint", "steer measures behaviours with the lexicon, toy, or an llm annotator on an endpoint (not a local checkpoint)");
  return make_annotator(cfg, rt);
}

}  // namespace ts
