// Atomic outputs: write to "<path>.tmp.<pid>", fsync, rename over <path>, fsync the directory.
// A reader never sees a half-written file under the final name.
#pragma once
#include <filesystem>
#include <string>
#include <string_view>

namespace ts {

void write_file_atomic(const std::filesystem::path& path, std::string_view content);

// Removes `path` and, for a directory, everything under it (not following symlinks); absent is fine.
// Throws std::runtime_error naming the entry that could not be removed. Not std::filesystem::remove_all:
// in a binary linked with libtorch that symbol can resolve to libtorch's own copy of libstdc++'s
// filesystem code, which crashes on a non-empty directory (seen with torch 2.11).
void remove_tree(const std::filesystem::path& path);

// The whole file as bytes. Throws InputError(path, "<file>", "cannot read" + hint) if it cannot be opened.
std::string read_file(const std::filesystem::path& path, std::string_view hint = {});

// Done markers (DECISIONS.md, "Outputs and runs"): "<output>.done" holds the hash of the config that
// produced <output>; it is written after <output> is committed, so its presence means complete.
std::filesystem::path done_marker_path(const std::filesystem::path& output);
// True when <output> and its marker exist and the marker holds `hash` (the work can be skipped).
bool done_marker_matches(const std::filesystem::path& output, std::string_view hash);
void done_marker_write(const std::filesystem::path& output, std::string_view hash);

}  // namespace ts
