"""The steering acceptance table: the §A.6 claim of docs/algorithms.md as a test, with the rule written
down in docs/algorithms.md ("Steering acceptance").

For each behaviour, at the layer `attribute` picked first for it (attribute/attribution.h5 /selected[k, 0]),
and for some |c| <= max_c (1.5 by default, near the paper's coefficients):
  1. +c raises the behaviour's fraction and -c lowers it: the paired difference from the unsteered
     baseline has a bootstrap interval that excludes zero, on the intended side;
  2. the vector's point estimate lies outside every same-norm random direction's interval, on the
     intended side, on both sides of c: delta(+c) > hi of every random direction at +c, and
     delta(-c) < lo of every random direction at -c;
  3. there are at least `min_random` random directions at each sign (5: `sweep.random_directions = 5`).
The strict reading (a random push should not move the behaviour at all) is reported beside it: how
many random directions' intervals contain zero.

Rows at other layers or larger |c| are printed for reference, not judged. When the summary has the
vector at several layers for the same |c| (sweep.layers = selected with attribute.n_select large), the
attribution-vs-steering agreement is printed too: per layer the steering effect (delta(+c) - delta(-c)) / 2,
the layer that steers best, and whether it is attribute's first pick.

    python -m thinksteer_analysis acceptance RUN_DIR [--share token_share|span_share] [--min-prompts 100]
                                                     [--max-c 1.5] [--min-random 5]

exit 0 when every behaviour passes, 1 otherwise."""
from __future__ import annotations

import pathlib
from collections.abc import Sequence
from typing import TypedDict

import numpy as np

from .attribution import Attribution, attribution_path, load_attribution
from .schema import PathLike
from .sweep_summary import SweepSummary, load_sweep_summary, summary_path

Cell = tuple[float, float, float]   # (delta, lo, hi) of a paired difference from the baseline, fraction units

MAX_C = 1.5
MIN_RANDOM = 5


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
    random_plus: list[Cell]         # same-norm random directions at +c (one per direction seed)
    random_minus: list[Cell]
    first_pick: bool | None         # the layers are attribute's first pick (None: the run has no attribution)
    raises: bool                    # +c's interval lies above 0
    lowers: bool                    # -c's interval lies below 0
    beyond_random: bool             # delta(+c) above every random +c interval, delta(-c) below every random -c one
    random_with_zero: int           # strict reading: random directions (both signs) whose interval contains 0
    ok: bool                        # raises and lowers and beyond_random (random directions present)


def _cell(s: SweepSummary, share: str, i: int, k: int) -> Cell:
    return float(s.delta[share][i, k]), float(s.delta[share + "_lo"][i, k]), float(s.delta[share + "_hi"][i, k])


def first_picks(run_dir: PathLike) -> dict[str, str] | None:
    """{behaviour: layers text of attribute's first pick} from the run's attribution.h5 (None when the
    run has none, e.g. a sweep over listed layers)."""
    path = attribution_path(run_dir)
    return picks_of(load_attribution(path)) if path.exists() else None


def picks_of(a: Attribution) -> dict[str, str]:
    """{behaviour: layers text of attribute's first pick} of a loaded attribution (behaviours without one left out)."""
    return {label: str(picks[0]) for label in a.labels if (picks := a.selected_layers(label))}


def acceptance_rows(s: SweepSummary, share: str = "token_share", picks: dict[str, str] | None = None) -> list[Row]:
    """One Row per steered behaviour, layers, |c| and dataset that has both signs of "add" points (see Row)."""
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
        if not plus or not minus:
            continue
        i_plus, i_minus = plus[0], minus[0]
        b = int(p["baseline"][i_plus])
        cell_plus, cell_minus = _cell(s, share, i_plus, k), _cell(s, share, i_minus, k)
        random_plus = [_cell(s, share, i, k) for i in find("random", 1)]
        random_minus = [_cell(s, share, i, k) for i in find("random", -1)]
        raises, lowers = bool(cell_plus[1] > 0), bool(cell_minus[2] < 0)
        beyond = bool(random_plus and random_minus and all(cell_plus[0] > hi for _, _, hi in random_plus)
                      and all(cell_minus[0] < lo for _, lo, _ in random_minus))
        rows.append(Row(vector=vector, layers=layers, c=c, dataset=dataset, n=int(p["n_prompts"][i_plus]),
                        base=float(s.fraction[share][b, k]) if b >= 0 else float("nan"), plus=cell_plus, minus=cell_minus,
                        random_plus=random_plus, random_minus=random_minus,
                        first_pick=None if picks is None else picks.get(vector) == layers,
                        raises=raises, lowers=lowers, beyond_random=beyond,
                        random_with_zero=sum(1 for _, lo, hi in random_plus + random_minus if lo <= 0 <= hi),
                        ok=raises and lowers and beyond))
    return rows


