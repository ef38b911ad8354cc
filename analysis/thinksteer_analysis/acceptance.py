"""The steering acceptance table (the §A.6 claim of docs/algorithms.md as a test): for each behaviour vector
applied at a layer, +c must raise that behaviour's fraction and -c lower it, each by a paired
difference from the baseline whose bootstrap interval excludes zero, while the same-norm random
directions at the same layer and coefficients stay inside the interval the vector's two effects leave
between them: every random control's mean change lies above the upper end of the -c interval and below
the lower end of the +c interval, so the vector moves its behaviour further, in each direction, than a
random push of the same size. Whether a random control's own interval contains zero (no change at
all) is shown as a separate column: on a 4-layer model a push of 2.5x the mean activation's norm moves
every behaviour by a few points, and a paired test over 200 prompts sees that.

    python -m thinksteer_analysis acceptance RUN_DIR [--share token_share|span_share] [--min-prompts 100]

prints one row per behaviour, layer and |c|, then one verdict per behaviour: it passes when at least
one of its rows (a layer of the sweep, e.g. each layer `attribute` selected, and a |c|) passes; exit 0
when every behaviour passes, 1 otherwise."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

import numpy as np

from .schema import PathLike
from .sweep_summary import SweepSummary, load_sweep_summary

Cell = tuple[float, float, float]   # (delta, lo, hi) of a paired difference from the baseline, fraction units


class Row(TypedDict):
    """One acceptance row: a behaviour's vector at some layers and |c|, on one dataset."""
    vector: str
    layers: str
    c: float
    dataset: str
    n: int                          # prompts of the +c point
    base: float                     # the behaviour's baseline fraction
    plus: Cell                      # +c
    minus: Cell                     # -c
    random_plus: list[Cell]         # same-norm random directions at +c (one per seed)
    random_minus: list[Cell]
    raises: bool                    # +c's interval lies above 0
    lowers: bool                    # -c's interval lies below 0
    random_inside: bool             # every random control's mean lies between -c's upper and +c's lower end
    random_zero: bool               # every random control's interval contains 0
    ok: bool                        # raises and lowers and random_inside


def _cell(s: SweepSummary, share: str, i: int, k: int) -> Cell:
    return float(s.delta[share][i, k]), float(s.delta[share + "_lo"][i, k]), float(s.delta[share + "_hi"][i, k])


def acceptance_rows(s: SweepSummary, share: str = "token_share") -> list[Row]:
    """One Row per steered behaviour, layers, |c| and dataset that has both signs of "add" points (see
    Row). Random controls of several seeds: every one must stay inside."""
    p = s.points
    rows: list[Row] = []
    steered = [i for i in range(len(s)) if p["kind"][i] == "vector" and p["op"][i] == "add"]
    keys = sorted({(str(p["vector"][i]), str(p["layers"][i]), abs(float(p["coef"][i])), str(p["dataset"][i])) for i in steered})
    for vector, layers, c, dataset in keys:
        k = s.label_index(vector)
        if k is None or c == 0:
            continue

        def find(kind: str, sign: int) -> list[int]:
            return [i for i in range(len(s)) if p["kind"][i] == kind and p["vector"][i] == vector and p["layers"][i] == layers
                    and p["op"][i] == "add" and p["dataset"][i] == dataset and np.isclose(float(p["coef"][i]), sign * c)]
        plus, minus = find("vector", 1), find("vector", -1)
        rplus, rminus = find("random", 1), find("random", -1)
        if not plus or not minus:
            continue
        i_plus, i_minus = plus[0], minus[0]
        b = int(p["baseline"][i_plus])
        cell_plus, cell_minus = _cell(s, share, i_plus, k), _cell(s, share, i_minus, k)
        random_plus, random_minus = [_cell(s, share, i, k) for i in rplus], [_cell(s, share, i, k) for i in rminus]
        randoms = random_plus + random_minus
        raises, lowers = bool(cell_plus[1] > 0), bool(cell_minus[2] < 0)
        random_inside = bool(randoms) and all(cell_minus[2] < d < cell_plus[1] for d, _, _ in randoms)
        rows.append(Row(vector=vector, layers=layers, c=c, dataset=dataset, n=int(p["n_prompts"][i_plus]),
                        base=float(s.fraction[share][b, k]) if b >= 0 else float("nan"), plus=cell_plus, minus=cell_minus,
                        random_plus=random_plus, random_minus=random_minus, raises=raises, lowers=lowers, random_inside=random_inside,
                        random_zero=bool(randoms) and all(lo <= 0 <= hi for _, lo, hi in randoms),
                        ok=raises and lowers and random_inside))
    return rows


def _fmt(cell: Cell | None) -> str:
    if cell is None:
        return "-"
    d, lo, hi = cell
    return f"{100 * d:+6.1f} [{100 * lo:+5.1f}, {100 * hi:+5.1f}]"


def format_acceptance(rows: Sequence[Row], share: str, ci: float, min_prompts: int) -> str:
    """The acceptance table as text: one line per row with its verdict and why it fails."""
    out = [f"Steering acceptance ({share.replace('_', ' ')}, paired differences from the baseline in points of %, "
           f"{round(100 * ci)}% bootstrap intervals)",
           f"{'behaviour':<24} {'layer':>5} {'c':>5} {'n':>4} {'base %':>7}  {'+c':<22} {'-c':<22} {'random +c / -c':<46} {'rnd~0':<5} verdict"]
    for r in rows:
        rnd = " / ".join(_fmt(x) for x in r["random_plus"][:1] + r["random_minus"][:1]) or "-"
        enough = r["n"] >= min_prompts
        verdict = "PASS" if r["ok"] and enough else "FAIL"
        why = [w for w, bad in (("+c does not raise", not r["raises"]), ("-c does not lower", not r["lowers"]),
                                ("no random control" if not (r["random_plus"] or r["random_minus"]) else "random moves it as far", not r["random_inside"]), (f"n < {min_prompts}", not enough)) if bad]
        out.append(f"{r['vector']:<24} {r['layers']:>5} {r['c']:>5g} {r['n']:>4} {100 * r['base']:>7.1f}  {_fmt(r['plus']):<22} "
                   f"{_fmt(r['minus']):<22} {rnd:<46} {('yes' if r['random_zero'] else 'no'):<5} {verdict}{' (' + '; '.join(why) + ')' if why else ''}")
    return "\n".join(out)


def behaviour_verdicts(rows: Sequence[Row], min_prompts: int) -> dict[str, list[Row]]:
    """{behaviour: [passing rows]} (an empty list: the behaviour fails)."""
    out: dict[str, list[Row]] = {}
    for r in rows:
        out.setdefault(r["vector"], [])
        if r["ok"] and r["n"] >= min_prompts:
            out[r["vector"]].append(r)
    return out


def main(run_dir: PathLike, share: str = "token_share", min_prompts: int = 100) -> int:
    """Prints the table and one verdict per behaviour; 0 when every behaviour passes, 1 otherwise."""
    s = load_sweep_summary(run_dir)
    rows = acceptance_rows(s, share)
    print(format_acceptance(rows, share, s.ci, min_prompts))
    verdicts = behaviour_verdicts(rows, min_prompts)
    for vector, passing in verdicts.items():
        where = ", ".join(f"layer {r['layers']} c={r['c']:g}" for r in passing)
        print(f"{vector}: {'PASS at ' + where if passing else 'FAIL at every layer and c'}")
    return 0 if verdicts and all(verdicts.values()) else 1
