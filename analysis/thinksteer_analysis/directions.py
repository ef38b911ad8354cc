"""The reasoning-direction artifacts (docs/directions.md "File layouts"; docs/algorithms.md §E, §D) under
<run>/directions/ (the intervention sweep's summary: intervene.py): one reader per file, each checking identity (HDF5: the root attributes
`format` and `schema_version`), columns, shapes and values, and raising SchemaError naming the file and the
dataset, attribute, column or line.

    from thinksteer_analysis.directions import read_contrast, read_probes, read_lens_csv, read_cka
    c = read_contrast(run_dir)       # directions/contrast.csv: c.layer, c.norm, c.cos["<name>"]
    p = read_probes(run_dir)         # directions/probes.h5: p.accuracy, p.accuracy_ci [H, 2], p.majority_accuracy
    t = read_lens_csv(run_dir)       # directions/lens.csv (lens_table(read_lens(run_dir)) computes it from lens.h5)
    k = read_cka(run_dir)            # directions/cka.h5: k.linear [A, B], k.rbf or None

Files (written by `thinksteer directions contrast|probe|lens|cka`):
  contrast.csv     layer, hook, n_a, n_b, norm, cos_<name>... (empty cell: no compared vector at that layer)
  probes.h5        thinksteer.probes: /hooks, /layer [H], /classes [C], /accuracy, /macro_f1 [H], /accuracy_ci,
                   /macro_f1_ci [H, 2], /shuffled_accuracy, /shuffled_macro_f1 [H], /weights/<hook> [C, D],
                   /bias/<hook> [C]; attributes n_train, n_test, n_train_traces, n_test_traces, majority_accuracy, l2,
                   seed, input
  lens.h5          thinksteer.logit_lens: /layers [L], /sequence, /token, /target [R], /kl, /target_prob, /target_rank
                   [R, L], /top_ids, /top_probs [R, L, k]
  lens.csv         layer, kl_mean, target_prob_mean, target_rank_median, top1_agreement
  lens_top.jsonl   {row, sequence_id, token_index, token_text, target_text, layers: [{layer, top: [[text, prob]...]}]}
  cka.h5           thinksteer.cka: /hooks_a, /hooks_b, /layers_a, /layers_b, /linear [A, B], /rbf [A, B] (optional);
                   attributes n_rows, n_rows_total, seed, model_a, model_b, input_a, input_b
"""
from __future__ import annotations

import csv
import math
import pathlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .schema import (Artifact, PathLike, SchemaError, attr, check_dataset, first_index, int_attr, jsonl_rows, open_h5, provenance, read,
                     read_optional, require_keys)

CONTRAST_CSV = Artifact(dir="directions", file="contrast.csv", format=None, schema_version=None, stage="directions contrast")
PROBES = Artifact(dir="directions", file="probes.h5", format="thinksteer.probes", schema_version=1, stage="directions probe")
LENS = Artifact(dir="directions", file="lens.h5", format="thinksteer.logit_lens", schema_version=1, stage="directions lens")
LENS_CSV = Artifact(dir="directions", file="lens.csv", format=None, schema_version=None, stage="directions lens")
LENS_TOP = Artifact(dir="directions", file="lens_top.jsonl", format=None, schema_version=None, stage="directions lens")
CKA = Artifact(dir="directions", file="cka.h5", format="thinksteer.cka", schema_version=1, stage="directions cka")
CONTRAST_COLUMNS = ("layer", "hook", "n_a", "n_b", "norm")
LENS_COLUMNS = ("layer", "kl_mean", "target_prob_mean", "target_rank_median", "top1_agreement")
EPS = 1e-4                     # slack on bounds for values computed in f32
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
STRS = npt.NDArray[np.str_]

__all__ = [
    "CKA", "CONTRAST_CSV", "LENS", "LENS_CSV", "LENS_TOP", "PROBES", "Cka", "Contrast", "Lens", "LensTable", "LensTop", "Probes", "lens_table",
    "read_cka", "read_contrast", "read_lens", "read_lens_csv", "read_lens_top", "read_probes",
]


# ---- CSV ---------------------------------------------------------------------------------------------

