// Pure work-partitioning functions (no MPI): which prompts a data-parallel rank takes and which
// decoder layers a pipeline stage holds. Every rank computes the same answer from the same inputs,
// so no communication is needed to agree on them.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

namespace ts {

struct Range {
  int64_t begin = 0;
  int64_t end = 0;  // exclusive
  int64_t size() const { return end - begin; }
  bool operator==(const Range&) const = default;
};

// Splits items 0..n-1 (in order) into `parts` contiguous ranges whose cost sums are balanced: the
// largest part is minimal among contiguous splits (so it is at most mean + max item). Contiguous
// ranges keep every rank's outputs a contiguous block of the global order, so a rank's offset in an
// output file is an exclusive scan of the counts before it. Parts may be empty when n < parts.
// costs must be >= 0 (e.g. token counts).
std::vector<Range> partition_contiguous(std::span<const int64_t> costs, int parts);

// [0, n) split into `parts` contiguous ranges as even as possible (the first n % parts get one more);
// parts is clamped to [1, n] (n = 0: one empty range). Micro-batches of a batch use it.
std::vector<Range> even_ranges(int64_t n, int64_t parts);

// Decoder layers [0, n_layer) split into `stages` even ranges (even_ranges). Throws
// std::invalid_argument if stages < 1 or > n_layer.
std::vector<Range> pipeline_layer_ranges(int64_t n_layer, int stages);

}  // namespace ts
