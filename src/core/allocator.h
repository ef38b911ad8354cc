// The C allocator's behaviour the engine needs, pinned in code (docs/decisions.md "Numerics"): with glibc's
// defaults, activation buffers of a few MiB (a layer's [B, T, D] record, attention scratch) are served by mmap
// and handed back to the kernel when freed, so every batch faults them in again; recording every layer then
// costs +10-17% of a prefill on the 2-core machine (bench/bench_engine.py). Keeping blocks up to 32 MiB on the
// heap (M_MMAP_THRESHOLD, glibc's maximum on 64-bit) and not trimming its top below 1 GiB (M_TRIM_THRESHOLD)
// reuses them instead. The cost: the heap keeps its peak size for the life of the process (a batch job's).
// A user who sets MALLOC_MMAP_THRESHOLD_ or MALLOC_TRIM_THRESHOLD_ in the environment keeps those.
#pragma once

namespace ts {

// Call once at the start of main(), before other threads exist. Returns whether the settings were applied
// (false: not glibc, or the user's environment decides).
bool pin_allocator();

}  // namespace ts
