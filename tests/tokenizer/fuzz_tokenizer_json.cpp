// libFuzzer target: arbitrary bytes as tokenizer.json. Loading must either succeed or throw
// ts::InputError; a loaded tokenizer must encode and decode a fixed text without crashing.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    ts::Tokenizer tok = ts::Tokenizer::from_json_text(text, "fuzz.json");
    static const std::string sample =
        "Hello, world! It's 1234567 <s> <|im_end|> e\xCC\x81t\xC3\xA9 \xE6\x9D\xB1\xE4\xBA\xAC \xF0\x9F\xA4\x97\n\t  x";
    ts::Encoding encoding = tok.encode(sample, true);
    (void)tok.decode(encoding.ids, false);
    (void)tok.decode(encoding.ids, true);
    (void)tok.encode_ids(sample, false);
    std::vector<int32_t> ids;
    for (int32_t id = -1; id < 300 && id <= tok.vocab_size(); ++id) ids.push_back(id);
    (void)tok.decode(ids, false);
    for (int32_t id : encoding.ids) {
      if (tok.token_to_id(std::to_string(id))) continue;
      (void)tok.is_special(id);
    }
  } catch (const ts::InputError&) {
  }
  return 0;
}
