#include "dist/stop.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>

namespace ts {
namespace {

volatile std::sig_atomic_t g_signal = 0;  // 1: SIGUSR1, 2: SIGTERM
std::filesystem::path g_stop_file;
double g_grace = 20;
std::atomic<int> g_resumable{0};  // > 0 while a batch loop runs (dist/batch_loop.h)
std::once_flag g_installed;

extern "C" void on_usr1(int) {
  if (g_signal < 1) g_signal = 1;
}
extern "C" void on_term(int) { g_signal = 2; }

// Polls the flag; after SIGTERM, waits out the grace period and ends the process if it is still alive.
void watchdog() {
  while (g_signal < 2) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(g_grace);
  while (std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  // Inside a batch loop the rerun redoes at most the current round: resumable. Anywhere else (reading
  // inputs, loading, writing) a rerun would meet the same phase again: a plain failure, not requeued.
  const bool resumable = g_resumable.load() > 0;
  const int code = resumable ? EXIT_RESUMABLE : 1;
  spdlog::error("SIGTERM: still running {:.0f} s later ({}); exiting with {}", g_grace,
                resumable ? "inside a batch; the rerun redoes the unfinished round" : "not in a resumable phase; nothing was saved", code);
  spdlog::default_logger()->flush();
  std::_Exit(code);
}

}  // namespace

void stop_install(const std::filesystem::path& run_dir, double term_grace_seconds) {
  g_stop_file = run_dir / "STOP";
  g_grace = term_grace_seconds;
  std::call_once(g_installed, [] {
    struct sigaction sa {};
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, nullptr);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, nullptr);
    std::thread(watchdog).detach();
  });
}

ResumablePhase::ResumablePhase() { ++g_resumable; }
ResumablePhase::~ResumablePhase() { --g_resumable; }

int stop_local() {
  int s = g_signal;
  if (s == 0 && !g_stop_file.empty() && ::access(g_stop_file.c_str(), F_OK) == 0) s = 1;
  return s;
}

int stop_agree(const mpi::Comm& comm) {
  const int s = static_cast<int>(comm.allreduce_max(stop_local()));
  if (s > 0 && stop_local() > 0) spdlog::warn("stop requested ({}); stopping at this batch boundary", s == 2 ? "SIGTERM" : "SIGUSR1/STOP file");
  return s;
}

void fault_point(const char* point, int rank) {
  static const std::string spec = [] {
    const char* v = std::getenv("THINKSTEER_FAULT");
    return std::string(v ? v : "");
  }();
  if (spec.empty()) return;
  // <action>@<point>:<n>[:<rank>]
  const size_t at = spec.find('@'), c1 = spec.find(':', at == std::string::npos ? 0 : at);
  if (at == std::string::npos || c1 == std::string::npos) return;
  if (spec.compare(at + 1, c1 - at - 1, point) != 0) return;
  const size_t c2 = spec.find(':', c1 + 1);
  const int n = std::atoi(spec.substr(c1 + 1, c2 == std::string::npos ? std::string::npos : c2 - c1 - 1).c_str());
  const int target = c2 == std::string::npos ? 0 : std::atoi(spec.substr(c2 + 1).c_str());
  if (rank != target) return;
  static std::mutex mu;  // points are passed on the main thread and on the HDF5 writer thread
  static std::map<std::string, int> counts;
  {
    std::lock_guard lock(mu);
    if (++counts[point] != n) return;
  }
  const std::string action = spec.substr(0, at);
  spdlog::warn("THINKSTEER_FAULT: {} at {} #{}", action, point, n);
  spdlog::default_logger()->flush();
  if (action == "sigkill") ::raise(SIGKILL);
  if (action == "sigterm") ::raise(SIGTERM);
  if (action == "sigusr1") ::raise(SIGUSR1);
  if (action == "throw") throw std::runtime_error(std::string("injected fault at ") + point);
}

}  // namespace ts
