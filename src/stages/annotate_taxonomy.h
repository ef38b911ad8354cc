// The taxonomy annotator of `thinksteer annotate` (annotate/taxonomy_annotator.h, docs/algorithms.md
// §B.7), built from the sentences file and an SAE export: every row is classified here, once.
#pragma once
#include <memory>

#include "annotate/annotator.h"
#include "core/config.h"

namespace ts::stages {

// Reads annotate.taxonomy_sae (artifacts/taxonomy_export.h) and the sentences file, checks that they
// fit (the SAE's layer is in the file, its d_in is the file's d_model), and classifies every sentence:
// x~ = (raw − μ_sae) / max(‖raw − μ_sae‖, 1e-12) with raw = μ_file + norm · vector, cluster =
// argmax (W_enc (x~ − b_dec) + b_enc). InputError naming the file and field otherwise.
std::unique_ptr<Annotator> make_taxonomy_annotator(const Config& cfg);

}  // namespace ts::stages
