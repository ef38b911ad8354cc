"""ThinkEdit's artifacts (docs/algorithms.md §C) under <run>/thinkedit/: the probe traces' thinking lengths and
the long / short split (§C.1, §C.2), the short-reasoning head scores (§C.4) and the weight edit's selection
(§C.5). Each reader checks identity, keys, shapes and values and raises SchemaError naming the file and the
line, key, dataset or attribute. The steering and evaluation sweeps (<run>/alpha, layerwise, eval/*) are
ordinary steer sweeps: thinkedit_sweeps reads them.

    from thinksteer_analysis.thinkedit import read_lengths, read_thresholds, read_heads, read_edit
    lengths = read_lengths(run_dir)        # lengths.think_tokens[i], lengths.set[i] ("long" | "short" | "mid" | "invalid")
    heads = read_heads(run_dir)            # heads.scores [L, H], heads.ranking [L*H, 2]
    edit = read_edit(run_dir, heads)       # edit.heads ((layer, head), ...) in rank order

All of them are written by `thinksteer thinkedit direction` (src/stages/thinkedit_direction.cpp,
src/artifacts/thinkedit.h) but edit.json (`thinksteer thinkedit edit`, src/stages/thinkedit_edit.cpp):
thinkedit/lengths.jsonl: one JSON object per probe trace {id, think_tokens (int >= 0), closed (bool), set}; set
  is "invalid" exactly when the trace did not close </think>, else long (think_tokens > long_above), short
  (think_tokens < short_below) or mid; with split = percentile the comparisons include the threshold
thinkedit/thresholds.json: {split (tokens | percentile), long_above, short_below (numbers), n_long, n_short,
  n_valid, n_traces (ints)}
thinkedit/heads.h5 (+ .done), thinksteer.thinkedit_heads schema_version 1, L layers, H heads per layer:
  /scores [L, H] f64, finite: mean over the short traces of <mean_t W_O[:, h] z_{l,h,t}, -u_l>
  /ranking [L*H, 2] i64: every (layer, head) once, in descending score
  root attributes: n_short (i64), hook ("blocks.{l}.attn.hook_z"), direction (the direction file),
  direction_sha256, and the identity and provenance
thinkedit/edit.json (+ .done, after the edit): {format "thinksteer.thinkedit_edit", heads [[layer, head], ...]
  (auto: the top k of heads.h5 in rank order), scores (their scores, the same order; [] for heads listed in
  the config), k (= the number of heads), n_heads_total (L * H), source, out, dtype, and weight, direction,
  provenance, files}
"""
from __future__ import annotations

import math
import pathlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .schema import (Artifact, PathLike, SchemaError, attr, first_index, int_attr, json_file, jsonl_rows, open_h5, provenance, read,
                     require_keys, str_attr)

THINKEDIT_LENGTHS = Artifact(dir="thinkedit", file="lengths.jsonl", format=None, schema_version=None, stage="thinkedit direction")
THINKEDIT_THRESHOLDS = Artifact(dir="thinkedit", file="thresholds.json", format=None, schema_version=None, stage="thinkedit direction")
THINKEDIT_HEADS = Artifact(dir="thinkedit", file="heads.h5", format="thinksteer.thinkedit_heads", schema_version=1, stage="thinkedit direction")
THINKEDIT_EDIT = Artifact(dir="thinkedit", file="edit.json", format=None, schema_version=None, stage="thinkedit edit")
EDIT_FORMAT = "thinksteer.thinkedit_edit"          # edit.json's "format" key
SETS = ("long", "short", "mid", "invalid")
SPLITS = ("tokens", "percentile")
NUMBER = (int, float)
LENGTH_KEYS: dict[str, type | tuple[type, ...]] = {"id": str, "think_tokens": int, "closed": bool, "set": str}
THRESHOLD_KEYS: dict[str, type | tuple[type, ...]] = {"split": str, "long_above": NUMBER, "short_below": NUMBER, "n_long": int,
                                                       "n_short": int, "n_valid": int, "n_traces": int}
EDIT_KEYS: dict[str, type | tuple[type, ...]] = {"format": str, "heads": list, "scores": list, "k": int, "n_heads_total": int, "source": str,
                                                  "out": str, "dtype": str}

__all__ = [
    "EDIT_FORMAT", "SETS", "SPLITS", "THINKEDIT_EDIT", "THINKEDIT_HEADS", "THINKEDIT_LENGTHS", "THINKEDIT_THRESHOLDS", "Edit", "Heads", "Lengths",
    "Thresholds", "check_split", "read_edit", "read_heads", "read_lengths", "read_thresholds", "stale_scores",
]


