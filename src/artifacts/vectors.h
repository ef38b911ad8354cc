// Artifact `vectors` (docs/run-layout.md): steering vectors, <run.dir>/vectors/vectors.h5 with
// vectors.safetensors and optional per-label GGUF control vectors beside it. The formats, writers and
// validating readers are io/vectors.h (they need no run directory); this is where the file lives.
#pragma once
#include "artifacts/artifact.h"
#include "io/vectors.h"

namespace ts::artifacts {

inline constexpr Location VECTORS_H5{"vectors", "vectors.h5"};

}  // namespace ts::artifacts
