#include "core/allocator.h"

#include <cstdlib>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace ts {

bool pin_allocator() {
#if defined(__GLIBC__)
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") != nullptr || std::getenv("MALLOC_TRIM_THRESHOLD_") != nullptr) return false;
  constexpr int MMAP_THRESHOLD = 32 << 20;  // glibc's largest allowed value on 64-bit (HEAP_MAX_SIZE / 2)
  constexpr int TRIM_THRESHOLD = 1 << 30;
  return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 && mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1;
#else
  return false;
#endif
}

}  // namespace ts
