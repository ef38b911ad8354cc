#include "core/done_marker.h"

#include <fstream>
#include <stdexcept>

#include "core/atomic_file.h"
#include "core/json.h"
#include "core/sha256.h"

namespace ts {
namespace fs = std::filesystem;

namespace {

// Bytes [offset, offset + n) of an open file appended to `out`.
void read_block(std::ifstream& in, uintmax_t offset, uintmax_t n, std::string& out, const fs::path& file) {
  const size_t at = out.size();
  out.resize(at + static_cast<size_t>(n));
  in.seekg(static_cast<std::streamoff>(offset));
  in.read(out.data() + at, static_cast<std::streamsize>(n));
  if (!in) throw std::runtime_error(file.string() + ": cannot read for hashing");
}

std::string sampled_sha256(const fs::path& file, uintmax_t size) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error(file.string() + ": cannot open for hashing");
  std::string sample = std::to_string(size) + "\n";
  read_block(in, 0, SAMPLE_BYTES, sample, file);
  constexpr uintmax_t block = uintmax_t{1} << 20;
  for (uintmax_t i = 1; i <= 16; ++i) read_block(in, (size - block) * i / 17, block, sample, file);
  read_block(in, size - SAMPLE_BYTES, SAMPLE_BYTES, sample, file);
  return sha256_hex(sample);
}

// The output's marker entry for a sidecar: its name relative to the output's directory.
std::string sidecar_name(const fs::path& output, const fs::path& sidecar) { return sidecar.lexically_relative(output.parent_path()).string(); }

}  // namespace

fs::path done_marker_path(const fs::path& output) { return output.string() + ".done"; }

std::pair<std::string, std::string> content_hash(const fs::path& file) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(file, ec);
  if (ec) throw std::runtime_error(file.string() + ": cannot read its size for hashing: " + ec.message());
  if (size <= FULL_HASH_LIMIT) return {"full", sha256_file(file)};
  return {"sampled", sampled_sha256(file, size)};
}

void done_marker_write(const fs::path& output, std::string_view config_hash, const std::vector<fs::path>& sidecars) {
  const auto [kind, hash] = content_hash(output);
  json m = {{"config_sha256", std::string(config_hash)}, {"bytes", fs::file_size(output)}, {"content_sha256", hash}, {"content_hash", kind}};
  json files = json::object();
  for (const fs::path& s : sidecars) files[sidecar_name(output, s)] = {{"bytes", fs::file_size(s)}, {"content_sha256", content_hash(s).second}};
  if (!files.empty()) m["files"] = files;
  write_file_atomic(done_marker_path(output), m.dump() + "\n");
}

std::string certified_content_hash(const std::filesystem::path& file) {
  const std::optional<DoneMarker> marker = done_marker_read(file);
  return marker && !marker->content_sha256.empty() ? marker->content_sha256 : content_hash(file).second;
}

std::optional<DoneMarker> done_marker_read(const fs::path& output) {
  std::ifstream in(done_marker_path(output));
  if (!in) return std::nullopt;
  std::string text((std::istreambuf_iterator<char>(in)), {});
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  DoneMarker d;
  if (text.empty() || text.front() != '{') {  // an earlier marker: the config hash alone
    if (text.find('\n') != std::string::npos) return std::nullopt;
    d.config_sha256 = text;
    return d;
  }
  try {
    const json m = json::parse(text);
    d.config_sha256 = m.at("config_sha256").get<std::string>();
    d.bytes = m.at("bytes").get<uintmax_t>();
    d.content_sha256 = m.at("content_sha256").get<std::string>();
    d.content_hash = m.at("content_hash").get<std::string>();
    if (m.contains("files"))
      for (const auto& [name, f] : m.at("files").items()) d.files.emplace_back(name, f.at("content_sha256").get<std::string>());
  } catch (const std::exception&) {
    return std::nullopt;  // damaged: certifies nothing
  }
  return d;
}

bool done_marker_matches(const fs::path& output, std::string_view config_hash) {
  std::error_code ec;
  if (!fs::is_regular_file(output, ec)) return false;
  const auto d = done_marker_read(output);
  if (!d || d->config_sha256 != config_hash) return false;
  return !d->bytes || fs::file_size(output, ec) == *d->bytes;
}

std::optional<std::string> done_marker_verify(const fs::path& file) {
  // The file itself, or a sidecar of an output in the same directory whose marker lists it.
  if (const auto d = done_marker_read(file)) {
    if (d->content_sha256.empty()) return std::string();  // an earlier marker: nothing to compare
    const auto [kind, hash] = content_hash(file);
    if (hash != d->content_sha256)
      return "its content (" + kind + " sha256 " + hash.substr(0, 12) + ") differs from what its .done marker certifies (" + d->content_sha256.substr(0, 12) +
             "): it changed after it was committed";
    return std::string();
  }
  std::error_code ec;
  for (fs::directory_iterator it(file.parent_path().empty() ? fs::path(".") : file.parent_path(), ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() < 5 || name.compare(name.size() - 5, 5, ".done") != 0) continue;
    const fs::path output = it->path().parent_path() / name.substr(0, name.size() - 5);
    const auto d = done_marker_read(output);
    if (!d) continue;
    for (const auto& [sidecar, hash] : d->files)
      if (sidecar == file.filename().string()) {
        const std::string now = content_hash(file).second;
        if (now == hash) return std::string();
        return "its content (sha256 " + now.substr(0, 12) + ") differs from what " + done_marker_path(output).filename().string() + " certifies (" +
               hash.substr(0, 12) + "): it changed after it was committed";
      }
  }
  return std::nullopt;
}

}  // namespace ts
