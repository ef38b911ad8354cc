#include "core/atomic_file.h"

#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>

#include "core/error.h"

namespace ts {

namespace {
int remove_entry(const char* path, const struct stat*, int, struct FTW*) { return ::remove(path) == 0 ? 0 : -1; }
}  // namespace

void remove_tree(const std::filesystem::path& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    throw std::runtime_error("cannot stat " + path.string() + ": " + std::strerror(errno));
  }
  if (::nftw(path.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
    throw std::runtime_error("cannot remove " + path.string() + ": " + std::strerror(errno));
}

std::string read_file(const std::filesystem::path& path, std::string_view hint) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path.string(), "<file>", "cannot read" + std::string(hint));
  return std::string(std::istreambuf_iterator<char>(in), {});
}

namespace {

// fsync of a file or a directory, opened read-only for the purpose.
void fsync_path(const std::filesystem::path& p, bool directory) {
  const int fd = ::open(p.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(p.string() + ": cannot open for fsync: " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) throw std::runtime_error(p.string() + ": fsync failed: " + std::strerror(err));
}

}  // namespace

std::filesystem::path temp_path_for(const std::filesystem::path& path) { return path.string() + ".tmp." + std::to_string(::getpid()); }

void commit_file(const std::filesystem::path& tmp, const std::filesystem::path& final_path) {
  fsync_path(tmp, false);
  std::filesystem::rename(tmp, final_path);
  fsync_path(final_path.has_parent_path() ? final_path.parent_path() : std::filesystem::path("."), true);
}

void write_file_atomic(const std::filesystem::path& path, std::string_view content) {
  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  std::filesystem::create_directories(dir);
  const std::filesystem::path tmp = temp_path_for(path);
  auto fail = [&](const char* what) {
    const std::string msg = std::string(what) + " " + tmp.string() + ": " + std::strerror(errno);
    ::unlink(tmp.c_str());
    throw std::runtime_error(msg);
  };
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("cannot create");
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = ::write(fd, content.data() + off, content.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      fail("write failed for");
    }
    off += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) fail("close failed for");
  try {
    commit_file(tmp, path);
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
}

}  // namespace ts
