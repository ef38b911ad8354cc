#include "model/checkpoint_summary.h"

#include <sstream>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace ts {

std::string checkpoint_summary(const CheckpointFiles& ck) {
  const ModelConfig& c = ck.config;
  int64_t params = 0;
  for (const auto& [name, e] : ck.tensors) params += e.info->numel();
  // The tokenizer is validated before anything is returned, so bad input produces no summary.
  std::string tokenizer_line = "(no tokenizer.json)";
  const auto tok_path = ck.dir / "tokenizer.json";
  std::error_code ec;
  // A link that leads nowhere (a copied HF cache snapshot) or in a loop is a broken tokenizer, not none.
  if (std::filesystem::is_symlink(std::filesystem::symlink_status(tok_path, ec)) && !std::filesystem::exists(tok_path, ec))
    throw InputError(tok_path.string(), "<file>", "is a symbolic link to nothing (" + (ec ? ec.message() : std::string("dangling")) +
                                                      "): copy the file itself, not the link");
  if (std::filesystem::exists(tok_path, ec)) {
    const int64_t vocab = Tokenizer::from_file(tok_path).vocab_size();
    if (vocab > c.n_vocab)
      throw InputError(tok_path.string(), "model.vocab",
                       "tokenizer has " + std::to_string(vocab) + " tokens but config.json vocab_size is " + std::to_string(c.n_vocab));
    tokenizer_line = std::to_string(vocab) + " tokens";
  }
  std::ostringstream out;
  out << "checkpoint   " << ck.dir.string() << "\n"
      << "architecture " << c.architecture << "\n"
      << "layers       " << c.n_layer << "\n"
      << "d_model      " << c.d_model << "\n"
      << "heads        " << c.n_head << " (kv " << c.n_kv_head << ", d_head " << c.d_head << ")\n"
      << "d_mlp        " << c.d_mlp << "\n"
      << "vocab        " << c.n_vocab << "\n"
      << "rope         " << c.rope.type << " theta " << c.rope.theta << "\n"
      << "tied embed   " << (c.tie_word_embeddings ? "yes" : "no") << "\n"
      << "shards       " << ck.shards.size() << "\n"
      << "tensors      " << ck.tensors.size() << " (" << params << " parameters)\n"
      << "tokenizer    " << tokenizer_line << "\n";
  return out.str();
}

}  // namespace ts
