// A steering sweep as a list of tasks (docs/decisions.md "Sweeps are Slurm array tasks").
//
// `[sweep]` lists axes; sweep_expand() takes their product, in a fixed order, into SweepPoints, one
// per task. Per dataset the unsteered baseline comes first (once per dataset, and per seed when
// generation samples), and every steered point of that dataset is compared with it by `reduce`. For
// each vector × layers × hook × op × positions × coefficient: the real vector (control "none"), then
// same-norm random directions (control "random", docs/decisions.md: random-vector ablations keep each
// vector's norm): one per seed, or with random_directions = n > 1, n per seed s with direction seeds
// 100*s + j (j < n), so "control seed 11" names the five directions 1100..1104; when generation samples,
// they sample with seed s, as the baseline and the vector of seed s do (common random numbers). Projection-out
// ignores the coefficient (one point, coef 0). The opposite-sign
// control is a negative coefficient on the coefficient axis.
//
// A point's `key` is a hash of its parameters (not of its position), so ids stay stable for the same
// config, and a task file made for another point is recognised as stale. A point that comes out twice
// (e.g. `auto` resolving to a layer also listed by number) is one task, at its first position.
// The manifest is <run.dir>/sweep/manifest.jsonl: one JSON object per task, in task order.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/json.h"

namespace ts {

struct SweepAxes {
  std::vector<std::string> datasets;   // data.prompts values
  std::vector<std::string> vectors;    // behaviour labels (names in the vectors file)
  std::vector<std::string> layers;     // "auto" (attribute's first pick), "selected" (each layer it selected), "3", "1+2" (several at once),
                                       // "all" (every layer of the vectors file at once), "each" (one point per layer of the file)
  std::vector<double> coefficients;
  std::vector<std::string> hooks;      // hook site names: hook_resid_post, hook_resid_pre, hook_attn_out, hook_mlp_out, hook_resid_mid
  std::vector<std::string> ops;        // add | project-out
  std::vector<std::string> positions;  // all | prompt | generated
  std::vector<std::string> controls;   // none (the real vector) | random (same-norm random direction per seed)
  std::vector<int64_t> seeds;          // random-direction seeds; sampling seeds too when `sampled`
  int64_t random_directions = 1;       // per seed: 1 uses the seed itself; n > 1 seeds 100*seed + j, j < n
  bool sampled = false;                // generation samples: baselines and real-vector points repeat per seed
};

struct SweepPoint {
  int64_t task = 0;
  std::string key;         // 16 hex digits of SHA-256 over the parameters below
  std::string dataset;
  std::string kind;        // baseline | vector | random
  std::string vector;      // behaviour label ("" for baseline)
  std::vector<int64_t> layers;  // empty for baseline
  std::string hook;        // site, e.g. hook_resid_post ("" for baseline)
  double coef = 0;
  std::string op;          // add | project-out ("" for baseline)
  std::string positions;   // all | prompt | generated ("" for baseline)
  int64_t seed = 0;        // random-direction seed (random), sampling seed (when sampled), else 0
  int64_t sample_seed = 0; // when sampled, the generation's seed: the point's seed, or a random direction's
                           // control seed (so its tokens pair with the baseline's draw for draw); else 0
  double layer_scale = 1;  // multiplier on coef per layer: 1, or 1/n_layers with steer.divide_by_layers

  std::string layers_text() const;  // "1+2"; "" for baseline
  json to_json() const;
  static SweepPoint from_json(const json& row, const std::string& where);
};

// Resolves a layers axis value for a vector ("auto", "selected", "all", "each", "3", "1+2") to one or more layer
// groups (each group one point); throws InputError.
using LayerResolver = std::function<std::vector<std::vector<int64_t>>(const std::string& vector, const std::string& spec)>;

std::vector<SweepPoint> sweep_expand(const SweepAxes& axes, const LayerResolver& resolve, bool divide_by_layers);

// Parses "3" or "1+2" (no "auto"); throws InputError(source, field, ...) on anything else.
std::vector<int64_t> parse_layer_group(const std::string& spec, const std::string& source, const std::string& field);

// Slurm --array syntax for sorted distinct ids: {0,1,2,5,7,8} -> "0-2,5,7-8".
std::string array_spec(const std::vector<int64_t>& ids);

// The manifest's text (one line per point) and its reader (InputError naming the line and field).
std::string manifest_text(const std::vector<SweepPoint>& points);
std::vector<SweepPoint> manifest_read(const std::string& path);

}  // namespace ts
