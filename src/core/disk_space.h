// Why a write may have failed, for error messages.
#pragma once
#include <filesystem>
#include <string>

namespace ts {

// " (no space left on the device: N bytes free on the file system of <dir>)" when the file system
// holding `path` has less than 64 MiB free for this user, else "". A write that fails inside HDF5 or
// MPI-IO often reaches us without its errno; the free space still tells the user what happened.
std::string disk_full_note(const std::filesystem::path& path);

}  // namespace ts
