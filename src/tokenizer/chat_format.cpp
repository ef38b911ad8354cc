#include "tokenizer/chat_format.h"

#include "core/error.h"

namespace ts {

namespace {

constexpr std::string_view kQwenDefaultSystem = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

}  // namespace

ChatFormat chat_format_from_name(std::string_view name) {
  if (const auto format = option_parse<ChatFormat>(name)) return *format;
  throw InputError("<options>", "chat_format",
                   "unknown chat format '" + std::string(name) + "' (valid: " + option_names_joined<ChatFormat>(", ", ", ") + ")");
}

std::string chat_format_name(ChatFormat format) {
  const auto index = static_cast<size_t>(format);
  return std::string(index < OPTION_NAMES<ChatFormat>.size() ? option_name(format) : OPTION_NAMES<ChatFormat>[0]);
}

std::string chat_format_apply(ChatFormat format, std::string_view user, std::string_view system) {
  std::string out;
  switch (format) {
    case ChatFormat::raw:
      out = user;
      break;
    case ChatFormat::deepseek_r1:
      out += "<｜begin▁of▁sentence｜>";
      out += system;
      out += "<｜User｜>";
      out += user;
      out += "<｜Assistant｜><think>\n";
      break;
    case ChatFormat::chatml:
      out += "<|im_start|>system\n";
      out += system.empty() ? kQwenDefaultSystem : system;
      out += "<|im_end|>\n<|im_start|>user\n";
      out += user;
      out += "<|im_end|>\n<|im_start|>assistant\n";
      break;
    case ChatFormat::llama3:
      out += "<|begin_of_text|>";
      if (!system.empty()) {
        out += "<|start_header_id|>system<|end_header_id|>\n\n";
        out += system;
        out += "<|eot_id|>";
      }
      out += "<|start_header_id|>user<|end_header_id|>\n\n";
      out += user;
      out += "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
      break;
  }
  return out;
}

int64_t chat_format_prefix_code_points(ChatFormat format, std::string_view system) {
  const std::string sentinel = "\x01thinksteer\x01";  // the formats put the user text between a prefix and a suffix
  const std::string formatted = chat_format_apply(format, sentinel, system);
  int64_t n = 0;
  for (size_t i = 0; i < formatted.find(sentinel); ++i) n += (static_cast<unsigned char>(formatted[i]) & 0xC0) != 0x80 ? 1 : 0;
  return n;
}

}  // namespace ts