# ---- lengths.jsonl and thresholds.json -------------------------------------------------------------

@dataclass
class Lengths:
    """The probe traces of lengths.jsonl, N rows in file order."""
    path: pathlib.Path
    ids: npt.NDArray[np.str_]              # [N]
    think_tokens: npt.NDArray[np.int64]    # [N]
    closed: npt.NDArray[np.bool_]          # [N]
    set: npt.NDArray[np.str_]              # [N] long | short | mid | invalid
    lines: npt.NDArray[np.int64]           # [N] the line each row is on (for messages)

    def __len__(self) -> int:
        return len(self.ids)

    def count(self, name: str) -> int:
        """How many traces are in set `name`."""
        return int((self.set == name).sum())


def read_lengths(run_dir: PathLike) -> Lengths:
    """Reads and checks <run_dir>/thinkedit/lengths.jsonl (or the file given): every row's keys and types,
    think_tokens >= 0, set one of SETS and "invalid" exactly for the traces that did not close, ids unique, at
    least one row; SchemaError names the file and the line."""
    path = THINKEDIT_LENGTHS.require(THINKEDIT_LENGTHS.path(run_dir))
    rows: list[tuple[int, dict[str, Any]]] = []
    seen: dict[str, int] = {}
    for line, row in jsonl_rows(path):
        where = f"line {line}"
        require_keys(path, where, row, LENGTH_KEYS)
        if row["think_tokens"] < 0:
            raise SchemaError(path, where, f"key 'think_tokens' is {row['think_tokens']}, expected >= 0")
        if row["set"] not in SETS:
            raise SchemaError(path, where, f"key 'set' must be {', '.join(SETS)}, got {row['set']!r}")
        if (row["set"] == "invalid") == row["closed"]:
            raise SchemaError(path, where, f"set {row['set']!r} with closed {str(row['closed']).lower()}: "
                              "a trace is invalid exactly when it did not close")
        if row["id"] in seen:
            raise SchemaError(path, where, f"id {row['id']!r} is also line {seen[row['id']]}'s")
        seen[row["id"]] = line
        rows.append((line, row))
    if not rows:
        raise SchemaError(path, "(file)", "no traces")
    def column(key: str, dtype: Any) -> np.ndarray:
        return np.array([r[key] for _, r in rows], dtype=dtype)
    return Lengths(path=path, ids=column("id", str), think_tokens=column("think_tokens", np.int64), closed=column("closed", bool),
                   set=column("set", str), lines=np.array([n for n, _ in rows], dtype=np.int64))


@dataclass(frozen=True)
class Thresholds:
    """thresholds.json: where the long and short sets begin, and their sizes."""
    path: pathlib.Path
    split: str               # tokens | percentile
    long_above: float        # long set: think_tokens > long_above
    short_below: float       # short set: think_tokens < short_below
    n_long: int
    n_short: int
    n_valid: int             # closed traces
    n_traces: int


def read_thresholds(run_dir: PathLike) -> Thresholds:
    """Reads and checks <run_dir>/thinkedit/thresholds.json (or the file given): keys and types, split one of
    SPLITS, finite thresholds with short_below <= long_above, counts >= 0 with n_long + n_short <= n_valid <=
    n_traces; SchemaError names the file and the key."""
    path = THINKEDIT_THRESHOLDS.require(THINKEDIT_THRESHOLDS.path(run_dir))
    obj = json_file(path)
    where = "top level"
    require_keys(path, where, obj, THRESHOLD_KEYS)
    if obj["split"] not in SPLITS:
        raise SchemaError(path, where, f"key 'split' must be {' or '.join(SPLITS)}, got {obj['split']!r}")
    for name in ("long_above", "short_below"):
        if not math.isfinite(obj[name]):
            raise SchemaError(path, where, f"key {name!r} is {obj[name]!r}, expected a finite number")
    if obj["short_below"] > obj["long_above"]:
        raise SchemaError(path, where, f"short_below {obj['short_below']} is above long_above {obj['long_above']}")
    counts = {n: obj[n] for n in ("n_long", "n_short", "n_valid", "n_traces")}
    if min(counts.values()) < 0 or counts["n_long"] + counts["n_short"] > counts["n_valid"] or counts["n_valid"] > counts["n_traces"]:
        raise SchemaError(path, where, f"counts {counts}: expected 0 <= n_long + n_short <= n_valid <= n_traces")
    return Thresholds(path=path, split=obj["split"], long_above=float(obj["long_above"]), short_below=float(obj["short_below"]), **counts)


