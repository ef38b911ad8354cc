// libFuzzer target: bytes -> json_parse_strict -> model_config_from_json -> model_expected_tensors.
// Only ts::InputError may escape. An accepted config must imply a small, well-formed inventory:
// positive dimensions whose element counts do not overflow int64.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "core/error.h"
#include "core/json.h"
#include "model/model_config.h"

namespace {

void check_inventory(const std::vector<ts::ExpectedTensor>& tensors) {
  for (const auto& t : tensors) {
    if (t.name.empty() || t.shape.empty()) __builtin_trap();
    int64_t n = 1;
    for (int64_t d : t.shape)
      if (d <= 0 || __builtin_mul_overflow(n, d, &n)) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const ts::json j = ts::json_parse_strict(text, "config.json");
    const ts::ModelConfig c = ts::model_config_from_json(j, "config.json");
    if (c.n_layer <= 0 || c.d_model <= 0 || c.n_head <= 0 || c.n_kv_head <= 0 || c.d_head <= 0 || c.d_mlp <= 0 || c.n_vocab <= 0)
      __builtin_trap();
    if (c.n_head % c.n_kv_head != 0 || c.d_head % 2 != 0) __builtin_trap();
    const auto all = ts::model_expected_tensors(c, 0, c.n_layer, true, true);
    check_inventory(all);
    if (all.size() < static_cast<size_t>(c.n_layer)) __builtin_trap();
    // A pipeline stage: the last half of the layers and the head.
    check_inventory(ts::model_expected_tensors(c, c.n_layer / 2, c.n_layer, false, true));
  } catch (const ts::InputError& e) {
    if (std::strncmp(e.what(), "config.json: ", 13) != 0) __builtin_trap();  // errors name the file
  }
  return 0;
}
