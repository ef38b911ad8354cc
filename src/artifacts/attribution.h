// Artifact `attribution` (docs/run-layout.md): what `attribute` writes, <run.dir>/attribute/
// attribution.h5 (format thinksteer.attribution) with skipped.jsonl and provenance.json beside it.
// /labels [K] str, /example_id [E] str, /effect and /effect_signed [K, L, E] f32, /mean, /std,
// /cos_embed, /cos_unembed [K, L] f32, /n_examples, /exclude_first, /exclude_last [K] i64,
// /selected [K, n_select] i64 (-1 padded; the first is the top peak), /layers [L] i64,
// /positions [K, E] i64; root attributes metric, mode, hook and the artifact identity.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "artifacts/artifact.h"
#include "io/h5store.h"

namespace ts::artifacts {

inline constexpr Format ATTRIBUTION{"thinksteer.attribution", 1, "attribute"};
inline constexpr Location ATTRIBUTION_H5{"attribute", "attribution.h5"};

// The numeric datasets for K labels, L layers, E examples and `n_select` picks per label.
std::vector<h5::DatasetSpec> attribution_datasets(int64_t K, int64_t L, int64_t E, int64_t n_select);

// The layers attribute selected per behaviour, in its order (the first is its top peak). `key` is the
// config key that points at the file.
std::map<std::string, std::vector<int64_t>> read_attribution_picks(const std::filesystem::path& file, const std::string& key);

}  // namespace ts::artifacts
