"""`thinksteer-analysis directions RUN_DIR [--out DIR]`: the reasoning-direction analyses (docs/directions.md) as
markdown tables, each where the run has its file: the contrast direction per layer (directions/contrast.csv: its
norm and cosine with each compared vector), the probes per hook (directions/probes.h5: held-out accuracy and
macro-F1 with their 95% cluster-bootstrap intervals, the shuffled-label control, the majority-class baseline), the
logit lens per layer (directions/lens.csv, or computed from lens.h5; and the first rows of lens_top.jsonl), linear
CKA as a matrix (directions/cka.h5, two decimals) and the intervention sweep (intervene/summary.{h5,csv}: a row per
dataset, mode, site and layer with Δ log p and Δ exact with their paired-bootstrap intervals and the recovery of
patching). Intervals are "[lo, hi]"; "n/a" where nothing was measured. Below the tables: the figures
(directions_figures) written into DIR (default RUN_DIR/figures). A part the run does not have is noted and skipped;
a run with none of them is an error naming it."""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .directions import Cka
from .directions_figures import DirectionsInputs, draw_directions, intervene_series, load_directions_inputs
from .hybrid_table import _num
from .report import print_table_and_draw, run_directory
from .schema import PathLike
from .thinkedit_table import _markdown

TOP_ROWS = 3          # lens_top.jsonl rows printed
TOP_LAYERS = 12       # layers of each printed (evenly spaced, the last included)


def _ci(v: float, lo: float, hi: float, digits: int = 3, sign: bool = False) -> str:
    """"v [lo, hi]" (the interval left out when not finite); "n/a" without a value."""
    def num(x: float) -> str:
        return (f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}") if math.isfinite(x) else "n/a"
    if not math.isfinite(v):
        return "n/a"
    return num(v) + (f" [{num(lo)}, {num(hi)}]" if math.isfinite(lo) and math.isfinite(hi) else "")


def _layer(l: int) -> str:
    return "ln_final" if l < 0 else str(l)


def contrast_lines(inputs: DirectionsInputs) -> list[str]:
    """A row per layer: hook, rows of each set, the norm of the difference, the cosine with each compared vector."""
    c = inputs.contrast
    if c is None:
        return []
    names = list(c.cos)
    rows = [[str(c.layer[i]), str(c.hook[i]), str(c.n_a[i]), str(c.n_b[i]), f"{c.norm[i]:.4g}", *[_num(float(c.cos[n][i])) for n in names]]
            for i in np.argsort(c.layer, kind="stable")]
    return [f"## Contrast direction ({c.path.name})", "", "norm: ‖mean(A) − mean(B)‖ of the raw difference; cos_<name>: cosine with the "
            "compared vector at that layer", "",
            *_markdown(("layer", "hook", "n_a", "n_b", "norm", *[f"cos_{n}" for n in names]), ("---:", "---", "---:", "---:", "---:", *["---:"] * len(names)),
                       rows), ""]


def probe_lines(inputs: DirectionsInputs) -> list[str]:
    """A row per hook: layer, accuracy and macro-F1 with intervals, the shuffled-label control; then the baseline."""
    p = inputs.probes
    if p is None:
        return []
    rows = [[str(p.hooks[i]), _layer(int(p.layer[i])), _ci(p.accuracy[i], *p.accuracy_ci[i]), _ci(p.macro_f1[i], *p.macro_f1_ci[i]),
             _num(float(p.shuffled_accuracy[i])), _num(float(p.shuffled_macro_f1[i]))] for i in range(len(p))]
    return [f"## Probes ({p.path.name})", "",
            f"{len(p.classes)} classes ({', '.join(p.classes.tolist())}); train {p.n_train} rows ({p.n_train_traces} traces), held out "
            f"{p.n_test} rows ({p.n_test_traces} traces); l2 {p.l2:g}; intervals: 95% cluster bootstrap over held-out traces", "",
            *_markdown(("hook", "layer", "accuracy [lo, hi]", "macro-F1 [lo, hi]", "shuffled accuracy", "shuffled macro-F1"),
                       ("---", "---:", "---:", "---:", "---:", "---:"), rows), "",
            f"majority baseline (always the most frequent training class): accuracy {_num(p.majority_accuracy)}", ""]


def _top_line(t: Any) -> str:
    layers = t.layers
    if len(layers) > TOP_LAYERS:
        keep = sorted({int(round(x)) for x in np.linspace(0, len(layers) - 1, TOP_LAYERS)})
        layers = [layers[i] for i in keep]
    cells = [f"L{_layer(l)} {top[0][0]!r} {top[0][1]:.2f}" if top else f"L{_layer(l)} -" for l, top in layers]
    return f"row {t.row} (sequence {t.sequence_id}, token {t.token_index}) {t.token_text!r} → {t.target_text!r}: " + ", ".join(cells)


