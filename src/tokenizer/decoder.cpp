#include "tokenizer/decoder.h"

#include "core/utf8.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/json_fields.h"

namespace ts {

namespace {

void parse_into(const json& value, const tokjson::Where& where, int& byte_level_steps) {
  if (value.is_null()) return;
  std::string type = tokjson::component_type(value, where);
  if (type == "ByteLevel") {
    ++byte_level_steps;
  } else if (type == "Sequence") {
    tokjson::for_each_sequence_item(value, "decoders", "decoder", where, [&](const json& item, const tokjson::Where& item_where) {
      parse_into(item, item_where, byte_level_steps);
    });
  } else {
    where.field("type").fail("unsupported decoder type '" + type + "' (supported: ByteLevel, Sequence)");
  }
}

// One ByteLevel decode_chain step: tokens -> a single lossy-decoded string.
std::string byte_level_decode(const std::vector<std::string_view>& tokens) {
  std::string bytes;
  std::string token_bytes;
  for (std::string_view token : tokens) {
    token_bytes.clear();
    if (byte_level::decode(token, token_bytes))
      bytes += token_bytes;
    else
      bytes.append(token);
  }
  return utf8::decode_lossy(bytes);
}

}  // namespace

Decoder Decoder::from_json(const json& value, const std::string& file, const std::string& path) {
  Decoder d;
  parse_into(value, tokjson::Where{file, path}, d.byte_level_steps_);
  return d;
}

std::string Decoder::decode(const std::vector<std::string_view>& tokens) const {
  if (byte_level_steps_ == 0) {
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0) out.push_back(' ');
      out.append(tokens[i]);
    }
    return out;
  }
  std::string out = byte_level_decode(tokens);
  for (int step = 1; step < byte_level_steps_; ++step) out = byte_level_decode({std::string_view(out)});
  return out;
}

}  // namespace ts
