// Provenance recorded with every output: code version, library versions, host, time, config hash.
#pragma once
#include <string>

#include "core/config.h"
#include "core/json.h"

namespace ts {

std::string git_commit();  // commit the binary was built from ("unknown" outside git), "+dirty" if modified
json provenance_json(const Config& cfg, const std::string& config_sha256);

}  // namespace ts
