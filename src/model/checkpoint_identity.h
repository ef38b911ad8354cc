// What identifies a checkpoint directory in a config hash (docs/decisions.md "Outputs and runs").
#pragma once
#include <filesystem>
#include <string>

namespace ts {

// config.json and tokenizer.json (SHA-256) and each weight file's name, size and modification time,
// so a retrained model at the same path is new work (hashing every weight would cost minutes on large
// models). Missing files read "absent": the loader reports them with the field at fault.
std::string checkpoint_identity(const std::filesystem::path& dir);

}  // namespace ts
