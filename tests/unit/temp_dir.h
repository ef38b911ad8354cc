// A temporary directory removed (recursively) when the test scope ends.
#pragma once
#include <stdlib.h>

#include <filesystem>
#include <stdexcept>
#include <string>

#include "core/atomic_file.h"

namespace ts_test {

class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "thinksteer_test") {
    std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "_XXXXXX")).string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  // ts::remove_tree, not std::filesystem::remove_all: in binaries that link the engine the latter resolves
  // into libtorch's copy of libstdc++'s symbols and crashes there.
  ~TempDir() {
    try {
      ts::remove_tree(path_);
    } catch (...) {
    }
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace ts_test