def csv_rows(path: pathlib.Path, required: Sequence[str]) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """(header, [(line, row)]) of a CSV file with a header line holding every column of `required`."""
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in required if c not in header]
        if missing:
            raise SchemaError(path, "line 1", f"no column {missing[0]!r} in the header ({', '.join(header) or 'empty'})")
        rows = []
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                raise SchemaError(path, f"line {reader.line_num}", f"{len(cells)} cells, the header has {len(header)}")
            rows.append((reader.line_num, dict(zip(header, (c.strip() for c in cells)))))
    return header, rows


def _number(path: pathlib.Path, line: int, column: str, text: str, integer: bool = False) -> float:
    """A cell as a number: "" (and nan) is NaN for floats; SchemaError naming the line and column otherwise."""
    try:
        if integer:
            return int(text)
        return math.nan if text == "" else float(text)
    except ValueError:
        raise SchemaError(path, f"line {line}", f"column {column!r}: {text!r} is not {'an integer' if integer else 'a number'}") from None


def csv_column(path: pathlib.Path, rows: Sequence[tuple[int, dict[str, str]]], name: str, integer: bool = False) -> np.ndarray:
    return np.array([_number(path, n, name, r[name], integer) for n, r in rows], dtype=np.int64 if integer else np.float64)


def check_range(path: PathLike, name: str, values: np.ndarray, lo: float, hi: float, where: Sequence[str] | None = None) -> None:
    """Every finite value in [lo - EPS, hi + EPS] (NaN allowed); SchemaError naming the first that is not."""
    v = np.asarray(values, dtype=np.float64)
    i = first_index(np.isfinite(v.ravel()) & ((v.ravel() < lo - EPS) | (v.ravel() > hi + EPS)))
    if i is not None:
        at = where[i] if where is not None else f"entry {np.unravel_index(i, v.shape)}" if v.ndim > 1 else f"row {i}"
        raise SchemaError(path, name, f"{at}: {v.ravel()[i]:.6g} outside [{lo:g}, {hi:g}]")


def _float_attr(f: Any, name: str, default: float | None = None) -> float:
    """A numeric attribute (a number, or a number written as a string); required unless `default` is given."""
    v = attr(f, name, default, required=default is None)
    try:
        return float(v) if isinstance(v, (str, int, float)) and not isinstance(v, bool) else math.nan
    except ValueError:
        raise SchemaError(f.filename, f"attribute {name!r}", f"{v!r}, expected a number") from None


# ---- contrast.csv ------------------------------------------------------------------------------------

@dataclass
class Contrast:
    """contrast.csv: one row per layer, the raw difference's norm and its cosine with each compared vector."""
    path: pathlib.Path
    layer: I64
    hook: STRS
    n_a: I64
    n_b: I64
    norm: F64
    cos: dict[str, F64] = field(default_factory=dict)   # compared vector name -> [L] cosine (NaN: none at that layer)

    def __len__(self) -> int:
        return len(self.layer)


def read_contrast(run_dir: PathLike) -> Contrast:
    """Reads and checks <run_dir>/directions/contrast.csv (or the file given): the columns, integers n_a, n_b >= 0,
    layers unique, norms finite and >= 0, cosines in [-1, 1] or empty; at least one row."""
    path = CONTRAST_CSV.require(CONTRAST_CSV.path(run_dir))
    header, rows = csv_rows(path, CONTRAST_COLUMNS)
    if not rows:
        raise SchemaError(path, "(file)", "no rows")
    lines = [f"line {n}" for n, _ in rows]
    c = Contrast(path=path, layer=csv_column(path, rows, "layer", True), hook=np.array([r["hook"] for _, r in rows], dtype=str),
                 n_a=csv_column(path, rows, "n_a", True), n_b=csv_column(path, rows, "n_b", True), norm=csv_column(path, rows, "norm"),
                 cos={h[4:]: csv_column(path, rows, h) for h in header if h.startswith("cos_")})
    for name in ("n_a", "n_b"):
        i = first_index(getattr(c, name) < 0)
        if i is not None:
            raise SchemaError(path, lines[i], f"column {name!r}: {getattr(c, name)[i]} is negative")
    i = first_index(~np.isfinite(c.norm) | (c.norm < 0))
    if i is not None:
        raise SchemaError(path, lines[i], f"column 'norm': {c.norm[i]}, expected a finite number >= 0")
    _, first = np.unique(c.layer, return_index=True)
    if len(first) != len(c):
        i = next(j for j in range(len(c)) if j not in set(first.tolist()))
        raise SchemaError(path, lines[i], f"layer {c.layer[i]} has a row already (one row per layer)")
    for name, v in c.cos.items():
        check_range(path, f"column 'cos_{name}'", v, -1.0, 1.0, lines)
    return c


