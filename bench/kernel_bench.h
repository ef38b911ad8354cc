// What the kernel benchmarks (bench_small_linear, bench_attention) share: their `--name value` integer flags and the
// median of timed runs. Header-only.
#pragma once
#include <algorithm>
#include <string>
#include <vector>

namespace kernel_bench {

// The value of `--name N` among argv's pairs, or `fallback`.
inline int int_flag(int argc, char** argv, const std::string& name, int fallback) {
  for (int i = 1; i + 1 < argc; i += 2)
    if (argv[i] == name) return std::stoi(argv[i + 1]);
  return fallback;
}

// The middle run (the upper middle of an even count).
inline double middle(std::vector<double> runs) {
  std::sort(runs.begin(), runs.end());
  return runs[runs.size() / 2];
}

}  // namespace kernel_bench
