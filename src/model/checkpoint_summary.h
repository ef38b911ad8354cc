// A human-readable description of a validated checkpoint (shared by `thinksteer inspect` and
// `thinksteer-check checkpoint`). Validates tokenizer.json too, when present, before returning.
#pragma once
#include <string>

#include "model/checkpoint_files.h"

namespace ts {

// Throws InputError if tokenizer.json is broken or holds more tokens than config.json's vocab_size.
std::string checkpoint_summary(const CheckpointFiles& ck);

}  // namespace ts
