// splitmix64: the one mixing function behind every seeded stream in thinksteer (sampling, toy
// corpus). Pure and portable, unlike std:: distributions, whose output is implementation-defined.
#pragma once
#include <cstdint>

namespace ts {

constexpr uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// The i-th draw of the seeded stream `seed` as a uniform double in [0, 1) (53 random bits).
constexpr double splitmix_uniform01(uint64_t seed, uint64_t i) {
  return static_cast<double>(splitmix64(seed ^ splitmix64(i)) >> 11) * 0x1.0p-53;
}

}  // namespace ts
