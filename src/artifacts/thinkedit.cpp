#include "artifacts/thinkedit.h"

#include <cmath>
#include <set>

#include "core/error.h"

namespace ts::artifacts {
namespace fs = std::filesystem;

std::vector<h5::DatasetSpec> head_scores_datasets(int64_t layers, int64_t heads) {
  return {{"/scores", h5::DType::F64, {layers, heads}, {"layer", "head"}, {}},
          {"/ranking", h5::DType::I64, {layers * heads, 2}, {"rank", "layer_head"}, {}}};
}

void write_head_scores(const fs::path& file, const HeadScores& s, const json& provenance) {
  h5::SerialFile f(file, h5::SerialFile::Mode::CREATE);
  write_h5_identity(f, provenance, THINKEDIT_HEADS);
  const std::vector<h5::DatasetSpec> specs = head_scores_datasets(s.layers, s.heads);
  f.write_dataset(specs[0], s.scores.data());
  f.write_dataset(specs[1], s.ranking.data());
  f.set_attr("/", "n_short", s.n_short);
  f.set_attr("/", "hook", std::string(HOOK_Z));
  f.set_attr("/", "direction", s.direction);
  f.set_attr("/", "direction_sha256", s.direction_sha256);
}

HeadScores read_head_scores(const fs::path& file, const std::string& key) {
  const auto opened = open_checked(file, THINKEDIT_HEADS, key);
  const h5::SerialFile& f = *opened;
  HeadScores s;
  const std::string name = file.string();
  for (const char* d : {"/scores", "/ranking"})
    if (!f.exists(d)) throw InputError(name, d, "missing dataset");
  const std::vector<int64_t> shape = f.shape("/scores");
  if (shape.size() != 2 || shape[0] < 1 || shape[1] < 1) throw InputError(name, "/scores", "must be [layers, heads]");
  s.layers = shape[0];
  s.heads = shape[1];
  if (f.shape("/ranking") != std::vector<int64_t>{s.layers * s.heads, 2}) throw InputError(name, "/ranking", "must be [layers * heads, 2]");
  s.scores = f.read_f64("/scores");
  s.ranking = f.read_i64("/ranking");
  for (double v : s.scores)
    if (!std::isfinite(v)) throw InputError(name, "/scores", "holds a value that is not finite");
  std::set<int64_t> seen;
  double previous = INFINITY;
  for (size_t r = 0; r < s.ranking.size() / 2; ++r) {
    const int64_t l = s.ranking[2 * r], h = s.ranking[2 * r + 1];
    if (l < 0 || l >= s.layers || h < 0 || h >= s.heads || !seen.insert(l * s.heads + h).second)
      throw InputError(name, "/ranking", "row " + std::to_string(r) + " is not a (layer, head) listed once");
    const double v = s.scores[static_cast<size_t>(l * s.heads + h)];
    if (v > previous) throw InputError(name, "/ranking", "is not in descending score at row " + std::to_string(r));
    previous = v;
  }
  s.n_short = f.attr_int("/", "n_short");
  s.direction = f.attr_string("/", "direction");
  s.direction_sha256 = f.attr_string("/", "direction_sha256");
  verify_committed(file, key);
  return s;
}

}  // namespace ts::artifacts
