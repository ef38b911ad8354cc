// Stage `reduce`: a sweep's finished task files gathered into its kind's summary (stages/sweep_kind.h;
// docs/decisions.md "Sweeps").
//   in : <run.dir>/<sweep dir>/manifest.jsonl, the task files whose done marker matches this config
//   out: the kind's summary (steering: sweep/summary.h5 + summary.csv, stages/steer_summary.cpp;
//        taxonomy: taxonomy/summary.h5 + summary.csv, stages/taxonomy_sweep.cpp), and missing.txt (the
//        unfinished tasks as an sbatch --array= list, empty when none); stdout "missing: --array=LIST"
//        when tasks are missing.
// Exit: 0 complete; 3 with tasks missing (the summary is not written, and an older one is removed so
// that nothing stale looks complete), unless reduce.allow_partial, which writes it marked partial.
#include "stages/sweep_kind.h"

namespace ts::stages::reduce {

void run(const Config& cfg, Runtime& rt) { reduce_sweep(*make_sweep_kind(cfg), cfg, rt); }

}  // namespace ts::stages::reduce
