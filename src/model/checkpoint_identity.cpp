#include "model/checkpoint_identity.h"

#include <algorithm>
#include <vector>

#include "core/sha256.h"

namespace ts {
namespace fs = std::filesystem;

std::string checkpoint_identity(const fs::path& dir) {
  // Missing or unreadable files are left to the loader, which reports them with the field at fault.
  std::error_code ec;
  auto file_sha = [&](const char* name) { return fs::is_regular_file(dir / name, ec) ? sha256_file(dir / name) : std::string("absent"); };
  std::string id = std::string("config ") + file_sha("config.json") + "\ntokenizer " + file_sha("tokenizer.json") + "\n";
  std::vector<fs::path> shards;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().extension() == ".safetensors") shards.push_back(it->path());
  std::sort(shards.begin(), shards.end());
  for (const auto& p : shards)
    id += p.filename().string() + " " + std::to_string(fs::file_size(p, ec)) + " " +
          std::to_string(fs::last_write_time(p, ec).time_since_epoch().count()) + "\n";
  return id;
}

}  // namespace ts
