"""thinksteer-analysis (or python -m thinksteer_analysis):

  figures RUN_DIR [--out DIR] [--format png|pdf] [--share token_share|span_share]
  summary RUN_DIR [--share token_share|span_share]
  acceptance RUN_DIR [--share ...] [--min-prompts 100] [--max-c 1.5] [--min-random 5]
  taxonomy RUN_DIR
  basevec RUN_DIR [--out DIR]
  hybrid RUN_DIR [--out DIR] [--prompt N] [--tokenizer PATH]
  thinkedit RUN_DIR [--out DIR]
  directions RUN_DIR [--out DIR]
  compare RUN_A RUN_B [--labels A,B] [--out DIR]

figures: draws every figure the run directory has the outputs for (attribute/attribution.h5,
         sweep/summary.h5; taxonomy/summary.h5, titles/*/titles.json, basevec/tasks/*.h5,
         hybrid/summary.h5, thinkedit/ with its sweeps, directions/ and intervene/ when present) into DIR (default
         RUN_DIR/figures) and prints the files written; a stage that has not run is skipped with a
         one-line note.
summary: prints the sweep table (sweep/summary.h5) as plain text.
acceptance: the steering acceptance table (docs/algorithms.md "Steering acceptance": at attribute's first
         pick and some |c| <= max-c, +c raises and -c lowers each behaviour beyond every same-norm
         random direction's interval); exit 0 when every behaviour passes, 1 otherwise.
taxonomy: prints the taxonomy sweep's table (taxonomy/summary.h5; the chosen group marked) and the
         titles of the chosen SAE (titles/) when `thinksteer titles` has run.
basevec: prints the base-vector sweep's table (basevec/tasks/*.h5, basevec/summary.h5, selected.json: per
         task its holdout unsteered / steered / random numbers, selection metric, whether it was selected)
         and draws basevec_curves.png and basevec_kl.png into DIR (default RUN_DIR/figures).
hybrid:  prints the hybrid sweep's table (hybrid/summary.h5: per task its accuracy, gap recovered and
         hybrid − row with bootstrap intervals, steered share, thinking length) and draws
         hybrid_accuracy.png, hybrid_gap.png and hybrid_trace.png (prompt N of the first hybrid row with
         ablation none, decoded with the tokenizer.json at PATH or the run's model's) into DIR (default
         RUN_DIR/figures).
thinkedit: prints ThinkEdit's tables (thinkedit/lengths.jsonl and thresholds.json: the probe traces' long /
         short split; heads.h5 and edit.json: the best-scoring short-reasoning heads and the edited ones;
         alpha/sweep: per α accuracy, thinking length and its paired change from the baseline with bootstrap
         intervals, Spearman's correlation of α and length; layerwise/sweep: per layer the paired changes at
         α = ±1; eval/original and eval/edited: accuracy mean ± std over runs, on the shortest 5/10/20% of
         responses, against a length threshold) and draws thinkedit_lengths.png, thinkedit_alpha.png,
         thinkedit_layerwise.png, thinkedit_heads.png and thinkedit_eval.png into DIR (default
         RUN_DIR/figures); a part the run does not have is skipped with a one-line note.
directions: prints the reasoning-direction tables (docs/directions.md: directions/contrast.csv: per layer the
         difference's norm and its cosine with each compared vector; probes.h5: per hook held-out accuracy and
         macro-F1 with 95% cluster-bootstrap intervals, the shuffled-label control and the majority baseline;
         lens.csv (or lens.h5) and lens_top.jsonl: the logit lens per layer; cka.h5: linear CKA as a matrix;
         intervene/summary.{h5,csv}: per dataset, mode, site and layer Δ log p and Δ exact with paired intervals
         and the recovery of patching) and draws directions_contrast.png, directions_probes.png,
         directions_lens.png, directions_cka.png and directions_intervene.png into DIR (default RUN_DIR/figures),
         each where its file is there. A run with none of them, or a malformed file: exit 2 with one line.
compare: base against thinking model (docs/algorithms.md §A.8) from RUN_A/annotate/spans.h5 and RUN_B's: per
         model the mean spans per response and each label's share of a response's spans (averaged over
         responses) with 95% bootstrap intervals, and B − A (paired by prompt id when both runs have the same
         ids); prints the table (rows named A, B by --labels, default the run directories' names) and draws
         compare_behaviours.png into DIR (default RUN_A/figures). Bad input: exit 2 with one line.
A malformed file stops the command with exit status 1 (directions and compare: 2, bad input) and a message naming the
file and the dataset."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from .schema import SchemaError
from .sweep_summary import SHARES

PROG = "thinksteer-analysis"


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    """The command line: subcommands figures, summary, acceptance, taxonomy, basevec, hybrid, thinkedit, directions and compare."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    fig = sub.add_parser("figures", help="draw every figure of a run directory")
    fig.add_argument("run_dir")
    fig.add_argument("--out", default=None, help="output directory (default RUN_DIR/figures)")
    fig.add_argument("--format", default="png", choices=["png", "pdf"])
    fig.add_argument("--share", default="token_share", choices=SHARES,
                     help="behaviour fraction: token share among the steerable labels (§A.6, default) or span share among all labels")
    summ = sub.add_parser("summary", help="print the sweep table")
    summ.add_argument("run_dir")
    summ.add_argument("--share", default="token_share", choices=SHARES)
    acc = sub.add_parser("acceptance", help="+c raises, -c lowers, random controls do not move the behaviour")
    acc.add_argument("run_dir")
    acc.add_argument("--share", default="token_share", choices=SHARES)
    acc.add_argument("--min-prompts", type=int, default=100)
    acc.add_argument("--max-c", type=float, default=1.5, help="largest |c| a judged row may have (default 1.5)")
    acc.add_argument("--min-random", type=int, default=5, help="random directions needed at each sign (default 5)")
    tax = sub.add_parser("taxonomy", help="print the taxonomy sweep's table and the chosen clusters' titles")
    tax.add_argument("run_dir")
    bv = sub.add_parser("basevec", help="print the base-vector sweep's table and draw its training curves and holdout bars")
    bv.add_argument("run_dir")
    bv.add_argument("--out", default=None, help="figure directory (default RUN_DIR/figures)")
    hy = sub.add_parser("hybrid", help="print the hybrid sweep's table and draw its accuracy, gap and trace figures")
    hy.add_argument("run_dir")
    hy.add_argument("--out", default=None, help="figure directory (default RUN_DIR/figures)")
    hy.add_argument("--prompt", type=int, default=0, help="the prompt (index in the task) hybrid_trace draws (default 0)")
    hy.add_argument("--tokenizer", default=None,
                    help="tokenizer.json (or the model directory holding it) to decode the trace (default: the run's base model's)")
    te = sub.add_parser("thinkedit", help="print ThinkEdit's tables (split, heads, steering, evaluation) and draw its figures")
    te.add_argument("run_dir")
    te.add_argument("--out", default=None, help="figure directory (default RUN_DIR/figures)")
    di = sub.add_parser("directions", help="print the reasoning-direction tables (contrast, probes, lens, CKA, interventions) and draw their figures")
    di.add_argument("run_dir")
    di.add_argument("--out", default=None, help="figure directory (default RUN_DIR/figures)")
    cp = sub.add_parser("compare", help="§A.8: spans per response and each behaviour's share, base (RUN_A) against thinking (RUN_B)")
    cp.add_argument("run_a")
    cp.add_argument("run_b")
    cp.add_argument("--labels", type=_two_names, default=None, metavar="A,B", help="the models' names in the table (default the run directories' names)")
    cp.add_argument("--out", default=None, help="figure directory (default RUN_A/figures)")
    return parser


