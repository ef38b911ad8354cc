"""`thinksteer-analysis taxonomy RUN_DIR`: the taxonomy sweep's table as plain text (one row per (layer, K,
method): seeds, NMI, one-to-one accuracy, FVU, centroid orthogonality with their means over seeds, the
chosen group marked), then the titles of the first titled task of the chosen group, with an example each."""
from __future__ import annotations

import json
import math
import pathlib

from .taxonomy import read_taxonomy_summary, read_titles

COLUMNS = ("nmi", "matched", "fvu", "orthogonality")


def _cell(v: float) -> str:
    return "    -" if math.isnan(v) else f"{v:5.3f}"


def taxonomy_table(run_dir: str | pathlib.Path) -> str:
    s = read_taxonomy_summary(run_dir)
    shown = [c for c in COLUMNS if c in s.metrics]
    lines = [f"taxonomy sweep of {run_dir}: {len(s)} groups (mean over seeds); rule: {s.rule}",
             "layer   K  method  seeds  " + "  ".join(f"{c[:7]:>7}" for c in shown)]
    order = sorted(range(len(s)), key=lambda g: (str(s.method[g]), int(s.k[g]), int(s.layer[g])))
    for g in order:
        mark = "  <- chosen" if g == s.selected else ""
        cells = "  ".join(f"{_cell(float(s.mean[c][g])):>7}" for c in shown)
        lines.append(f"{int(s.layer[g]):5d} {int(s.k[g]):3d}  {str(s.method[g]):6s}  {int(s.n_seeds[g]):5d}  {cells}{mark}")
    lines += _titles(pathlib.Path(run_dir))
    return "\n".join(lines)


def _titles(run_dir: pathlib.Path) -> list[str]:
    index = run_dir / "titles" / "index.json"
    if not index.exists():
        return []
    tasks = json.loads(index.read_text())["tasks"]
    if not tasks:
        return []
    t = read_titles(run_dir, tasks[0]["key"])
    out = ["", f"titles ({t.source}) of {t.method} layer {t.layer} K {t.k} seed {t.seed}:"]
    for c in t.clusters:
        example = c.examples[0] if c.examples else ""
        example = example if len(example) <= 70 else example[:69] + "…"
        out.append(f"  {c.index:2d} {c.size:6d}  {c.title[:40]:40s}  {example}")
    return out


def main(run_dir: str) -> int:
    print(taxonomy_table(run_dir))
    return 0