def check_split(lengths: Lengths, t: Thresholds) -> None:
    """The traces' sets follow the thresholds (long iff think_tokens > long_above, short iff < short_below,
    among the closed traces; >= and <= with split = percentile) and the counts of thresholds.json are
    lengths.jsonl's; SchemaError naming the file and the line (or key) otherwise."""
    x = lengths.think_tokens
    inclusive = t.split == "percentile"
    long_ = x >= t.long_above if inclusive else x > t.long_above
    short = x <= t.short_below if inclusive else x < t.short_below
    want = np.where(~lengths.closed, "invalid", np.where(long_, "long", np.where(short, "short", "mid")))
    i = first_index(want != lengths.set)
    if i is not None:
        raise SchemaError(lengths.path, f"line {lengths.lines[i]}", f"set {str(lengths.set[i])!r} with think_tokens {lengths.think_tokens[i]}, but "
                          f"{t.path.name} puts it in {str(want[i])!r} (long above {t.long_above:g}, short below {t.short_below:g})")
    got = {"n_long": lengths.count("long"), "n_short": lengths.count("short"), "n_valid": int(lengths.closed.sum()), "n_traces": len(lengths)}
    for name, v in got.items():
        if getattr(t, name) != v:
            raise SchemaError(t.path, f"key {name!r}", f"{getattr(t, name)}, but {lengths.path.name} has {v}")


# ---- heads.h5 ---------------------------------------------------------------------------------------

@dataclass
class Heads:
    """heads.h5: the §C.4 score of every attention head, L layers by H heads."""
    path: pathlib.Path
    scores: npt.NDArray[np.float64]      # [L, H]
    ranking: npt.NDArray[np.int64]       # [L*H, 2] (layer, head), descending score
    n_short: int                         # short traces the scores average over
    hook: str                            # the captured hook, "blocks.{l}.attn.hook_z"
    direction: str                       # the direction file u_l came from
    direction_sha256: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def layers(self) -> int:
        return int(self.scores.shape[0])

    @property
    def heads(self) -> int:
        return int(self.scores.shape[1])

    def top(self, k: int) -> list[tuple[int, int]]:
        """The k best-scoring (layer, head) pairs, best first."""
        return [(int(l), int(h)) for l, h in self.ranking[:k]]


def _check_ranking(path: pathlib.Path, scores: np.ndarray, ranking: np.ndarray) -> None:
    """Finite scores; every (layer, head) once and in range, scores not increasing down the ranking."""
    i = first_index(~np.isfinite(scores.ravel()))
    if i is not None:
        raise SchemaError(path, "/scores", f"layer {i // scores.shape[1]}, head {i % scores.shape[1]}: {scores.ravel()[i]}, expected a finite score")
    L, H = scores.shape
    i = first_index((ranking[:, 0] < 0) | (ranking[:, 0] >= L) | (ranking[:, 1] < 0) | (ranking[:, 1] >= H))
    if i is not None:
        raise SchemaError(path, "/ranking", f"row {i}: ({ranking[i, 0]}, {ranking[i, 1]}) outside [0, L = {L}) x [0, H = {H})")
    flat = ranking[:, 0] * H + ranking[:, 1]
    first = {}
    for j, x in enumerate(flat.tolist()):
        if x in first:
            raise SchemaError(path, "/ranking", f"row {j}: ({ranking[j, 0]}, {ranking[j, 1]}) repeats row {first[x]}")
        first[x] = j
    s = scores[ranking[:, 0], ranking[:, 1]]
    i = first_index(s[1:] > s[:-1])
    if i is not None:
        raise SchemaError(path, "/ranking", f"row {i + 1}: score {s[i + 1]:.6g} above row {i}'s {s[i]:.6g} (rows go in descending score)")


