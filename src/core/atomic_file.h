// Atomic outputs: write to "<path>.tmp.<pid>", fsync, rename over <path>, fsync the directory.
// A reader never sees a half-written file under the final name. commit_file is the one
// implementation of the last three steps; every writer of a final output (write_file_atomic here,
// io/h5store's commit_h5, io/vectors' writers) goes through it.
#pragma once
#include <filesystem>
#include <string>
#include <string_view>

namespace ts {

// "<path>.tmp.<pid>": where a writer puts a file before commit_file moves it to <path>.
std::filesystem::path temp_path_for(const std::filesystem::path& path);

// Commits the complete file `tmp`: fsyncs it, renames it over `final_path` and fsyncs the directory
// of `final_path`, so that the final name holds either the old file or the whole new one. Throws
// std::runtime_error naming the path at fault (std::filesystem::filesystem_error for the rename);
// `tmp` is then left for the caller to remove.
void commit_file(const std::filesystem::path& tmp, const std::filesystem::path& final_path);

// `content` written to temp_path_for(path) and committed (the directory is created first). The
// temporary file is removed on failure.
void write_file_atomic(const std::filesystem::path& path, std::string_view content);

// Removes `path` and, for a directory, everything under it (not following symlinks); absent is fine.
// Throws std::runtime_error naming the entry that could not be removed. Not std::filesystem::remove_all:
// in a binary linked with libtorch that symbol can resolve to libtorch's own copy of libstdc++'s
// filesystem code, which crashes on a non-empty directory (seen with torch 2.11).
void remove_tree(const std::filesystem::path& path);

// The whole file as bytes. Throws InputError(path, "<file>", "cannot read" + hint) if it cannot be opened.
std::string read_file(const std::filesystem::path& path, std::string_view hint = {});

// Done markers: core/done_marker.h.

}  // namespace ts
