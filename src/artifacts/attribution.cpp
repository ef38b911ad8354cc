#include "artifacts/attribution.h"

#include "core/error.h"

namespace ts::artifacts {
namespace fs = std::filesystem;

std::vector<h5::DatasetSpec> attribution_datasets(int64_t K, int64_t L, int64_t E, int64_t n_select) {
  return {
      {"/effect", h5::DType::F32, {K, L, E}, {"label", "layer", "example"}, {}},
      {"/effect_signed", h5::DType::F32, {K, L, E}, {"label", "layer", "example"}, {}},
      {"/mean", h5::DType::F32, {K, L}, {"label", "layer"}, {}},
      {"/std", h5::DType::F32, {K, L}, {"label", "layer"}, {}},
      {"/cos_embed", h5::DType::F32, {K, L}, {"label", "layer"}, {}},
      {"/cos_unembed", h5::DType::F32, {K, L}, {"label", "layer"}, {}},
      {"/n_examples", h5::DType::I64, {K}, {"label"}, {}},
      {"/exclude_first", h5::DType::I64, {K}, {"label"}, {}},
      {"/exclude_last", h5::DType::I64, {K}, {"label"}, {}},
      {"/selected", h5::DType::I64, {K, n_select}, {"label", "pick"}, {}},
      {"/layers", h5::DType::I64, {L}, {"layer"}, {}},
      {"/positions", h5::DType::I64, {K, E}, {"label", "example"}, {}},
  };
}

std::map<std::string, std::vector<int64_t>> read_attribution_picks(const fs::path& file, const std::string& key) {
  if (!fs::exists(file))
    throw InputError(file.string(), key, "'auto' and 'selected' take the layers `thinksteer attribute` chose, but its output is not there (run attribute, set steer.attribution, or list layers)");
  const auto opened = open_checked(file, ATTRIBUTION, "steer.attribution");
  const h5::SerialFile& f = *opened;
  const std::vector<std::string> labels = f.read_strings("/labels");
  const std::vector<int64_t> shape = f.shape("/selected");
  const std::vector<int64_t> selected = f.read_i64("/selected");
  if (shape.size() != 2 || shape[0] != static_cast<int64_t>(labels.size()) || shape[1] < 1)
    throw InputError(file.string(), "/selected", "must be [labels, picks] with at least one pick");
  verify_committed(file, "steer.attribution");
  std::map<std::string, std::vector<int64_t>> out;
  for (size_t k = 0; k < labels.size(); ++k)
    for (int64_t j = 0; j < shape[1]; ++j)
      if (const int64_t l = selected[k * static_cast<size_t>(shape[1]) + static_cast<size_t>(j)]; l >= 0) out[labels[k]].push_back(l);
  return out;
}

}  // namespace ts::artifacts
