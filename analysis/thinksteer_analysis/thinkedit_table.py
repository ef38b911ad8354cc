"""`thinksteer-analysis thinkedit RUN_DIR [--out DIR]`: ThinkEdit (docs/algorithms.md §C) as markdown tables:
the probe traces' split (thinkedit/lengths.jsonl, thresholds.json), the best-scoring short-reasoning heads
(heads.h5) and the edit's selection (edit.json); all-layer steering (alpha/sweep: per α pooled over sampling
seeds its accuracy, mean thinking length and the paired change in length from the baseline, and Spearman's
correlation of α and length); layer-wise steering (layerwise/sweep: per layer the paired changes in length
and accuracy at each α); the evaluation of §C.6 (eval/original, eval/edited: accuracy mean ± sample std over
runs, accuracy on each run's shortest 5/10/20% of responses, the accuracy-against-length-threshold curve).
Intervals are "[lo, hi]", 95% percentile bootstrap over prompts (thinkedit_sweeps); "n/a" where nothing was
measured. Below the tables: the figures (thinkedit_figures) written into DIR (default RUN_DIR/figures). A
part the run does not have is skipped with a one-line note."""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .hybrid_table import _num
from .schema import PathLike
from .thinkedit_figures import ThinkeditInputs, draw_thinkedit, load_thinkedit_inputs
from .thinkedit_sweeps import BOOTSTRAP, CI, SHORTEST, Interval
from .report import print_table_and_draw, run_directory

TOP_HEADS = 10     # heads listed from heads.h5


def _cell(iv: Interval, digits: int = 3, sign: bool = False) -> str:
    """"v [lo, hi]" (the interval left out when not finite); "n/a" without a value."""
    if not math.isfinite(iv.value):
        return "n/a"

    def num(v: float) -> str:
        return (f"{v:+.{digits}f}" if sign else _num(v, digits)) if math.isfinite(v) else "n/a"
    return num(iv.value) + (f" [{num(iv.lo)}, {num(iv.hi)}]" if math.isfinite(iv.lo) and math.isfinite(iv.hi) else "")


