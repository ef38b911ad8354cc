"""What the figures and tables compute from a sweep summary (sweep_summary.SweepSummary): the series of
points (kind, vector, layers, hook, op, positions), their levels per coefficient, the §A.6 bar triple per
behaviour, and the sweep as a plain-text table.

    from thinksteer_analysis import fraction_bars, format_table, load_sweep_summary
    s = load_sweep_summary(run_dir)
    for b in fraction_bars(s): ...                       # the §A.6 bar figure's numbers
    print(format_table(s))

    python -m thinksteer_analysis summary RUN_DIR        # the table as plain text
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .sweep_summary import SweepSummary

SeriesKey = tuple[str, str, str, str, str, str]   # (kind, vector, layers, hook, op, positions)
Interval = tuple[float, float]                     # (delta - lo, hi - delta)

# ---- grouping the points into what the figures draw ------------------------------------------------

def series_keys(s: SweepSummary) -> list[SeriesKey]:
    """Per point, the series it belongs to: (kind, vector, layers, hook, op, positions). Points of one
    series differ in coefficient (and seed)."""
    p = s.points
    return [(str(p["kind"][i]), str(p["vector"][i]), str(p["layers"][i]), str(p["hook"][i]), str(p["op"][i]), str(p["positions"][i]))
            for i in range(len(s))]


def varying(s: SweepSummary, rows: Sequence[int], field_name: str) -> bool:
    """Whether `field_name` takes more than one value over `rows` (then labels must name it)."""
    return len(set(s.points[field_name][rows].tolist())) > 1


@dataclass
class Level:
    """One coefficient of one series, averaged over the points there (several seeds): the fraction of
    column k, its paired delta against the baseline and the delta's 95% interval (lo/hi: the envelope over
    seeds), and the same for accuracy and thinking length."""
    coef: float
    rows: list[int]
    fraction: float
    delta: float
    lo: float
    hi: float
    accuracy: float
    accuracy_delta: float
    accuracy_lo: float
    accuracy_hi: float
    think_tokens: float
    think_delta: float
    think_lo: float
    think_hi: float


def _mean(x: npt.ArrayLike) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(np.nanmean(x)) if x.size and not np.all(np.isnan(x)) else math.nan


def _lo(x: npt.ArrayLike) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(np.nanmin(x)) if x.size and not np.all(np.isnan(x)) else math.nan


def _hi(x: npt.ArrayLike) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(np.nanmax(x)) if x.size and not np.all(np.isnan(x)) else math.nan


def levels(s: SweepSummary, rows: Sequence[int], k: int | None, share: str = "token_share") -> list[Level]:
    """The points `rows` (one series) by coefficient, ascending; k = the label column (None: no fraction)."""
    p, d = s.points, s.delta
    out = []
    for c in sorted(set(p["coef"][rows].tolist())):
        r = [i for i in rows if p["coef"][i] == c]
        col: Callable[[np.ndarray], np.ndarray] = (lambda a: a[r, k]) if k is not None else (lambda a: np.full(len(r), math.nan))
        out.append(Level(coef=float(c), rows=r, fraction=_mean(col(s.fraction[share])), delta=_mean(col(d[share])),
                         lo=_lo(col(d[share + "_lo"])), hi=_hi(col(d[share + "_hi"])),
                         accuracy=_mean(p["accuracy"][r]), accuracy_delta=_mean(d["accuracy"][r]),
                         accuracy_lo=_lo(d["accuracy_lo"][r]), accuracy_hi=_hi(d["accuracy_hi"][r]),
                         think_tokens=_mean(p["think_tokens"][r]), think_delta=_mean(d["think_tokens"][r]),
                         think_lo=_lo(d["think_tokens_lo"][r]), think_hi=_hi(d["think_tokens_hi"][r])))
    return out


def baseline_level(s: SweepSummary, rows: Sequence[int], k: int | None, share: str = "token_share") -> Level | None:
    """The baseline of the points `rows` (their /points/baseline rows, averaged if several) as a Level at coef 0."""
    b = sorted(set(int(x) for x in s.points["baseline"][rows] if x >= 0))
    if not b:
        return None
    frac = _mean(s.fraction[share][b, k]) if k is not None else math.nan
    return Level(coef=0.0, rows=b, fraction=frac, delta=0.0, lo=math.nan, hi=math.nan,
                 accuracy=_mean(s.points["accuracy"][b]), accuracy_delta=0.0, accuracy_lo=math.nan, accuracy_hi=math.nan,
                 think_tokens=_mean(s.points["think_tokens"][b]), think_delta=0.0, think_lo=math.nan, think_hi=math.nan)


def vector_labels(s: SweepSummary) -> list[str]:
    """Behaviours that have steering-vector points, in the file's label order (others after, sorted)."""
    v = set(s.points["vector"][s.points["kind"] == "vector"].tolist()) - {""}
    return [l for l in s.labels if l in v] + sorted(v - set(s.labels))