# ---- probes.h5 ---------------------------------------------------------------------------------------

@dataclass
class Probes:
    """probes.h5: one linear probe per hook, held-out accuracy and macro-F1 with cluster-bootstrap intervals."""
    path: pathlib.Path
    hooks: STRS                     # [H]
    layer: I64                      # [H] (-1: ln_final)
    classes: STRS                   # [C]
    accuracy: F64
    macro_f1: F64
    accuracy_ci: F64                # [H, 2]
    macro_f1_ci: F64                # [H, 2]
    shuffled_accuracy: F64
    shuffled_macro_f1: F64
    majority_accuracy: float
    n_train: int
    n_test: int
    n_train_traces: int
    n_test_traces: int
    l2: float = math.nan
    seed: int = 0
    input: str = ""
    d_model: dict[str, int] = field(default_factory=dict)   # hook -> D of its weights
    provenance: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.hooks)


def read_probes(run_dir: PathLike) -> Probes:
    """Reads and checks <run_dir>/directions/probes.h5 (or the file given): identity, every dataset's shape and kind,
    /weights/<hook> [C, D] and /bias/<hook> [C] for every hook, scores in [0, 1], intervals with lo <= hi, the counts."""
    path = PROBES.require(PROBES.path(run_dir))
    with open_h5(path) as f:
        PROBES.check(f)
        hooks = read(f, "/hooks", [("hook", None)], "str")
        H = [("hook", len(hooks))]
        classes = read(f, "/classes", [("class", None)], "str")
        C = len(classes)
        scores = {n: read(f, f"/{n}", H, "float").astype(np.float64) for n in ("accuracy", "macro_f1", "shuffled_accuracy", "shuffled_macro_f1")}
        cis = {n: read(f, f"/{n}", [*H, ("bound", 2)], "float").astype(np.float64) for n in ("accuracy_ci", "macro_f1_ci")}
        d_model = {}
        for h in hooks.tolist():
            d_model[h] = int(check_dataset(f, f"/weights/{h}", [("class", C), ("d_model", None)], "float").shape[1])
            check_dataset(f, f"/bias/{h}", [("class", C)], "float")
        counts = {n: int_attr(f, n) for n in ("n_train", "n_test", "n_train_traces", "n_test_traces")}
        p = Probes(path=path, hooks=hooks, layer=read(f, "/layer", H, "int").astype(np.int64), classes=classes, **scores, **cis,
                   majority_accuracy=_float_attr(f, "majority_accuracy"), **counts, l2=_float_attr(f, "l2", math.nan),
                   seed=int_attr(f, "seed", 0), input=str(attr(f, "input", "")), d_model=d_model, provenance=provenance(f))
    if not len(p):
        raise SchemaError(path, "/hooks", "no hooks")
    for name in ("accuracy", "macro_f1", "shuffled_accuracy", "shuffled_macro_f1", "accuracy_ci", "macro_f1_ci"):
        check_range(path, f"/{name}", getattr(p, name), 0.0, 1.0, [f"hook {h!r}" for h in hooks.tolist()] if name[-3:] != "_ci" else None)
    for name in ("accuracy_ci", "macro_f1_ci"):
        ci = getattr(p, name)
        i = first_index(ci[:, 0] > ci[:, 1] + EPS)
        if i is not None:
            raise SchemaError(path, f"/{name}", f"hook {str(hooks[i])!r}: [{ci[i, 0]:.6g}, {ci[i, 1]:.6g}] is not an interval (lo > hi)")
    check_range(path, "attribute 'majority_accuracy'", np.array([p.majority_accuracy]), 0.0, 1.0, ["value"])
    for name, v in counts.items():
        if v < 0:
            raise SchemaError(path, f"attribute {name!r}", f"{v}, expected >= 0")
    return p


# ---- lens.h5, lens.csv, lens_top.jsonl ----------------------------------------------------------------

