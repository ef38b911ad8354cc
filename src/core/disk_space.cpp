#include "core/disk_space.h"

#include <sys/statvfs.h>

namespace ts {

std::string disk_full_note(const std::filesystem::path& path) {
  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  struct statvfs vfs;
  if (::statvfs(dir.c_str(), &vfs) != 0) return "";
  const unsigned long long free_bytes = static_cast<unsigned long long>(vfs.f_bavail) * vfs.f_frsize;
  if (free_bytes >= (64ull << 20)) return "";
  return " (no space left on the device: " + std::to_string(free_bytes) + " bytes free on the file system of " +
         dir.string() + ")";
}

}  // namespace ts
