// Logging (spdlog) with the rank in every line, and progress reporting: a bar on a terminal, one
// line per interval in batch logs (no carriage returns in Slurm output files).
#pragma once
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <string>

namespace ts {

// Rank and world size from the launcher's environment (Open MPI, PMI, Slurm), before MPI is up.
int env_rank();
int env_world_size();

// Installs the default logger: "[time] [r<rank>/<world>] [level] message" on stderr.
void log_init(const std::string& level, int rank, int world);

class Progress {
 public:
  Progress(std::string what, int64_t total, double interval_seconds);
  void update(int64_t done, const std::string& detail = "");
  void finish(const std::string& detail = "");

 private:
  void emit(int64_t done, const std::string& detail, bool final);
  std::string what_;
  int64_t total_;
  double interval_;
  bool tty_;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace ts