def _markdown(header: Sequence[str], align: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"
    return [line(header), line(align)] + [line(r) for r in rows]


def lengths_lines(inputs: ThinkeditInputs) -> list[str]:
    """The probe traces' split: sizes of the sets, the thresholds, the closed traces' median length."""
    lengths, t = inputs.lengths, inputs.thresholds
    if lengths is None:
        return []
    closed = lengths.think_tokens[lengths.closed]
    sets = ", ".join(f"{name} {lengths.count(name)}" for name in ("long", "short", "mid", "invalid"))
    out = ["## Probe traces (thinkedit/lengths.jsonl)", "", f"{len(lengths)} traces: {sets}; closed traces' thinking length: median "
           + (f"{float(np.median(closed)):.1f}, range {int(closed.min())}..{int(closed.max())}" if closed.size else "n/a")]
    if t is not None:
        out.append(f"split by {t.split}: long above {t.long_above:g} thinking tokens ({t.n_long}), short below {t.short_below:g} ({t.n_short}), "
                   f"{t.n_valid} of {t.n_traces} traces closed")
    return out + [""]


def heads_lines(inputs: ThinkeditInputs) -> list[str]:
    """The best-scoring heads of heads.h5 and the heads edit.json says were edited."""
    h, e = inputs.heads, inputs.edit
    out: list[str] = []
    if h is not None:
        out += ["## Short-reasoning heads (thinkedit/heads.h5)", "",
                f"{h.layers} layers x {h.heads} heads, scores over {h.n_short} short traces ({h.hook}; direction {h.direction})", "",
                *_markdown(("rank", "layer", "head", "score"), ("---:", "---:", "---:", "---:"),
                           [[str(i + 1), str(l), str(hd), f"{h.scores[l, hd]:.4g}"] for i, (l, hd) in enumerate(h.top(TOP_HEADS))]), ""]
    if e is not None:
        share = f" ({100 * e.k / e.n_heads_total:.1f}%)" if e.n_heads_total else ""
        out += [f"edit (thinkedit/edit.json): {e.k} of {e.n_heads_total} heads{share} edited, {e.source} -> {e.out} ({e.dtype}): "
                + ", ".join(f"L{l}.H{hd}" for l, hd in e.heads), ""]
    return out


def alpha_lines(inputs: ThinkeditInputs) -> list[str]:
    """The all-layer steering table, one row per dataset's baseline and per series and α, and the Spearman lines."""
    if "alpha" not in inputs.sweeps:
        return []
    rows = [[r.dataset, r.vector or "baseline", r.hook or "-", f"{r.alpha:+g}" if not r.baseline else "0", str(r.stats.runs), str(r.stats.n),
             _cell(r.stats.accuracy), _cell(r.stats.think_tokens, 1), "-" if r.baseline else _cell(r.stats.delta_think, 1, sign=True)]
            for r in inputs.alpha]
    out = ["## All-layer steering (alpha/sweep)", "",
           "per α pooled over the sampling seeds (runs); n: responses; Δ length: paired change from the baseline of the same seed and prompt", "",
           *_markdown(("dataset", "vector", "hook", "α", "runs", "n", "accuracy [lo, hi]", "thinking length [lo, hi]", "Δ length [lo, hi]"),
                      ("---", "---", "---", "---:", "---:", "---:", "---:", "---:", "---:"), rows), ""]
    for (ds, vector, hook), rho in inputs.spearman.items():
        n = sum(1 for r in inputs.alpha if (r.dataset, r.vector, r.hook) == (ds, vector, hook))
        out.append(f"Spearman(α, mean thinking length) {ds} {vector} {hook}: {_num(rho)} over {n} α values"
                   + ("" if any(r.alpha == 0 and r.vector == vector and r.dataset == ds for r in inputs.alpha) else " and the baseline"))
    return out + [""]


def layer_lines(inputs: ThinkeditInputs) -> list[str]:
    """The layer-wise table: a row per dataset, vector and layer, Δ length and Δ accuracy per α (descending)."""
    if "layerwise" not in inputs.sweeps:
        return []
    alphas = sorted({r.alpha for r in inputs.layers}, reverse=True)
    header = ["dataset", "vector", "layer"] + [f"{name} α={a:+g} [lo, hi]" for a in alphas for name in ("Δ length", "Δ accuracy")]
    rows = []
    for key in dict.fromkeys((r.dataset, r.vector, r.layer) for r in inputs.layers):
        cells = [key[0], key[1], str(key[2])]
        for a in alphas:
            hit = [r for r in inputs.layers if (r.dataset, r.vector, r.layer) == key and r.alpha == a]
            cells += [_cell(hit[0].stats.delta_think, 1, sign=True), _cell(hit[0].stats.delta_accuracy, 3, sign=True)] if hit else ["n/a", "n/a"]
        rows.append(cells)
    n = len(rows)
    return ["## Layer-wise steering (layerwise/sweep)", "",
            "paired changes from the baseline of the same seed and prompt, pooled over the sampling seeds"
            + (f"; {n} layer(s)" if n else "; no single-layer vector points"), "",
            *_markdown(header, ["---", "---", "---:"] + ["---:"] * (len(header) - 3), rows), ""]


def eval_lines(inputs: ThinkeditInputs) -> list[str]:
    """The §C.6 table (a row per dataset and model) and each dataset's accuracy-against-threshold curve."""
    if "original" not in inputs.sweeps and "edited" not in inputs.sweeps:
        return []
    shares = [f"shortest {100 * s:g}%" for s in SHORTEST]
    rows = [[r.dataset, r.model, str(r.runs), str(r.n), _num(r.accuracy) + (f" ± {_num(r.accuracy_std)}" if math.isfinite(r.accuracy_std) else ""),
             *[_num(x) for x in r.shortest], _num(r.think_tokens, 1)] for r in inputs.evals]
    out = ["## Evaluation (eval/original, eval/edited; §C.6)", "",
           "accuracy: mean ± sample std over runs (sampling seeds); shortest k%: accuracy on each run's floor(k% · n) shortest scored responses "
           "(ties in prompt order), mean over runs; n: scored responses over all runs", "",
           *_markdown(("dataset", "model", "runs", "n", "accuracy", *shares, "thinking length"), ("---", "---", *["---:"] * (4 + len(shares))),
                      rows), ""]
    for ds, (thresholds, curves) in inputs.curves.items():
        models = list(curves)
        out += [f"### {ds}: accuracy of the responses with thinking length ≤ threshold (both models' runs pooled)", "",
                *_markdown(("threshold", *models), ("---:", *["---:"] * len(models)),
                           [[f"{th:.1f}", *[_num(float(curves[m][i])) for m in models]] for i, th in enumerate(thresholds)]), ""]
    return out


def thinkedit_table(inputs: ThinkeditInputs) -> str:
    """The heading and every table the inputs allow (without the figures)."""
    head = [f"# ThinkEdit: {inputs.run_dir}", "", f"intervals: {100 * CI:.0f}% percentile bootstrap over prompts ({BOOTSTRAP} resamples)", ""]
    body = lengths_lines(inputs) + heads_lines(inputs) + alpha_lines(inputs) + layer_lines(inputs) + eval_lines(inputs)
    return "\n".join(head + body).rstrip("\n")


def main(run_dir: PathLike, out: PathLike | None = None, fmt: str = "png", log: Callable[[str], Any] = print) -> int:
    """Prints the tables and writes the figures; FileNotFoundError when the run has no ThinkEdit output at all."""
    run = run_directory(run_dir)
    inputs = load_thinkedit_inputs(run, log)
    if inputs.empty:
        raise FileNotFoundError(f"{run}: no thinkedit/ files and no alpha, layerwise or eval sweep (run the ThinkEdit stages first)")
    return print_table_and_draw(thinkedit_table(inputs), lambda out_dir, f, written: draw_thinkedit(inputs, out_dir, f, written), run, out, fmt)
