// The annotator [annotate] asks for: lexicon, toy, or llm on an endpoint or on a local checkpoint.
#pragma once
#include <memory>
#include <string>

#include "annotate/annotator.h"
#include "annotate/llm.h"
#include "core/config.h"
#include "dist/runtime.h"

namespace ts {

// True when annotate.annotator = llm runs on the local checkpoint annotate.llm_model_path.
bool llm_local(const Config& cfg);

// The annotator of annotate.annotator. The llm annotator on a local checkpoint loads its model on
// model.device in model.dtype (COLLECTIVE only in that it runs on every rank alike).
std::unique_ptr<Annotator> make_annotator(const Config& cfg, const Runtime& rt);
// The identity of that annotator without loading a model (for a config hash before the skip check).
std::string annotator_identity(const Config& cfg);

// The llm annotator's backend for other users of a judge model (the taxonomy's §B.5 titles and §B.6
// scores): the HTTP client on annotate.llm_endpoint / llm_model (its key, timeout, retries, concurrency),
// or, without an endpoint, generation on the checkpoint annotate.llm_model_path, loaded by this rank
// alone. InputError when neither is configured.
std::shared_ptr<const LlmBackend> make_llm_judge_backend(const Config& cfg, const Runtime& rt);

// The annotator that measures a sweep's behaviours: lexicon, toy, or llm on an endpoint (a local
// checkpoint would load a second model beside the steered one and is refused).
std::unique_ptr<Annotator> make_measuring_annotator(const Config& cfg, const Runtime& rt);

}  // namespace ts