@dataclass
class Bars:
    """The §A.6 bar triple of one behaviour: baseline, +coef, -coef at the layer(s) where they separate most."""
    label: str
    layers: str                  # the chosen /points/layers value
    hook: str
    baseline: float              # behaviour fraction, baseline
    pos: float                   # at the largest positive coefficient (nan if none)
    neg: float                   # at the most negative coefficient (nan if none)
    pos_coef: float
    neg_coef: float
    pos_err: Interval            # (delta - lo, hi - delta) of the paired delta's 95% interval
    neg_err: Interval
    random_pos: float = math.nan  # norm-matched random vector at the same layers and coefficients
    random_neg: float = math.nan
    random_pos_err: Interval = (math.nan, math.nan)
    random_neg_err: Interval = (math.nan, math.nan)


def _err(level: Level | None) -> Interval:
    return (level.delta - level.lo, level.hi - level.delta) if level is not None else (math.nan, math.nan)


def _ends(lv: Sequence[Level]) -> tuple[Level | None, Level | None]:
    """The levels at the largest positive and the most negative coefficient (None where there is none)."""
    pos = [x for x in lv if x.coef > 0]
    neg = [x for x in lv if x.coef < 0]
    return (pos[-1] if pos else None), (neg[0] if neg else None)


def fraction_bars(s: SweepSummary, share: str = "token_share") -> list[Bars]:
    """One Bars per steered behaviour (vector_labels), from the "add" points: for each layers value, the
    fractions at the largest |coef| of each sign; the layers value with the largest f(+) - f(-) (a missing
    sign counts as the baseline) is kept. Random controls ("random" points for the same behaviour, layers,
    hook and op) at the same coefficients fill random_*. Behaviours without a column in /labels are left out."""
    keys = series_keys(s)
    out = []
    for label in vector_labels(s):
        k = s.label_index(label)
        if k is None:
            continue
        best: tuple[float, SeriesKey, Level | None, Level | None, Level | None] | None = None
        groups = sorted({key for key in keys if key[0] == "vector" and key[1] == label and key[4] == "add"}, key=lambda t: (layers_order(t[2]), t[3], t[5]))
        for key in groups:
            rows = [i for i, kk in enumerate(keys) if kk == key]
            base = baseline_level(s, rows, k, share)
            pos, neg = _ends(levels(s, rows, k, share))
            if pos is None and neg is None:
                continue
            b0 = base.fraction if base is not None else math.nan
            fp = pos.fraction if pos is not None else b0
            fn = neg.fraction if neg is not None else b0
            sep = fp - fn if not (math.isnan(fp) or math.isnan(fn)) else -math.inf
            if best is None or sep > best[0]:
                best = (sep, key, base, pos, neg)
        if best is None:
            continue
        _, key, base, pos, neg = best
        bars = Bars(label=label, layers=key[2], hook=key[3], baseline=base.fraction if base else math.nan,
                    pos=pos.fraction if pos else math.nan, neg=neg.fraction if neg else math.nan,
                    pos_coef=pos.coef if pos else math.nan, neg_coef=neg.coef if neg else math.nan,
                    pos_err=_err(pos), neg_err=_err(neg))
        rkey = ("random",) + key[1:]
        rrows = [i for i, kk in enumerate(keys) if kk == rkey]
        if rrows:
            rl = {x.coef: x for x in levels(s, rrows, k, share)}
            rp, rn = rl.get(bars.pos_coef), rl.get(bars.neg_coef)
            if rp is not None:
                bars.random_pos, bars.random_pos_err = rp.fraction, _err(rp)
            if rn is not None:
                bars.random_neg, bars.random_neg_err = rn.fraction, _err(rn)
        out.append(bars)
    return out


def layers_order(layers: str) -> tuple[int | str, ...]:
    """Sort key of a /points/layers value: "1+2" -> (1, 2); anything else after every layer group."""
    try:
        return tuple(int(x) for x in layers.split("+"))
    except ValueError:
        return (10**9, layers)


# ---- the plain-text table ---------------------------------------------------------------------------

def _pct(x: float | None) -> str:
    return "-" if x is None or math.isnan(x) else f"{100 * x:.1f}%"


