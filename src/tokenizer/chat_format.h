// Chat prompt formats: the text the models' chat templates produce for one user turn with
// add_generation_prompt=True. The result is tokenized with add_special_tokens=false: the BOS and
// role markers in the text are matched as added special tokens.
//
//   raw         : the user text unchanged (the system text is ignored).
//   deepseek_r1 : DeepSeek-R1-Distill-{Qwen,Llama} tokenizer_config.json template:
//                 "<｜begin▁of▁sentence｜>{system}<｜User｜>{user}<｜Assistant｜><think>\n"
//                 (the R1-Distill template ends the generation prompt with "<think>\n").
//   chatml      : Qwen2.5 / Qwen2.5-Instruct template:
//                 "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n"
//                 "<|im_start|>assistant\n". Without a system text it uses Qwen2.5's default system
//                 prompt "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
//                 (QwQ's template would omit the system turn instead; we follow Qwen2.5).
//   llama3      : Llama-3 / 3.1 Instruct template without tools or date header:
//                 "<|begin_of_text|>" + ("<|start_header_id|>system<|end_header_id|>\n\n{system}<|eot_id|>"
//                 only when a system text is given) + "<|start_header_id|>user<|end_header_id|>\n\n{user}"
//                 "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n".
#pragma once
#include <string>
#include <string_view>

#include "core/options.h"  // enum class ChatFormat and its names (config options use it too)

namespace ts {

// "raw", "deepseek_r1", "chatml", "llama3". Throws InputError listing the valid names.
ChatFormat chat_format_from_name(std::string_view name);
std::string chat_format_name(ChatFormat format);

// The generation prompt for one user message (and an optional system message).
std::string chat_format_apply(ChatFormat format, std::string_view user, std::string_view system = {});
// Code points before the user message in chat_format_apply(format, user, system): where a range of the user
// text starts in the formatted prompt.
int64_t chat_format_prefix_code_points(ChatFormat format, std::string_view system = {});

}  // namespace ts
