// Done markers (docs/decisions.md "Outputs and runs"): "<output>.done", written after <output> is
// committed, certifies it. It is one JSON object:
//   {"config_sha256": the hash of the config and inputs that produced the output,
//    "bytes": the output's size, "content_sha256": its content hash, "content_hash": "full" | "sampled",
//    "files": {"<sidecar file name>": {"bytes", "content_sha256"}, ...}}
// "full" hashes every byte. A file over FULL_HASH_LIMIT is too large to reread at every use: its
// "sampled" hash covers its size, its first and last SAMPLE_BYTES and 16 evenly spaced 1 MiB blocks
// (catching a truncated, extended, replaced or half-written file, not a flipped byte in the middle).
// Markers of earlier versions held only the config hash on one line; they still say "complete" but
// certify no content.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ts {

inline constexpr uintmax_t FULL_HASH_LIMIT = uintmax_t{4} << 30;  // 4 GiB
inline constexpr uintmax_t SAMPLE_BYTES = uintmax_t{64} << 20;    // 64 MiB

std::filesystem::path done_marker_path(const std::filesystem::path& output);

// The content hash of `file` as a marker records it: {"full" | "sampled", hex}. Throws
// std::runtime_error naming the file when it cannot be read.
std::pair<std::string, std::string> content_hash(const std::filesystem::path& file);
// The file's content hash as its marker certifies it (no read of a large file), or computed when no
// marker records one.
std::string certified_content_hash(const std::filesystem::path& file);

// Writes the marker of `output` (after it was committed): the config hash, the output's size and
// content hash, and those of the `sidecars` (files beside it that the marker also certifies).
void done_marker_write(const std::filesystem::path& output, std::string_view config_hash,
                       const std::vector<std::filesystem::path>& sidecars = {});

// True when <output> and its marker exist and the marker holds `config_hash` (the work can be
// skipped), and the output still has the size the marker records.
bool done_marker_matches(const std::filesystem::path& output, std::string_view config_hash);

// What a marker says; nullopt when there is none or it cannot be read.
struct DoneMarker {
  std::string config_sha256;
  std::optional<uintmax_t> bytes;           // absent in earlier markers
  std::string content_sha256, content_hash;  // empty in earlier markers
  std::vector<std::pair<std::string, std::string>> files;  // sidecar name -> content_sha256
};
std::optional<DoneMarker> done_marker_read(const std::filesystem::path& output);

// Checks a committed file against its marker before a stage trusts it: "" when it matches (or when
// the marker is of an earlier version and certifies no content), else what differs. `file` may be
// the output itself or one of its sidecars. nullopt when no marker certifies the file.
std::optional<std::string> done_marker_verify(const std::filesystem::path& file);

}  // namespace ts