def judged(r: Row, max_c: float = MAX_C) -> bool:
    """Whether a row counts for its behaviour's verdict: at attribute's first pick (or any layer when the
    run has no attribution) and |c| <= max_c."""
    return r["first_pick"] is not False and r["c"] <= max_c + 1e-12


def failures(r: Row, min_prompts: int, min_random: int = MIN_RANDOM) -> list[str]:
    """Why a row fails the rule (empty: it passes)."""
    n_random = min(len(r["random_plus"]), len(r["random_minus"]))
    return [w for w, bad in (("+c does not raise", not r["raises"]), ("-c does not lower", not r["lowers"]),
                             (f"{n_random} random directions < {min_random}", n_random < min_random),
                             ("inside a random direction's interval", n_random > 0 and not r["beyond_random"]),
                             (f"n < {min_prompts}", r["n"] < min_prompts)) if bad]


def _fmt(cell: Cell | None) -> str:
    if cell is None:
        return "-"
    d, lo, hi = cell
    return f"{100 * d:+6.1f} [{100 * lo:+5.1f}, {100 * hi:+5.1f}]"


def _spread(cells: Sequence[Cell]) -> str:
    """The random directions' point estimates and the outer ends of their intervals."""
    if not cells:
        return "-"
    ds = [100 * d for d, _, _ in cells]
    return f"{min(ds):+5.1f}..{max(ds):+5.1f} [{100 * min(lo for _, lo, _ in cells):+5.1f}, {100 * max(hi for _, _, hi in cells):+5.1f}]"


def format_acceptance(rows: Sequence[Row], share: str, ci: float, min_prompts: int, max_c: float = MAX_C,
                      min_random: int = MIN_RANDOM) -> str:
    """The acceptance table as text: one line per row with its verdict and why it fails."""
    out = [f"Steering acceptance ({share.replace('_', ' ')}, paired differences from the baseline in points of %, "
           f"{round(100 * ci)}% bootstrap intervals; random: the directions' estimates min..max [lowest lo, highest hi])",
           f"{'behaviour':<24} {'layer':>5} {'c':>5} {'n':>4} {'base %':>7}  {'+c':<22} {'-c':<22} {'random +c':<30} {'random -c':<30} "
           f"{'rnd~0':>5}  verdict"]
    for r in rows:
        why = failures(r, min_prompts, min_random)
        verdict = ("PASS" if not why else "FAIL") if judged(r, max_c) else ("pass" if not why else "fail") + " (not judged)"
        n_rand = len(r["random_plus"]) + len(r["random_minus"])
        out.append(f"{r['vector']:<24} {r['layers']:>5} {r['c']:>5g} {r['n']:>4} {100 * r['base']:>7.1f}  {_fmt(r['plus']):<22} "
                   f"{_fmt(r['minus']):<22} {_spread(r['random_plus']):<30} {_spread(r['random_minus']):<30} "
                   f"{r['random_with_zero']:>2}/{n_rand:<2}  {verdict}{' (' + '; '.join(why) + ')' if why else ''}")
    return "\n".join(out)


def behaviour_verdicts(rows: Sequence[Row], min_prompts: int, max_c: float = MAX_C, min_random: int = MIN_RANDOM) -> dict[str, list[Row]]:
    """{behaviour: [passing judged rows]} (an empty list: the behaviour fails)."""
    out: dict[str, list[Row]] = {}
    for r in rows:
        out.setdefault(r["vector"], [])
        if judged(r, max_c) and not failures(r, min_prompts, min_random):
            out[r["vector"]].append(r)
    return out