@dataclass
class LensTable:
    """The logit lens per layer (lens.csv, or computed from lens.h5 by lens_table)."""
    path: pathlib.Path
    layer: I64
    kl_mean: F64
    target_prob_mean: F64
    target_rank_median: F64
    top1_agreement: F64

    def __len__(self) -> int:
        return len(self.layer)


def read_lens_csv(run_dir: PathLike) -> LensTable:
    """Reads and checks <run_dir>/directions/lens.csv (or the file given): the columns, KL >= 0, probabilities and
    agreement in [0, 1], ranks >= 0; at least one row."""
    path = LENS_CSV.require(LENS_CSV.path(run_dir))
    _, rows = csv_rows(path, LENS_COLUMNS)
    if not rows:
        raise SchemaError(path, "(file)", "no rows")
    t = LensTable(path=path, layer=csv_column(path, rows, "layer", True), **{c: csv_column(path, rows, c) for c in LENS_COLUMNS[1:]})
    lines = [f"line {n}" for n, _ in rows]
    check_range(path, "column 'kl_mean'", t.kl_mean, 0.0, math.inf, lines)
    check_range(path, "column 'target_rank_median'", t.target_rank_median, 0.0, math.inf, lines)
    for name in ("target_prob_mean", "top1_agreement"):
        check_range(path, f"column {name!r}", getattr(t, name), 0.0, 1.0, lines)
    return t


@dataclass
class Lens:
    """lens.h5: per row (a token of the activation file) and layer, the lens' KL from the final distribution and
    the probability and rank it gives the eventual token. top_ids / top_probs are checked, not read."""
    path: pathlib.Path
    layers: I64                     # [L]
    sequence: I64                   # [R]
    token: I64                      # [R]
    target: I64                     # [R]
    kl: F64                         # [R, L]
    target_prob: F64                # [R, L]
    target_rank: I64                # [R, L]
    top_k: int
    provenance: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.sequence)


def read_lens(run_dir: PathLike) -> Lens:
    """Reads and checks <run_dir>/directions/lens.h5 (or the file given): identity, shapes and kinds, KL >= 0,
    probabilities in [0, 1], ranks >= 0."""
    path = LENS.require(LENS.path(run_dir))
    with open_h5(path) as f:
        LENS.check(f)
        layers = read(f, "/layers", [("layer", None)], "int").astype(np.int64)
        sequence = read(f, "/sequence", [("row", None)], "int").astype(np.int64)
        R, L = [("row", len(sequence))], ("layer", len(layers))
        per_row = {n: read(f, f"/{n}", R, "int").astype(np.int64) for n in ("token", "target")}
        kl, prob = (read(f, f"/{n}", [*R, L], "float").astype(np.float64) for n in ("kl", "target_prob"))
        rank = read(f, "/target_rank", [*R, L], "int").astype(np.int64)
        k = check_dataset(f, "/top_ids", [*R, L, ("k", None)], "int").shape[2]
        check_dataset(f, "/top_probs", [*R, L, ("k", k)], "float")
        lens = Lens(path=path, layers=layers, sequence=sequence, **per_row, kl=kl, target_prob=prob, target_rank=rank, top_k=int(k),
                    provenance=provenance(f))
    check_range(path, "/kl", lens.kl, 0.0, math.inf)
    check_range(path, "/target_prob", lens.target_prob, 0.0, 1.0)
    i = first_index(lens.target_rank.ravel() < 0)
    if i is not None:
        raise SchemaError(path, "/target_rank", f"entry {np.unravel_index(i, rank.shape)}: {lens.target_rank.ravel()[i]} is negative")
    return lens


def lens_table(lens: Lens) -> LensTable:
    """lens.csv's numbers from lens.h5: per layer the mean KL and target probability, the median rank, and the share
    of rows whose lens top-1 is the eventual token (rank 0)."""
    def over_rows(fn: Any, v: np.ndarray) -> F64:
        return np.array([fn(v[:, j]) if len(v) else math.nan for j in range(v.shape[1])], dtype=np.float64)
    return LensTable(path=lens.path, layer=lens.layers, kl_mean=over_rows(np.nanmean, lens.kl), target_prob_mean=over_rows(np.nanmean, lens.target_prob),
                     target_rank_median=over_rows(np.median, lens.target_rank), top1_agreement=over_rows(np.mean, lens.target_rank == 0))


