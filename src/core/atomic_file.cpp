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

void write_file_atomic(const std::filesystem::path& path, std::string_view content) {
  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  std::filesystem::create_directories(dir);
  const std::filesystem::path tmp = path.string() + ".tmp." + std::to_string(::getpid());
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
  if (::fsync(fd) != 0) {
    ::close(fd);
    fail("fsync failed for");
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail("rename failed for");
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

std::filesystem::path done_marker_path(const std::filesystem::path& output) { return output.string() + ".done"; }

bool done_marker_matches(const std::filesystem::path& output, std::string_view hash) {
  std::error_code ec;
  const std::filesystem::path marker = done_marker_path(output);
  if (!std::filesystem::is_regular_file(output, ec) || !std::filesystem::is_regular_file(marker, ec)) return false;
  std::ifstream in(marker);
  std::string line;
  std::getline(in, line);
  return line == hash;
}

void done_marker_write(const std::filesystem::path& output, std::string_view hash) {
  write_file_atomic(done_marker_path(output), std::string(hash) + "\n");
}

}  // namespace ts