def read_heads(run_dir: PathLike) -> Heads:
    """Reads and checks <run_dir>/thinkedit/heads.h5 (or the file given): identity, /scores [L, H] finite floats,
    /ranking [L*H, 2] ints holding every head once in descending score, n_short >= 0, hook and direction
    strings; SchemaError names the file and the dataset or attribute."""
    path = THINKEDIT_HEADS.require(THINKEDIT_HEADS.path(run_dir))
    with open_h5(path) as f:
        THINKEDIT_HEADS.check(f)
        scores = read(f, "/scores", [("layer", None), ("head", None)], "float").astype(np.float64)
        L, H = scores.shape
        ranking = read(f, "/ranking", [("rank", L * H), ("layer_head", 2)], "int").astype(np.int64)
        n_short = int_attr(f, "n_short")
        if n_short < 0:
            raise SchemaError(path, "attribute 'n_short'", f"{n_short}, expected >= 0")
        heads = Heads(path=path, scores=scores, ranking=ranking, n_short=n_short, hook=str_attr(f, "hook"), direction=str_attr(f, "direction"),
                      direction_sha256=str(attr(f, "direction_sha256", "")), provenance=provenance(f))
    _check_ranking(path, scores, ranking)
    return heads


# ---- edit.json --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Edit:
    """edit.json: the heads the weight edit projected the direction out of, in rank order."""
    path: pathlib.Path
    heads: tuple[tuple[int, int], ...]   # (layer, head)
    scores: tuple[float, ...]            # the heads' scores, same order (empty: heads listed in the config)
    k: int
    n_heads_total: int                   # L * H
    source: str                          # the checkpoint edited
    out: str                             # the edited checkpoint
    dtype: str


def _head_pairs(path: pathlib.Path, heads: list[Any]) -> tuple[tuple[int, int], ...]:
    out = []
    for i, h in enumerate(heads):
        if not (isinstance(h, list) and len(h) == 2 and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in h)):
            raise SchemaError(path, "key 'heads'", f"entry {i}: {h!r}, expected [layer, head] (two non-negative integers)")
        out.append((h[0], h[1]))
    return tuple(out)


def read_edit(run_dir: PathLike, heads: Heads | None = None) -> Edit:
    """Reads and checks <run_dir>/thinkedit/edit.json (or the file given): format, keys and types, k heads
    as [layer, head] pairs without repeats, k scores or none, n_heads_total >= k; with `heads` (heads.h5)
    also that every head is in range and n_heads_total = L * H; SchemaError names the file and the key."""
    path = THINKEDIT_EDIT.require(THINKEDIT_EDIT.path(run_dir))
    obj = json_file(path)
    require_keys(path, "top level", obj, EDIT_KEYS)
    if obj["format"] != EDIT_FORMAT:
        raise SchemaError(path, "key 'format'", f"{obj['format']!r}, expected {EDIT_FORMAT!r} (the file `thinksteer {THINKEDIT_EDIT.stage}` writes)")
    pairs = _head_pairs(path, obj["heads"])
    k = obj["k"]
    if len(pairs) != k:
        raise SchemaError(path, "key 'heads'", f"{len(pairs)} heads, but k = {k}")
    if len(set(pairs)) != len(pairs):
        raise SchemaError(path, "key 'heads'", "a head is listed twice")
    scores = obj["scores"]
    if len(scores) not in (0, k) or not all(isinstance(s, NUMBER) and not isinstance(s, bool) for s in scores):
        raise SchemaError(path, "key 'scores'", f"{scores!r}, expected k = {k} numbers (or none)")
    if obj["n_heads_total"] < k:
        raise SchemaError(path, "key 'n_heads_total'", f"{obj['n_heads_total']}, below k = {k}")
    edit = Edit(path=path, heads=pairs, scores=tuple(float(s) for s in scores), k=k, n_heads_total=obj["n_heads_total"], source=obj["source"],
                out=obj["out"], dtype=obj["dtype"])
    if heads is not None:
        _check_against(edit, heads)
    return edit


def _check_against(edit: Edit, heads: Heads) -> None:
    """edit.json's heads fit heads.h5's model: n_heads_total = L * H, every head in range."""
    path = edit.path
    if edit.n_heads_total != heads.layers * heads.heads:
        raise SchemaError(path, "key 'n_heads_total'", f"{edit.n_heads_total}, but {heads.path.name} has L x H = {heads.layers} x {heads.heads}")
    for i, (l, h) in enumerate(edit.heads):
        if l >= heads.layers or h >= heads.heads:
            raise SchemaError(path, "key 'heads'", f"entry {i}: ({l}, {h}) outside {heads.path.name}'s {heads.layers} layers x {heads.heads} heads")


def stale_scores(edit: Edit, heads: Heads) -> list[int]:
    """The entries of edit.json whose score is not heads.h5's for the head (heads.h5 rescored since the edit)."""
    return [i for i, ((l, h), s) in enumerate(zip(edit.heads, edit.scores))
            if not math.isclose(s, float(heads.scores[l, h]), rel_tol=1e-6, abs_tol=1e-12)]
