#!/usr/bin/env python3
"""Wrong results in a toy sweep's traces (docs/algorithms.md §A.6): per sweep point of RUN_DIR/sweep/tasks, the mean
number a trace of arithmetic statements "a op b = c" (op ×, +, − or -) whose c is wrong (the toy thinker's slips, each of
which it then corrects), of such statements in all, and of backtracking spans. Shows whether a steering push acts
through the slips that backtracking corrects rather than through the choice to backtrack.

Usage: scripts/count_slips.py RUN_DIR [--vector X] [--layer L]   (prints one line per point: baseline first, then the
vector points; random directions are left out)."""
import argparse
import pathlib
import re

import numpy as np

from thinksteer_analysis.sweep_task import load_sweep_task

STATEMENT = re.compile(r"(\d+) ([×+−-]) (\d+) = (\d+)")
OPS = {"×": lambda a, b: a * b, "+": lambda a, b: a + b, "−": lambda a, b: a - b, "-": lambda a, b: a - b}


def point_row(t):
    """Per trace of a task: wrong results, statements, backtracking spans."""
    found = [s for text in t.text for s in STATEMENT.findall(str(text))]
    wrong = sum(OPS[op](int(a), int(b)) != int(c) for a, op, b, c in found)
    return t.point, wrong / len(t), len(found) / len(t), float(np.mean(t.label_spans[:, t.labels.index("backtracking")]))


def main(run, vector, layer):
    # Every task file in the directory (the checked reader), also those of earlier plans the manifest no longer lists.
    tasks = [load_sweep_task(path) for path in sorted(pathlib.Path(run, "sweep", "tasks").glob("*.h5"))]
    points = [t for t in tasks if t.point is not None and (t.point.kind == "baseline" or (
        t.point.kind == "vector" and (vector is None or t.point.vector == vector) and (layer is None or t.point.layers == (layer,))))]
    rows = sorted(map(point_row, points), key=lambda r: (r[0].kind != "baseline", r[0].vector, r[0].layers, r[0].coef))
    print(f"{'point':42} {'wrong/trace':>11} {'statements':>10} {'backtracking spans':>18}")
    for point, wrong, statements, spans in rows:
        name = "baseline" if point.kind == "baseline" else f"{point.vector} @ {list(point.layers)} c = {point.coef:+g}"
        print(f"{name:42} {wrong:11.2f} {statements:10.2f} {spans:18.2f}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run")
    ap.add_argument("--vector")
    ap.add_argument("--layer", type=int)
    a = ap.parse_args()
    main(a.run, a.vector, a.layer)