def _num(x: float | None, fmt: str = "{:.1f}") -> str:
    return "-" if x is None or math.isnan(x) else fmt.format(x)


def _ci(d: float, lo: float, hi: float, scale: float = 100.0, unit: str = "%", fmt: str = "{:+.1f}") -> str:
    if math.isnan(d):
        return "-"
    s = fmt.format(scale * d) + unit
    if not (math.isnan(lo) or math.isnan(hi)):
        s += " [" + fmt.format(scale * lo) + ", " + fmt.format(scale * hi) + "]"
    return s


def format_table(s: SweepSummary, share: str = "token_share") -> str:
    """The sweep as text: the baselines (every steerable label's fraction), then per vector / random point
    (by dataset, behaviour, layers, coefficient) the behaviour's fraction baseline -> steered, the paired
    delta with its bootstrap 95% interval, accuracy and thinking length with their deltas."""
    p, d = s.points, s.delta
    lines = [f"{s.path}: {len(s)} points of {s.n_tasks} tasks" + (f", PARTIAL ({s.n_missing} missing)" if s.partial or s.n_missing else "")
             + f"; behaviour fraction = {share.replace('_', ' ')}" + (" among the steerable labels" if share == "token_share" else " among all labels")]
    shown = [k for k in range(len(s.labels)) if s.steerable[k]] if share == "token_share" else list(range(len(s.labels)))
    base_rows = [i for i in range(len(s)) if p["kind"][i] == "baseline"]
    if base_rows:
        lines.append("")
        lines.append("baselines")
        head = f"  {'dataset':12s} {'key':18s} {'n':>5s} {'accuracy':>8s} {'think':>8s} {'closed':>7s}  " + "  ".join(f"{s.labels[k]:>{max(8, len(s.labels[k]))}s}" for k in shown)
        lines.append(head)
        for i in base_rows:
            lines.append(f"  {p['dataset'][i]:12s} {p['key'][i]:18s} {p['n_prompts'][i]:5d} {_pct(p['accuracy'][i]):>8s} {_num(p['think_tokens'][i]):>8s} "
                         f"{_pct(p['closed'][i]):>7s}  " + "  ".join(f"{_pct(s.fraction[share][i, k]):>{max(8, len(s.labels[k]))}s}" for k in shown))
    other = [i for i in range(len(s)) if p["kind"][i] != "baseline"]
    if other:
        other.sort(key=lambda i: (p["dataset"][i], p["vector"][i], p["kind"][i] != "vector", p["kind"][i], layers_order(str(p["layers"][i])),
                                  p["hook"][i], p["op"][i], p["positions"][i], p["coef"][i], p["seed"][i]))
        lines.append("")
        lines.append(f"steered points (fraction of the vector's own behaviour; delta = mean paired difference [bootstrap {100 * s.ci:.0f}% CI])")
        lines.append(f"  {'dataset':12s} {'kind':6s} {'vector':22s} {'layers':6s} {'hook':16s} {'op':11s} {'coef':>7s} {'seed':>5s} {'n':>5s} "
                     f"{'baseline -> steered':>19s}  {'delta [CI]':24s} {'accuracy (delta [CI])':30s} think tokens (delta [CI])")
        for i in other:
            k = s.label_index(p["vector"][i])
            b = int(p["baseline"][i])
            fb = s.fraction[share][b, k] if (k is not None and b >= 0) else math.nan
            fs = s.fraction[share][i, k] if k is not None else math.nan
            dl = (d[share][i, k], d[share + "_lo"][i, k], d[share + "_hi"][i, k]) if k is not None else (math.nan,) * 3
            acc = f"{_pct(p['accuracy'][i])} ({_ci(d['accuracy'][i], d['accuracy_lo'][i], d['accuracy_hi'][i])})"
            thk = f"{_num(p['think_tokens'][i])} ({_ci(d['think_tokens'][i], d['think_tokens_lo'][i], d['think_tokens_hi'][i], 1.0, '', '{:+.1f}')})"
            lines.append(f"  {p['dataset'][i]:12s} {p['kind'][i]:6s} {p['vector'][i]:22s} {p['layers'][i]:6s} {p['hook'][i]:16s} {p['op'][i]:11s} "
                         f"{p['coef'][i]:7.3g} {p['seed'][i]:5d} {p['n_prompts'][i]:5d} {_pct(fb) + ' -> ' + _pct(fs):>19s}  {_ci(*dl):24s} {acc:30s} {thk}")
    if not len(s):
        lines.append("(no points)")
    return "\n".join(lines)
