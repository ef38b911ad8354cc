// An LlmBackend (annotate/llm.h) on a local checkpoint, run by thinksteer's own engine: each prompt is
// chat-formatted (tokenizer/chat_format.h), encoded without added special tokens (the format holds
// them) and generated greedily, up to `max_tokens` new tokens, `batch_size` prompts per generation
// batch (model/generate.h: a prompt's result does not depend on its batch). The reply is the decoding
// of the new tokens without the final EOS and without special tokens.
// A prompt whose tokens plus max_tokens exceed the model's context (config.json
// max_position_embeddings) is not run: its reply fails with that reason. A generation batch that
// throws (e.g. out of memory) fails each of its prompts with the exception's message.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "annotate/llm.h"
#include "dist/rank_model.h"
#include "tokenizer/chat_format.h"

namespace ts {

class LlmLocalBackend : public LlmBackend {
 public:
  // `identity` names the checkpoint (checkpoint_identity of its directory).
  LlmLocalBackend(StageModel model, ChatFormat format, int64_t max_tokens, int64_t batch_size, std::string checkpoint_identity);
  // "local checkpoint sha256 <of the checkpoint identity> chat_format <f> greedy max_tokens <n>"
  // (identity_of: the same without a loaded model).
  std::string identity() const override;
  static std::string identity_of(ChatFormat format, int64_t max_tokens, const std::string& checkpoint_identity);
  std::vector<LlmReply> complete(std::span<const std::string> prompts) const override;

 private:
  StageModel m_;
  ChatFormat format_;
  int64_t max_tokens_ = 0, batch_size_ = 1;
  std::string checkpoint_identity_;
};

}  // namespace ts
