"""`thinksteer-analysis hybrid RUN_DIR [--out DIR] [--prompt N] [--tokenizer PATH]`: the hybrid sweep
(`thinksteer hybrid`; docs/algorithms.md "The hybrid model") as a markdown table from hybrid/summary.h5, one
row per task in plan order: dataset, role, rule, ablation, layer, seed, accuracy with its bootstrap
interval, the gap recovered (row − base) / (thinking − base), the paired difference hybrid − row (ablation
rows), the steered share of the emitted tokens and the mean thinking length. Intervals are "[lo, hi]"; "-"
where the quantity does not apply (gap of the base and thinking rows, hybrid − row of rows that are not
ablations), "n/a" where it was not measured. Below the table: the summary's notes and the figures
(hybrid_figures) written into DIR (default RUN_DIR/figures), the trace of prompt N (default 0)."""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .hybrid import HYBRID_SUMMARY, HybridSummary, finished_hybrid_tasks
from .hybrid_figures import HybridInputs, draw_hybrid, load_hybrid_inputs
from .schema import PathLike
from .report import print_table_and_draw, run_directory

HEADER = ("dataset", "role", "rule", "ablation", "layer", "seed", "accuracy [lo, hi]", "gap [lo, hi]", "hybrid − row [lo, hi]", "steered share",
          "thinking length")
ALIGN = ("---", "---", "---", "---", "---:", "---:", "---:", "---:", "---:", "---:", "---:")


def _num(v: float, digits: int = 3) -> str:
    return f"{v:.{digits}f}" if math.isfinite(v) else "n/a"


def _interval(s: HybridSummary, name: str, i: int, applies: bool) -> str:
    """"v [lo, hi]" (the interval left out when not finite); "-" when the quantity does not apply to the row."""
    if not applies:
        return "-"
    v, lo, hi = s.interval(name, i)
    if not math.isfinite(v):
        return "n/a"
    return _num(v) + (f" [{_num(lo)}, {_num(hi)}]" if math.isfinite(lo) and math.isfinite(hi) else "")


def hybrid_rows(s: HybridSummary) -> list[list[str]]:
    """The table's rows (cells as printed), in the summary's (plan) order."""
    rows = []
    for i in range(len(s)):
        role = str(s.role[i])
        hybrid = role == "hybrid"
        ablated = hybrid and s.ablation[i] != "none"
        rows.append([str(s.dataset[i]), role, str(s.rule[i]) or "-", str(s.ablation[i]) or "-", str(int(s.layer[i])) if hybrid else "-",
                     str(int(s.seed[i])), _interval(s, "accuracy", i, True), _interval(s, "gap", i, hybrid), _interval(s, "vs_hybrid", i, ablated),
                     _num(float(s.steered_share[i])) if hybrid else "-", _num(float(s.think_tokens[i]), 1)])
    return rows


def _markdown(rows: list[list[str]]) -> list[str]:
    def line(cells: tuple[str, ...] | list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"
    return [line(HEADER), line(ALIGN)] + [line(r) for r in rows]


def _notes(inputs: HybridInputs) -> list[str]:
    s = inputs.summary
    out: list[str] = []
    if s is None:
        return out
    listed = set(s.key.tolist())
    extra = [p.stem for p in finished_hybrid_tasks(inputs.run_dir) if p.stem not in listed]
    if extra:
        out.append(f"note: {len(extra)} finished task file(s) not in summary.h5 ({', '.join(extra)}): rerun `thinksteer reduce`")
    for d in s.datasets():
        for role in ("base", "thinking"):
            if not s.rows(d, role):
                out.append(f"note: {d} has no {role} row: its gap is not defined")
    return out


def hybrid_table(inputs: HybridInputs) -> str:
    """The heading, the markdown table and the notes (without the figures)."""
    s = inputs.summary
    if s is None:
        return f"# Hybrid sweep: {inputs.run_dir}\n\nno summary.h5 (`thinksteer reduce` has not run)"
    head = [f"# Hybrid sweep: {inputs.run_dir}", "",
            f"summary.h5: {len(s)} task(s){' (partial)' if s.partial else ''}; intervals: {100 * s.ci:.0f}% percentile bootstrap over "
            f"prompts ({s.bootstrap} resamples)", "",
            "accuracy: over the prompts with a reference answer; gap: (row − base) / (thinking − base); hybrid − row: paired difference "
            "from the hybrid with ablation none of the same dataset, layer and rule; steered share: steered steps / new tokens, mean over "
            "prompts; thinking length: mean thinking tokens.", ""]
    notes = _notes(inputs)
    return "\n".join(head + _markdown(hybrid_rows(s)) + ([""] + notes if notes else []))


def main(run_dir: PathLike, out: PathLike | None = None, fmt: str = "png", prompt: int = 0, tokenizer: PathLike | None = None,
         log: Callable[[str], Any] = print) -> int:
    """Prints the table and writes the figures; FileNotFoundError when the run has no hybrid summary."""
    run = run_directory(run_dir)
    inputs = load_hybrid_inputs(run, log, prompt, tokenizer)
    if inputs.empty:
        raise FileNotFoundError(f"{HYBRID_SUMMARY.path(run)}: no such file (run `thinksteer reduce` after `thinksteer hybrid` first)")
    if inputs.trace is not None and not 0 <= prompt < inputs.trace.prompts:
        raise ValueError(f"--prompt {prompt}: {inputs.trace.path} has {inputs.trace.prompts} prompts")
    return print_table_and_draw(hybrid_table(inputs), lambda out_dir, f, written: draw_hybrid(inputs, out_dir, f, written), run, out, fmt)