@dataclass(frozen=True)
class LensTop:
    """One line of lens_top.jsonl: a token and each layer's top tokens under the lens."""
    row: int
    sequence_id: str
    token_index: int
    token_text: str
    target_text: str
    layers: tuple[tuple[int, tuple[tuple[str, float], ...]], ...]   # (layer, ((text, prob), ...))


def _top_list(path: pathlib.Path, where: str, entry: Any) -> tuple[int, tuple[tuple[str, float], ...]]:
    if not isinstance(entry, dict):
        raise SchemaError(path, where, "an entry of 'layers' is not an object")
    require_keys(path, where, entry, {"layer": int, "top": list})
    top = []
    for t in entry["top"]:
        if not (isinstance(t, list) and len(t) == 2 and isinstance(t[0], str) and isinstance(t[1], (int, float)) and not isinstance(t[1], bool)):
            raise SchemaError(path, where, f"layer {entry['layer']}: top entry {t!r}, expected [text, probability]")
        top.append((t[0], float(t[1])))
    return entry["layer"], tuple(top)


def read_lens_top(run_dir: PathLike) -> list[LensTop]:
    """Reads and checks <run_dir>/directions/lens_top.jsonl (or the file given): every line's keys and types."""
    path = LENS_TOP.require(LENS_TOP.path(run_dir))
    out = []
    for line, row in jsonl_rows(path):
        where = f"line {line}"
        require_keys(path, where, row, {"row": int, "sequence_id": (int, str), "token_index": int, "token_text": str, "target_text": str,
                                        "layers": list})
        out.append(LensTop(row=row["row"], sequence_id=str(row["sequence_id"]), token_index=row["token_index"], token_text=row["token_text"],
                           target_text=row["target_text"], layers=tuple(_top_list(path, where, e) for e in row["layers"])))
    return out


# ---- cka.h5 ------------------------------------------------------------------------------------------

@dataclass
class Cka:
    """cka.h5: CKA between the hooks of file A (rows) and file B (columns; B = A for one file)."""
    path: pathlib.Path
    hooks_a: STRS
    hooks_b: STRS
    layers_a: I64
    layers_b: I64
    linear: F64                     # [A, B]
    rbf: F64 | None                 # [A, B], only with directions.cka_kernel = both
    n_rows: int
    n_rows_total: int
    seed: int = 0
    model_a: str = ""
    model_b: str = ""
    input_a: str = ""
    input_b: str = ""


def read_cka(run_dir: PathLike) -> Cka:
    """Reads and checks <run_dir>/directions/cka.h5 (or the file given): identity, shapes and kinds, CKA in [0, 1]
    (NaN allowed), 0 <= n_rows <= n_rows_total."""
    path = CKA.require(CKA.path(run_dir))
    with open_h5(path) as f:
        CKA.check(f)
        hooks_a, hooks_b = (read(f, f"/hooks_{s}", [(f"hook_{s}", None)], "str") for s in "ab")
        A, B = ("hook_a", len(hooks_a)), ("hook_b", len(hooks_b))
        k = Cka(path=path, hooks_a=hooks_a, hooks_b=hooks_b, layers_a=read(f, "/layers_a", [A], "int").astype(np.int64),
                layers_b=read(f, "/layers_b", [B], "int").astype(np.int64), linear=read(f, "/linear", [A, B], "float").astype(np.float64),
                rbf=None, n_rows=int_attr(f, "n_rows"), n_rows_total=int_attr(f, "n_rows_total"), seed=int_attr(f, "seed", 0),
                **{n: str(attr(f, n, "")) for n in ("model_a", "model_b", "input_a", "input_b")})
        rbf = read_optional(f, "/rbf", [A, B], "float")
        k.rbf = rbf.astype(np.float64) if rbf is not None else None
    if not len(hooks_a) or not len(hooks_b):
        raise SchemaError(path, "/hooks_a" if not len(hooks_a) else "/hooks_b", "no hooks")
    for name in ("linear", "rbf"):
        if getattr(k, name) is not None:
            check_range(path, f"/{name}", getattr(k, name), 0.0, 1.0)
    if not 0 <= k.n_rows <= k.n_rows_total:
        raise SchemaError(path, "attribute 'n_rows'", f"{k.n_rows}, expected 0 <= n_rows <= n_rows_total = {k.n_rows_total}")
    return k
