// What the `directions` stages share (docs/directions.md): the activation files they read (collect's
// output, directions.a / directions.b), the hooks chosen from them (directions.hooks), each hook's rows
// as a tensor, and the hooks of this rank (hooks are dealt round-robin over the ranks; results are
// added up over ranks into zero-filled buffers). Not a stage: a helper of stages/.
#pragma once
#include <ATen/core/Tensor.h>

#include <filesystem>
#include <string>
#include <vector>

#include "artifacts/activations.h"
#include "core/config.h"
#include "dist/runtime.h"

namespace ts::stages {

struct ActivationInput {
  std::filesystem::path file;
  std::string key;           // the config key that names it, for messages
  std::string sha256;        // of the file, for config hashes
  std::string model;         // the checkpoint that made it (root attribute model_path)
  artifacts::ActivationIndex index;
  std::vector<artifacts::ActivationHook> hooks;  // the chosen ones, by layer
  std::vector<int64_t> row_sequence;             // per row, its sequence
  std::vector<std::string> row_label;            // per row, its span label ("" when the rows carry none)
  std::vector<int64_t> row_token;                // per row, its (last) token's position in the sequence
  int64_t n_rows() const { return static_cast<int64_t>(row_sequence.size()); }
};

// directions.a, or collect's output in run.dir when it is empty.
std::filesystem::path directions_a(const Config& cfg);
// The file, its index and its hooks (directions.hooks: every named hook must be in the file). Throws
// InputError naming the file and `key`.
ActivationInput read_activation_input(const Config& cfg, const std::filesystem::path& file, const std::string& key);
// `b` (directions.b) holds hook `h` of directions.a with the same width; InputError naming b's file otherwise.
void require_hook(const ActivationInput& b, const artifacts::ActivationHook& h);
// The rows of one hook as a [rows, width] float32 tensor.
at::Tensor hook_rows(const ActivationInput& in, const std::string& hook);
// The direction of directions.direction: vector directions.vector (empty: the file's only name, else
// directions.name) at directions.layer (-1: the file's only layer), as a [d_model] float32 tensor (not
// normalised). Throws InputError naming the file and key (absent name or layer, zero vector, d_model).
struct ChosenDirection {
  std::filesystem::path file;
  std::string sha256, name, hook_measured;
  int64_t layer = 0;
  at::Tensor vector;
};
ChosenDirection read_direction(const Config& cfg, int64_t d_model);

// Hook number `h` is this rank's.
inline bool my_hook(const Runtime& rt, size_t h) { return static_cast<int>(h % static_cast<size_t>(rt.world)) == rt.rank; }

}  // namespace ts::stages
