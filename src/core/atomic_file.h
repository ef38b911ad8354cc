// Atomic outputs: write to "<path>.tmp.<pid>", fsync, rename over <path>, fsync the directory.
// A reader never sees a half-written file under the final name.
#pragma once
#include <filesystem>
#include <string_view>

namespace ts {

void write_file_atomic(const std::filesystem::path& path, std::string_view content);

}  // namespace ts
