// Stage `inspect`: validates a checkpoint directory (config.json, safetensors headers, tensor
// inventory and shapes, tokenizer.json) without loading weights, and prints what it found.
#include <iostream>

#include "core/error.h"
#include "core/log.h"
#include "model/checkpoint_files.h"
#include "stages/stages.h"
#include "tokenizer/tokenizer.h"

namespace ts::stages::inspect {

void run(const Config& cfg, Runtime& /*rt*/) {
  if (cfg.model.path.empty()) throw InputError("<config>", "model.path", "no checkpoint directory given");
  const std::filesystem::path dir = cfg.model.path;
  CheckpointFiles ck = checkpoint_open(dir);
  const ModelConfig& c = ck.config;
  int64_t params = 0;
  for (const auto& [name, e] : ck.tensors) params += e.info->numel();
  std::cout << "checkpoint   " << dir.string() << "\n"
            << "architecture " << c.architecture << "\n"
            << "layers       " << c.n_layer << "\n"
            << "d_model      " << c.d_model << "\n"
            << "heads        " << c.n_head << " (kv " << c.n_kv_head << ", d_head " << c.d_head << ")\n"
            << "d_mlp        " << c.d_mlp << "\n"
            << "vocab        " << c.n_vocab << "\n"
            << "rope         " << c.rope.type << " theta " << c.rope.theta << "\n"
            << "tied embed   " << (c.tie_word_embeddings ? "yes" : "no") << "\n"
            << "shards       " << ck.shards.size() << "\n"
            << "tensors      " << ck.tensors.size() << " (" << params << " parameters)\n";
  for (const auto& name : ck.unexpected) spdlog::warn("checkpoint tensor {} is not used by the model", name);
  const auto tok_path = dir / "tokenizer.json";
  if (std::filesystem::exists(tok_path)) {
    Tokenizer tok = Tokenizer::from_file(tok_path);
    std::cout << "tokenizer    " << tok.vocab_size() << " tokens\n";
    if (tok.vocab_size() > c.n_vocab)
      throw InputError(tok_path.string(), "model.vocab", "tokenizer has " + std::to_string(tok.vocab_size()) +
                                                            " tokens but config.json vocab_size is " + std::to_string(c.n_vocab));
  } else {
    std::cout << "tokenizer    (no tokenizer.json)\n";
  }
}

}  // namespace ts::stages::inspect
