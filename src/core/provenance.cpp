#include "core/provenance.h"

#include <boost/version.hpp>
#include <spdlog/version.h>
#include <torch/version.h>
#include <unistd.h>

#include <chrono>
#include <ctime>

#include "core/log.h"
#include "git_version.h"

namespace ts {

std::string git_commit() { return std::string(THINKSTEER_GIT_COMMIT) + (THINKSTEER_GIT_DIRTY ? "+dirty" : ""); }

json provenance_json(const Config& cfg, const std::string& config_sha256) {
  char host[256] = {0};
  ::gethostname(host, sizeof(host) - 1);
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char when[32];
  std::strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return json{
      {"thinksteer_version", THINKSTEER_VERSION},
      {"git_commit", git_commit()},
      {"config_sha256", config_sha256},
      {"config", config_to_ini(cfg)},
      {"seed", cfg.generate.seed},
      {"world_size", env_world_size()},
      {"host", host},
      {"created_utc", when},
      {"versions",
       {{"torch", TORCH_VERSION},
        {"boost", BOOST_LIB_VERSION},
        {"spdlog", std::to_string(SPDLOG_VER_MAJOR) + "." + std::to_string(SPDLOG_VER_MINOR) + "." + std::to_string(SPDLOG_VER_PATCH)}}},
  };
}

}  // namespace ts