def smallest_passing_c(rows: Sequence[Row], vector: str, min_prompts: int, min_random: int = MIN_RANDOM) -> float | None:
    """The smallest |c| at attribute's first pick (any layer without attribution) where `vector` passes
    the rule, whatever max_c; None when no swept |c| passes. With the effect-against-c curve (several
    |c| on the sweep axis) this is the strength the model needs, reported beside the verdict."""
    cs = [r["c"] for r in rows if r["vector"] == vector and r["first_pick"] is not False and not failures(r, min_prompts, min_random)]
    return min(cs) if cs else None


class Agreement(TypedDict):
    """Attribution against steering for one behaviour, dataset and |c|: the effect at every swept layer."""
    vector: str
    dataset: str
    c: float
    effects: dict[str, float]       # layers -> (delta(+c) - delta(-c)) / 2, fraction units
    best: str                       # the layers with the largest effect
    first_pick: str | None
    agrees: bool | None             # best == first pick (None: no attribution)


def agreement(rows: Sequence[Row], picks: dict[str, str] | None) -> list[Agreement]:
    """Per behaviour, dataset and |c| swept at two or more single layers: which layer steers best."""
    groups: dict[tuple[str, str, float], dict[str, float]] = {}
    for r in rows:
        if "+" not in r["layers"]:
            groups.setdefault((r["vector"], r["dataset"], r["c"]), {})[r["layers"]] = (r["plus"][0] - r["minus"][0]) / 2
    out: list[Agreement] = []
    for (vector, dataset, c), effects in sorted(groups.items()):
        if len(effects) < 2:
            continue
        best = max(effects, key=lambda layer: effects[layer])
        pick = None if picks is None else picks.get(vector)
        out.append(Agreement(vector=vector, dataset=dataset, c=c, effects=dict(sorted(effects.items(), key=lambda x: int(x[0]))), best=best,
                             first_pick=pick, agrees=None if pick is None else pick == best))
    return out


def format_agreement(items: Sequence[Agreement]) -> str:
    out = ["Attribution against steering: effect (delta(+c) - delta(-c)) / 2 per layer, points of %; * = attribute's first pick"]
    for a in items:
        cells = " ".join(f"L{layer}{'*' if layer == a['first_pick'] else ''} {100 * e:+.1f}" for layer, e in a["effects"].items())
        verdict = "-" if a["agrees"] is None else ("first pick steers best" if a["agrees"] else f"layer {a['best']} steers best")
        out.append(f"{a['vector']:<24} c={a['c']:g}  {cells}  -> {verdict}")
    return "\n".join(out)


def run_dir_of(path: PathLike) -> pathlib.Path:
    """The run directory of a run directory or of its sweep/summary.h5."""
    p = summary_path(path)
    return p.parent.parent


def main(run_dir: PathLike, share: str = "token_share", min_prompts: int = 100, max_c: float = MAX_C, min_random: int = MIN_RANDOM) -> int:
    """Prints the table, the agreement when the sweep has several layers, and one verdict per behaviour;
    0 when every behaviour passes, 1 otherwise."""
    s = load_sweep_summary(run_dir)
    picks = first_picks(run_dir_of(run_dir))
    rows = acceptance_rows(s, share, picks)
    print(format_acceptance(rows, share, s.ci, min_prompts, max_c, min_random))
    if items := agreement(rows, picks):
        print()
        print(format_agreement(items))
    print()
    if picks is None:
        print("note: no attribute/attribution.h5 in the run: rows at every layer are judged")
    verdicts = behaviour_verdicts(rows, min_prompts, max_c, min_random)
    for vector, passing in verdicts.items():
        where = ", ".join(f"layer {r['layers']} c={r['c']:g}" for r in passing)
        smallest = smallest_passing_c(rows, vector, min_prompts, min_random)
        swept = sorted({r["c"] for r in rows if r["vector"] == vector and r["first_pick"] is not False})
        at = (f"smallest c where the rule holds: {smallest:g}" if smallest is not None
              else f"the rule holds at none of c = {', '.join(f'{c:g}' for c in swept)}")
        print(f"{vector}: {'PASS at ' + where if passing else f'FAIL (no row at the first pick with c <= {max_c:g} passes)'}; {at}")
    return 0 if verdicts and all(verdicts.values()) else 1
