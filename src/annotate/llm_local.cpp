// The local-checkpoint backend of the llm annotator (llm_local.h).
#include "annotate/llm_local.h"

#include <algorithm>
#include <exception>

#include "core/sha256.h"
#include "model/generate_continuous.h"

namespace ts {

LlmLocalBackend::LlmLocalBackend(StageModel model, ChatFormat format, int64_t max_tokens, int64_t batch_size, std::string checkpoint_identity)
    : m_(std::move(model)), format_(format), max_tokens_(max_tokens), batch_size_(std::max<int64_t>(1, batch_size)),
      checkpoint_identity_(std::move(checkpoint_identity)) {}

std::string LlmLocalBackend::identity_of(ChatFormat format, int64_t max_tokens, const std::string& checkpoint_identity) {
  return "local checkpoint sha256 " + sha256_hex(checkpoint_identity) + " chat_format " + chat_format_name(format) + " greedy max_tokens " +
         std::to_string(max_tokens);
}

std::string LlmLocalBackend::identity() const { return identity_of(format_, max_tokens_, checkpoint_identity_); }

std::vector<LlmReply> LlmLocalBackend::complete(std::span<const std::string> prompts) const {
  std::vector<LlmReply> out(prompts.size());
  GenerateOptions gen;
  gen.max_new_tokens = max_tokens_;
  gen.sampling = SamplingParams{};  // greedy
  gen.eos_ids = m_.eos_ids;
  gen.pad_id = m_.pad_id;
  // The prompts that fit the context, in order; the others fail at once.
  std::vector<size_t> runnable;
  std::vector<std::vector<int32_t>> ids(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    ids[i] = m_.tokenizer->encode_ids(chat_format_apply(format_, prompts[i]));
    const int64_t need = static_cast<int64_t>(ids[i].size()) + max_tokens_;
    out[i].attempts = 1;
    if (ids[i].empty()) {
      out[i].error = "the prompt encodes to no tokens";
    } else if (m_.config.max_position > 0 && need > m_.config.max_position) {
      out[i].error = "the prompt's " + std::to_string(ids[i].size()) + " tokens + annotate.llm_max_tokens " + std::to_string(max_tokens_) +
                     " exceed the model's context of " + std::to_string(m_.config.max_position) + " positions";
    } else {
      runnable.push_back(i);
    }
  }
  std::vector<GenerateRequest> requests;
  for (size_t i : runnable) requests.push_back({ids[i], 0});
  try {
    std::vector<GenerateResult> results = generate_continuous(*m_.model, requests, gen, nullptr, {.max_rows = batch_size_, .on_done = {}, .admit = {}});  // batch_size_ rows, refilled
    for (size_t k = 0; k < runnable.size(); ++k) {
      std::vector<int32_t>& t = results[k].tokens;
      if (results[k].finish == FinishReason::EOS && !t.empty()) t.pop_back();
      out[runnable[k]].ok = true;
      out[runnable[k]].text = m_.tokenizer->decode(t, /*skip_special_tokens=*/true);
    }
  } catch (const std::exception& ex) {
    for (size_t i : runnable) out[i].error = std::string("generation failed: ") + ex.what();
  }
  return out;
}

}  // namespace ts