def lens_lines(inputs: DirectionsInputs) -> list[str]:
    """A row per layer of lens.csv (or lens.h5's numbers), then the top-1 tokens of the first rows of lens_top.jsonl."""
    t = inputs.lens
    out: list[str] = []
    if t is not None:
        source = t.path.name if t.path.suffix == ".csv" else f"{t.path.name}; no lens.csv"
        rows_note = f" over {inputs.lens_rows} rows" if inputs.lens_rows is not None else ""
        rows = [[_layer(int(t.layer[i])), f"{t.kl_mean[i]:.3f}", _num(float(t.target_prob_mean[i])), f"{t.target_rank_median[i]:g}",
                 _num(float(t.top1_agreement[i]))] for i in range(len(t))]
        out += [f"## Logit lens ({source})", "", f"KL(final ‖ lens) in nats, means{rows_note}; eventual token: the model's own top-1 at the "
                "last layer; top-1 agreement: share of rows whose lens top-1 is it", "",
                *_markdown(("layer", "KL mean", "target prob mean", "target rank median", "top-1 agreement"), ("---:",) * 5, rows), ""]
    if inputs.lens_top:
        out += ["lens_top.jsonl, top-1 token per layer (token → eventual token):", "", *[_top_line(x) for x in inputs.lens_top[:TOP_ROWS]], ""]
    return out


def cka_matrix(k: Cka, m: np.ndarray) -> list[str]:
    """The matrix as fixed-width text, two decimals: rows file A's layers, columns file B's."""
    def names(layers: np.ndarray, hooks: np.ndarray) -> list[str]:
        out = [_layer(l) for l in layers.tolist()]
        return out if len(set(out)) == len(out) else hooks.tolist()
    rows, cols = names(k.layers_a, k.hooks_a), names(k.layers_b, k.hooks_b)
    width = max(4, *map(len, cols))
    head = max(map(len, rows))
    lines = [" " * head + " " + " ".join(c.rjust(width) for c in cols)]
    for r, values in zip(rows, m):
        lines.append(r.rjust(head) + " " + " ".join((f"{v:.2f}" if math.isfinite(v) else "n/a").rjust(width) for v in values))
    return lines


def cka_lines(inputs: DirectionsInputs) -> list[str]:
    k = inputs.cka
    if k is None:
        return []
    a, b = k.model_a or k.input_a or "A", k.model_b or k.input_b or "B"
    same = np.array_equal(k.hooks_a, k.hooks_b) and a == b
    what = f"layers of {a} against themselves" if same else f"rows: {a}; columns: {b}"
    rbf = "; RBF CKA also in the file (directions_cka)" if k.rbf is not None else ""
    return [f"## CKA ({k.path.name})", "", f"linear CKA, {what}; {k.n_rows} of {k.n_rows_total} rows{rbf}", "", "```", *cka_matrix(k, k.linear),
            "```", ""]


def intervene_lines(inputs: DirectionsInputs) -> list[str]:
    s = inputs.intervene
    if s is None:
        return []
    rows = []
    for _, idx in intervene_series(s):
        for i in idx:
            layer = int(s["layer"][i])  # -1: every layer (directional ablation)
            rows.append([str(s["dataset"][i]), str(s["mode"][i]), str(s["site"][i]) or "-", "all" if layer < 0 else str(layer), str(s["n"][i]),
                         _num(float(s["logp_clean"][i])), _num(float(s["logp"][i])),
                         _ci(s["delta_logp"][i], s["delta_logp_lo"][i], s["delta_logp_hi"][i], sign=True),
                         _ci(s["delta_exact"][i], s["delta_exact_lo"][i], s["delta_exact_hi"][i], sign=True),
                         "-" if not math.isfinite(s["recovery"][i]) else _ci(s["recovery"][i], s["recovery_lo"][i], s["recovery_hi"][i])])
    return [f"## Interventions ({s.path.parent.name}/{s.path.name})", "",
            "Δ: intervened − clean, 95% paired bootstrap over prompts; exact: every answer token the argmax; recovery (patching): "
            "mean(logp − logp_clean) / mean(logp_source − logp_clean)", "",
            *_markdown(("dataset", "mode", "site", "layer", "n", "log p clean", "log p", "Δ log p [lo, hi]", "Δ exact [lo, hi]", "recovery [lo, hi]"),
                       ("---", "---", "---", "---:", "---:", "---:", "---:", "---:", "---:", "---:"), rows), ""]


def directions_table(inputs: DirectionsInputs) -> str:
    """The heading and every table the inputs allow (without the figures)."""
    parts: Sequence[Callable[[DirectionsInputs], list[str]]] = (contrast_lines, probe_lines, lens_lines, cka_lines, intervene_lines)
    body = [line for part in parts for line in part(inputs)]
    return "\n".join([f"# Reasoning directions: {inputs.run_dir}", "", *body]).rstrip("\n")


def main(run_dir: PathLike, out: PathLike | None = None, fmt: str = "png", log: Callable[[str], Any] = print) -> int:
    """Prints the notes, the tables and the figures written; FileNotFoundError (nothing printed before it) when the
    run has none of the files."""
    run = run_directory(run_dir)
    notes: list[str] = []
    inputs = load_directions_inputs(run, notes.append)
    if inputs.empty:
        raise FileNotFoundError(f"{run}: no directions/ or intervene/ results (contrast.csv, probes.h5, lens.csv/lens.h5, cka.h5, "
                                "intervene/summary.h5 or .csv); run `thinksteer directions ...` or the intervene sweep first")
    for note in notes:
        log(note)
    return print_table_and_draw(directions_table(inputs), lambda out_dir, f, written: draw_directions(inputs, out_dir, f, written), run, out, fmt)
