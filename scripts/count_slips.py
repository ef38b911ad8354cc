#!/usr/bin/env python3
"""Wrong results in a toy sweep's traces (docs/algorithms.md §A.6): per sweep point of RUN_DIR/sweep/tasks, the mean
number a trace of arithmetic statements "a op b = c" (op ×, +, − or -) whose c is wrong (the toy thinker's slips, each of
which it then corrects), of such statements in all, and of backtracking spans. Shows whether a steering push acts
through the slips that backtracking corrects rather than through the choice to backtrack.

Usage: scripts/count_slips.py RUN_DIR [--vector X] [--layer L]   (prints one line per point: baseline first, then the
vector points; random directions are left out)."""
import argparse
import json
import pathlib
import re

import h5py
import numpy as np

STATEMENT = re.compile(r"(\d+) ([×+−-]) (\d+) = (\d+)")
OPS = {"×": lambda a, b: a * b, "+": lambda a, b: a + b, "−": lambda a, b: a - b, "-": lambda a, b: a - b}


def text(x):
    return x.decode() if isinstance(x, bytes) else str(x)


def point_row(path):
    with h5py.File(path, "r") as h:
        point = json.loads(text(h.attrs["point"]))
        texts = [text(t) for t in h["prompts/text"][:]]
        labels = [text(x) for x in h["labels"][:]]
        backtracking = h["prompts/label_spans"][:, labels.index("backtracking")]
    found = [s for t in texts for s in STATEMENT.findall(t)]
    wrong = sum(OPS[op](int(a), int(b)) != int(c) for a, op, b, c in found)
    return point, wrong / len(texts), len(found) / len(texts), float(np.mean(backtracking))


def main(run, vector, layer):
    rows = [point_row(p) for p in sorted(pathlib.Path(run, "sweep", "tasks").glob("*.h5"))]
    rows = [r for r in rows if r[0].get("kind") in ("baseline", "vector")]
    rows = [r for r in rows if r[0].get("kind") == "baseline" or ((vector is None or r[0].get("vector") == vector) and
                                                                 (layer is None or r[0].get("layers") == [layer]))]
    rows.sort(key=lambda r: (r[0].get("kind") != "baseline", str(r[0].get("vector")), str(r[0].get("layers")), r[0].get("coef", 0)))
    print(f"{'point':42} {'wrong/trace':>11} {'statements':>10} {'backtracking spans':>18}")
    for point, wrong, statements, spans in rows:
        name = "baseline" if point.get("kind") == "baseline" else f"{point['vector']} @ {point['layers']} c = {point['coef']:+g}"
        print(f"{name:42} {wrong:11.2f} {statements:10.2f} {spans:18.2f}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run")
    ap.add_argument("--vector")
    ap.add_argument("--layer", type=int)
    a = ap.parse_args()
    main(a.run, a.vector, a.layer)
