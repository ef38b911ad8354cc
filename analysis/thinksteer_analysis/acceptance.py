"""The steering acceptance table (issue 6 item 7; the §A.6 claim as a test): for each behaviour vector
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
import numpy as np

from .sweep import load_sweep_summary


def _cell(s, share, i, k):
    return s.delta[share][i, k], s.delta[share + "_lo"][i, k], s.delta[share + "_hi"][i, k]


def acceptance_rows(s, share="token_share"):
    """Rows {vector, layers, c, n, base, plus, minus, random_plus, random_minus, raises, lowers, random_inside, ok}:
    each of plus/minus/random_* is (delta, lo, hi) or None. Random controls of several seeds: every one must stay inside."""
    p = s.points
    rows = []
    steered = [i for i in range(len(s)) if p["kind"][i] == "vector" and p["op"][i] == "add"]
    keys = sorted({(str(p["vector"][i]), str(p["layers"][i]), abs(float(p["coef"][i])), str(p["dataset"][i])) for i in steered})
    for vector, layers, c, dataset in keys:
        k = s.label_index(vector)
        if k is None or c == 0:
            continue

        def find(kind, sign):
            return [i for i in range(len(s)) if p["kind"][i] == kind and p["vector"][i] == vector and p["layers"][i] == layers
                    and p["op"][i] == "add" and p["dataset"][i] == dataset and np.isclose(float(p["coef"][i]), sign * c)]
        plus, minus = find("vector", 1), find("vector", -1)
        rplus, rminus = find("random", 1), find("random", -1)
        if not plus or not minus:
            continue
        i_plus, i_minus = plus[0], minus[0]
        b = int(p["baseline"][i_plus])
        row = {"vector": vector, "layers": layers, "c": c, "dataset": dataset, "n": int(p["n_prompts"][i_plus]),
               "base": float(s.fraction[share][b, k]) if b >= 0 else float("nan"),
               "plus": _cell(s, share, i_plus, k), "minus": _cell(s, share, i_minus, k),
               "random_plus": [_cell(s, share, i, k) for i in rplus], "random_minus": [_cell(s, share, i, k) for i in rminus]}
        row["raises"] = bool(row["plus"][1] > 0)
        row["lowers"] = bool(row["minus"][2] < 0)
        randoms = row["random_plus"] + row["random_minus"]
        row["random_inside"] = bool(randoms) and all(row["minus"][2] < d < row["plus"][1] for d, _, _ in randoms)
        row["random_zero"] = bool(randoms) and all(lo <= 0 <= hi for _, lo, hi in randoms)
        row["ok"] = row["raises"] and row["lowers"] and row["random_inside"]
        rows.append(row)
    return rows


def _fmt(cell):
    if cell is None:
        return "-"
    d, lo, hi = cell
    return f"{100 * d:+6.1f} [{100 * lo:+5.1f}, {100 * hi:+5.1f}]"


def format_acceptance(rows, share, ci, min_prompts):
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


def behaviour_verdicts(rows, min_prompts):
    """{behaviour: [passing rows]} (an empty list: the behaviour fails)."""
    out = {}
    for r in rows:
        out.setdefault(r["vector"], [])
        if r["ok"] and r["n"] >= min_prompts:
            out[r["vector"]].append(r)
    return out


def main(run_dir, share="token_share", min_prompts=100):
    s = load_sweep_summary(run_dir)
    rows = acceptance_rows(s, share)
    print(format_acceptance(rows, share, s.ci, min_prompts))
    verdicts = behaviour_verdicts(rows, min_prompts)
    for vector, passing in verdicts.items():
        where = ", ".join(f"layer {r['layers']} c={r['c']:g}" for r in passing)
        print(f"{vector}: {'PASS at ' + where if passing else 'FAIL at every layer and c'}")
    return 0 if verdicts and all(verdicts.values()) else 1
