// tokenizer.json "decoder": null, ByteLevel or a Sequence of ByteLevel.
// ByteLevel (HF): each token made only of byte-level alphabet characters contributes its bytes,
// any other token (e.g. "<｜User｜>") its UTF-8 text as is; the bytes of all tokens are joined and
// decoded like Rust's String::from_utf8_lossy (U+FFFD for invalid sequences).
// Without a decoder, HF joins the token strings with spaces.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"

namespace ts {

class Decoder {
 public:
  Decoder() = default;
  static Decoder from_json(const json& value, const std::string& file, const std::string& path);

  std::string decode(const std::vector<std::string_view>& tokens) const;

 private:
  int byte_level_steps_ = 0;  // number of chained ByteLevel decoders (0: join with spaces)
};

}  // namespace ts