def _two_names(text: str) -> tuple[str, str]:
    """--labels A,B: two non-empty names."""
    names = [x.strip() for x in text.split(",")]
    if len(names) != 2 or not all(names):
        raise argparse.ArgumentTypeError(f"{text!r}: expected two names, A,B")
    return names[0], names[1]


def _bad_input(run: Callable[[], int]) -> int:
    """Runs a subcommand whose bad input (a missing or malformed file) is exit status 2 with one line on stderr."""
    try:
        return run()
    except (SchemaError, FileNotFoundError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    """Runs one subcommand; returns the exit status (the console script passes it to sys.exit)."""
    args = build_parser(prog).parse_args(argv)
    try:
        if args.command == "figures":
            from .figures import make_figures
            written = make_figures(args.run_dir, args.out, args.format, args.share)
            for path in written:
                print(path)
            if not written:
                print(f"error: {args.run_dir}: nothing to draw (no attribute, no sweep, no taxonomy, no basevec, no hybrid, no thinkedit, no directions)", file=sys.stderr)
                return 1
        elif args.command == "taxonomy":
            from .taxonomy_table import main as taxonomy_main
            return taxonomy_main(args.run_dir)
        elif args.command == "basevec":
            from .basevec_table import main as basevec_main
            return basevec_main(args.run_dir, args.out)
        elif args.command == "hybrid":
            from .hybrid_table import main as hybrid_main
            try:
                return hybrid_main(args.run_dir, args.out, prompt=args.prompt, tokenizer=args.tokenizer)
            except (ValueError, ImportError) as e:   # SchemaError included; a --prompt out of range; no `tokenizers`
                print(f"error: {e}", file=sys.stderr)
                return 1
        elif args.command == "thinkedit":
            from .thinkedit_table import main as thinkedit_main
            return thinkedit_main(args.run_dir, args.out)
        elif args.command == "directions":
            from .directions_table import main as directions_main
            return _bad_input(lambda: directions_main(args.run_dir, args.out))
        elif args.command == "compare":
            from .compare import main as compare_main
            return _bad_input(lambda: compare_main(args.run_a, args.run_b, args.labels, args.out))
        elif args.command == "acceptance":
            from .acceptance import main as acceptance_main
            return acceptance_main(args.run_dir, args.share, args.min_prompts, args.max_c, args.min_random)
        else:
            from .sweep_analysis import format_table
            from .sweep_summary import load_sweep_summary
            print(format_table(load_sweep_summary(args.run_dir), args.share))
    except (SchemaError, FileNotFoundError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
