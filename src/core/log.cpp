#include "core/log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace ts {
namespace {

int env_int(std::initializer_list<const char*> names, int fallback) {
  for (const char* n : names)
    if (const char* v = std::getenv(n)) return std::atoi(v);
  return fallback;
}

}  // namespace

int env_rank() { return env_int({"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"}, 0); }
int env_world_size() { return env_int({"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS"}, 1); }

void log_init(const std::string& level, int rank, int world) {
  auto logger = spdlog::stderr_logger_mt("thinksteer");
  logger->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [r" + std::to_string(rank) + "/" + std::to_string(world) + "] [%l] %v");
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

Progress::Progress(std::string what, int64_t total, double interval_seconds)
    : what_(std::move(what)), total_(total), interval_(interval_seconds), tty_(::isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()), last_(start_) {}

void Progress::update(int64_t done, const std::string& detail) {
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_).count();
  if (since < (tty_ ? 0.2 : interval_)) return;
  last_ = now;
  emit(done, detail, false);
}

void Progress::finish(const std::string& detail) { emit(total_, detail, true); }

void Progress::emit(int64_t done, const std::string& detail, bool final) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double frac = total_ > 0 ? static_cast<double>(done) / static_cast<double>(total_) : 1.0;
  const double eta = frac > 0 ? elapsed * (1 - frac) / frac : 0;
  if (tty_) {
    const int width = 30, filled = static_cast<int>(frac * width);
    std::fprintf(stderr, "\r%s [%s%s] %lld/%lld %s %.0fs eta %.0fs   ", what_.c_str(), std::string(static_cast<size_t>(filled), '#').c_str(),
                 std::string(static_cast<size_t>(width - filled), '.').c_str(), static_cast<long long>(done), static_cast<long long>(total_),
                 detail.c_str(), elapsed, eta);
    if (final) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  } else {
    spdlog::info("{} {}/{} ({:.0f}%) {} | {:.0f}s elapsed, eta {:.0f}s", what_, done, total_, 100 * frac, detail, elapsed, eta);
  }
}

}  // namespace ts
