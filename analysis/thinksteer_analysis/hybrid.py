"""The hybrid sweep's artifacts (`thinksteer hybrid`; docs/algorithms.md "The hybrid model"): one task file per
row of the plan (the base model alone, the thinking model alone, or the hybrid with one coefficient rule,
ablation, layer and seed, on one dataset) and the summary `reduce` writes. Each reader checks identity,
shapes and values and raises SchemaError naming the file and the dataset or attribute.

    from thinksteer_analysis.hybrid import read_hybrid_task, read_hybrid_summary
    t = read_hybrid_task(run_dir, key)          # or the path of a task file: t.correct, t.tokens(p), t.accuracy
    s = read_hybrid_summary(run_dir)            # s.role[i], s.accuracy[i], s.gap[i], s.vs_hybrid[i]

hybrid/tasks/<key>.h5 (+ .done), thinksteer.hybrid_task schema_version 1 (src/artifacts/hybrid_task.h), P
prompts, C categories, N emitted tokens (0 unless hybrid.save_text):
  /prompts/{id, answer, reference, text} [P] str   text: the generated text (empty unless save_text)
  /prompts/correct [P] i64      1 right, 0 wrong, -1 no reference answer
  /prompts/{closed, new_tokens, think_tokens, steered, disagree, hits} [P] i64
  /prompts/category_counts [P, C] i64   steered steps per category
  /tokens/offsets [P+1] i64     prompt p's tokens are [offsets[p], offsets[p+1])
  /tokens/{id, kind, category, base, thinking} [N] i32, /tokens/coef [N] f32: kind (KINDS below; base and
      thinking rows 4), the category a steered token used (-1 otherwise), the coefficient, the base and the
      thinking model's greedy tokens (-1: not computed)
  root attributes: task, key, point (JSON: task, key, dataset, role, rule, ablation, layer, seed), role
  (base | thinking | hybrid), rule and ablation ("" for base and thinking rows), dataset, layer (-1 for base
  and thinking rows), seed, randpos_fraction (a number written as a string), categories (C), vectors_file,
  vectors_hash, metrics (JSON object), and the identity and provenance
hybrid/summary.h5 (+ summary.csv), thinksteer.hybrid_summary schema_version 1 (src/artifacts/hybrid_summary.h),
R finished tasks:
  /task, /layer, /seed, /n [R] i64; /key, /dataset, /role, /rule, /ablation [R] str
  /accuracy, /gap, /vs_hybrid and their _lo, _hi [R] f64: accuracy over the prompts with a reference, the gap
      recovered (row − base) / (thinking − base) (NaN for base and thinking rows) and the paired difference
      hybrid − row against the row's hybrid with ablation none (NaN for rows that are not ablations), each
      with its percentile bootstrap interval over prompts
  /steered_share, /disagree_share, /hit_share, /think_tokens [R] f64; /category_usage [R, C] f64
  root attributes: partial (0/1), bootstrap, ci (a number written as a string), categories (C)
"""
from __future__ import annotations

import configparser
import math
import pathlib
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .schema import (Artifact, PathLike, SchemaError, attr, first_index, int_attr, json_attr, keyed_file, open_h5, provenance, read,
                     require_keys, str_attr)

HYBRID_TASK = Artifact(dir="hybrid", file="tasks/{key}.h5", format="thinksteer.hybrid_task", schema_version=1, stage="sweep run")
HYBRID_SUMMARY = Artifact(dir="hybrid", file="summary.h5", format="thinksteer.hybrid_summary", schema_version=1, stage="reduce")
ROLES = ("base", "thinking", "hybrid")
RULES = ("fixed", "mlp", "guardrail")                                              # known rules, in display order
ABLATIONS = ("none", "only-bias", "randcat", "randvec", "randvec-randcat", "randpos")   # known ablations, in display order
# /tokens/kind (hybrid/lockstep.h TokenKind)
AGREE, STEERED, SKIPPED, FORCED, ANSWER, UNSTEERED = range(6)
KINDS = ("agree", "steered", "skipped disagreement", "forced answer prefix", "answer / unsteered model", "randpos unsteered")
KEY = re.compile(r"[0-9a-f]{16}")
POINT_KEYS: dict[str, type | tuple[type, ...]] = {"task": int, "key": str, "dataset": str, "role": str, "rule": str, "ablation": str,
                                                   "layer": int, "seed": int}
PROMPT_COUNTS = ("closed", "new_tokens", "think_tokens", "steered", "disagree", "hits")
TOKEN_INTS = ("id", "kind", "category", "base", "thinking")
SUMMARY_INTS = ("layer", "seed", "n")
SUMMARY_STRS = ("key", "dataset", "role", "rule", "ablation")
SUMMARY_FLOATS = ("accuracy", "accuracy_lo", "accuracy_hi", "gap", "gap_lo", "gap_hi", "vs_hybrid", "vs_hybrid_lo", "vs_hybrid_hi",
                  "steered_share", "disagree_share", "hit_share", "think_tokens")

__all__ = [
    "ABLATIONS", "HYBRID_SUMMARY", "HYBRID_TASK", "KINDS", "ROLES", "RULES", "HybridSummary", "HybridTask",
    "config_value", "finished_hybrid_tasks", "hybrid_task_path", "read_hybrid_summary", "read_hybrid_task",
]


def _number_attr(f: Any, name: str) -> float:
    """A number the C++ writes as a string (std::to_string), e.g. randpos_fraction, ci."""
    v = attr(f, name, required=True)
    try:
        x = float(v) if isinstance(v, (str, int, float)) and not isinstance(v, bool) else math.nan
    except ValueError:
        x = math.nan
    if not math.isfinite(x):
        raise SchemaError(f.filename, f"attribute {name!r}", f"{v!r}, expected a number")
    return x


def config_value(prov: dict[str, Any], section: str, option: str) -> str | None:
    """`[section] option` of the resolved config a provenance object carries (None when absent or empty)."""
    cp = configparser.ConfigParser(interpolation=None, strict=False)   # the resolved config may repeat a section
    try:
        cp.read_string(str(prov.get("config", "")))
        v = cp[section][option].strip()
    except (configparser.Error, KeyError):
        return None
    return v or None


def _check_row(path: pathlib.Path, where: str, role: str, rule: str, ablation: str) -> None:
    """Role known; hybrid rows name a rule and an ablation, base and thinking rows neither."""
    if role not in ROLES:
        raise SchemaError(path, where, f"role {role!r}, expected {', '.join(ROLES)}")
    if role == "hybrid" and (not rule or not ablation):
        raise SchemaError(path, where, f"a hybrid row needs a rule and an ablation (rule {rule!r}, ablation {ablation!r})")
    if role != "hybrid" and (rule or ablation):
        raise SchemaError(path, where, f"a {role} row has no rule or ablation (rule {rule!r}, ablation {ablation!r})")


# ---- hybrid task ----------------------------------------------------------------------------------

def hybrid_task_path(run_dir: PathLike, key: str | None = None) -> pathlib.Path:
    """<run_dir>/hybrid/tasks/<key>.h5, or `run_dir` itself when it names a file (then key is None)."""
    return keyed_file(HYBRID_TASK, run_dir, key)


def finished_hybrid_tasks(run_dir: PathLike) -> list[pathlib.Path]:
    """<run_dir>/hybrid/tasks/<key>.h5 files with their .done marker, by key."""
    tasks = pathlib.Path(run_dir) / HYBRID_TASK.dir / "tasks"
    return sorted(p for p in tasks.glob("*.h5") if KEY.fullmatch(p.stem) and HYBRID_TASK.done_path(p).exists())


@dataclass
class HybridTask:
    """One row of a hybrid sweep: P prompts, C categories, N emitted tokens (N = 0 without hybrid.save_text)."""
    path: pathlib.Path
    task: int
    key: str
    role: str                                     # base | thinking | hybrid
    rule: str                                     # fixed | mlp | guardrail ("" for base and thinking rows)
    ablation: str                                 # none | only-bias | ... ("" for base and thinking rows)
    dataset: str
    layer: int                                    # -1 for base and thinking rows
    seed: int
    randpos_fraction: float
    categories: int                               # C
    ids: npt.NDArray[np.str_]                     # [P]
    answers: npt.NDArray[np.str_]                 # [P]
    references: npt.NDArray[np.str_]              # [P]
    texts: npt.NDArray[np.str_]                   # [P] ("" unless save_text)
    correct: npt.NDArray[np.int64]                # [P] 1 right, 0 wrong, -1 no reference
    closed: npt.NDArray[np.int64]                 # [P]
    new_tokens: npt.NDArray[np.int64]             # [P]
    think_tokens: npt.NDArray[np.int64]           # [P]
    steered: npt.NDArray[np.int64]                # [P]
    disagree: npt.NDArray[np.int64]               # [P]
    hits: npt.NDArray[np.int64]                   # [P]
    category_counts: npt.NDArray[np.int64]        # [P, C]
    token_offsets: npt.NDArray[np.int64]          # [P + 1]
    token_id: npt.NDArray[np.int32]               # [N]
    token_kind: npt.NDArray[np.int32]             # [N] KINDS
    token_category: npt.NDArray[np.int32]         # [N] -1 unless steered
    token_coef: npt.NDArray[np.float32]           # [N]
    token_base: npt.NDArray[np.int32]             # [N] -1: not computed
    token_thinking: npt.NDArray[np.int32]         # [N] -1: not computed
    metrics: dict[str, Any] = field(default_factory=dict)
    point: dict[str, Any] = field(default_factory=dict)
    vectors_file: str = ""
    vectors_hash: str = ""
    model_path: str = ""
    config_sha256: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def prompts(self) -> int:
        return len(self.ids)

    @property
    def n_tokens(self) -> int:
        return len(self.token_id)

    @property
    def accuracy(self) -> float:
        """Mean correctness over the prompts with a reference answer (NaN when none has one)."""
        scored = self.correct[self.correct >= 0]
        return float(scored.mean()) if scored.size else math.nan

    def tokens(self, p: int) -> slice:
        """The rows of /tokens/* that prompt p emitted (empty without save_text)."""
        if not 0 <= p < self.prompts:
            raise IndexError(f"{self.path}: prompt {p} out of range (P = {self.prompts})")
        return slice(int(self.token_offsets[p]), int(self.token_offsets[p + 1]))


def _check_point(path: pathlib.Path, point: dict[str, Any], want: dict[str, Any]) -> None:
    require_keys(path, "attribute 'point'", point, POINT_KEYS)
    for name, v in want.items():
        if point[name] != v:
            raise SchemaError(path, "attribute 'point'", f"{name} {point[name]!r}, but the file's attribute {name!r} is {v!r}")


def _task_values(path: pathlib.Path, t: HybridTask) -> None:
    """Value checks of a task read with the right shapes."""
    i = first_index((t.correct < -1) | (t.correct > 1))
    if i is not None:
        raise SchemaError(path, "/prompts/correct", f"prompt {i}: {t.correct[i]}, expected -1, 0 or 1")
    for name in PROMPT_COUNTS:
        v = getattr(t, name)
        i = first_index(v < 0)
        if i is not None:
            raise SchemaError(path, f"/prompts/{name}", f"prompt {i}: {v[i]}, expected >= 0")
    off = t.token_offsets
    if off[0] != 0 or off[-1] != t.n_tokens:
        raise SchemaError(path, "/tokens/offsets", f"runs from {off[0]} to {off[-1]}, expected 0 to N = {t.n_tokens} (the rows of /tokens/id)")
    i = first_index(np.diff(off) < 0)
    if i is not None:
        raise SchemaError(path, "/tokens/offsets", f"prompt {i}: offset {off[i + 1]} is below {off[i]} (offsets must not decrease)")
    i = first_index((t.token_kind < 0) | (t.token_kind >= len(KINDS)))
    if i is not None:
        raise SchemaError(path, "/tokens/kind", f"token {i}: {t.token_kind[i]}, expected 0..{len(KINDS) - 1}")
    i = first_index((t.token_category < -1) | (t.token_category >= t.categories))
    if i is not None:
        raise SchemaError(path, "/tokens/category", f"token {i}: {t.token_category[i]}, expected -1 or a category in [0, C = {t.categories})")


def read_hybrid_task(run_dir: PathLike, key: str | None = None) -> HybridTask:
    """Reads and checks a task file (<run_dir>/hybrid/tasks/<key>.h5, or the file given): identity, every
    dataset's shape and kind (P from /prompts/id, C from the attribute categories, N from /tokens/id), the
    point against the attributes (and the key it is filed under), role, rule and ablation, correct in
    {-1, 0, 1}, counts >= 0, offsets from 0 to N without decreasing, token kinds and categories in range;
    SchemaError names the file and the dataset or attribute."""
    path = HYBRID_TASK.require(hybrid_task_path(run_dir, key))
    with open_h5(path) as f:
        HYBRID_TASK.check(f)
        C = int_attr(f, "categories")
        if C < 0:
            raise SchemaError(path, "attribute 'categories'", f"{C}, expected >= 0")
        ids = read(f, "/prompts/id", [("prompt", None)], "str")
        P = [("prompt", len(ids))]
        answers, references, texts = (read(f, f"/prompts/{n}", P, "str") for n in ("answer", "reference", "text"))
        correct = read(f, "/prompts/correct", P, "int").astype(np.int64)
        counts = {n: read(f, f"/prompts/{n}", P, "int").astype(np.int64) for n in PROMPT_COUNTS}
        category_counts = read(f, "/prompts/category_counts", [("prompt", len(ids)), ("category", C)], "int").astype(np.int64)
        offsets = read(f, "/tokens/offsets", [("prompt_edge", len(ids) + 1)], "int").astype(np.int64)
        token_id = read(f, "/tokens/id", [("token", None)], "int").astype(np.int32)
        N = [("token", len(token_id))]
        tok = {n: read(f, f"/tokens/{n}", N, "int").astype(np.int32) for n in TOKEN_INTS[1:]}
        coef = read(f, "/tokens/coef", N, "float").astype(np.float32, copy=False)
        names = {n: str_attr(f, n) for n in ("key", "role", "rule", "ablation", "dataset")}
        nums = {n: int_attr(f, n) for n in ("task", "layer", "seed")}
        point = json_attr(f, "point", dict)
        t = HybridTask(path=path, task=nums["task"], key=names["key"], role=names["role"], rule=names["rule"], ablation=names["ablation"],
                       dataset=names["dataset"], layer=nums["layer"], seed=nums["seed"], randpos_fraction=_number_attr(f, "randpos_fraction"),
                       categories=C, ids=ids, answers=answers, references=references, texts=texts, correct=correct,
                       category_counts=category_counts, token_offsets=offsets, token_id=token_id, token_kind=tok["kind"],
                       token_category=tok["category"], token_coef=coef, token_base=tok["base"], token_thinking=tok["thinking"],
                       metrics=json_attr(f, "metrics", dict), point=point, vectors_file=str_attr(f, "vectors_file"), vectors_hash=str_attr(f, "vectors_hash"),
                       model_path=str(attr(f, "model_path", "")), config_sha256=str(attr(f, "config_sha256", "")), provenance=provenance(f),
                       **counts)
    if key is not None and t.key != key:
        raise SchemaError(path, "attribute 'key'", f"{t.key!r}, but the file is filed under {key!r}")
    _check_point(path, point, {**names, **nums})
    _check_row(path, "attribute 'role'", t.role, t.rule, t.ablation)
    _task_values(path, t)
    return t


# ---- hybrid summary -------------------------------------------------------------------------------

@dataclass
class HybridSummary:
    """One hybrid summary.h5: R finished tasks in plan order (per dataset base, thinking, then hybrid rows)."""
    path: pathlib.Path
    task: npt.NDArray[np.int64]              # [R]
    layer: npt.NDArray[np.int64]             # [R] -1 for base and thinking rows
    seed: npt.NDArray[np.int64]              # [R]
    n: npt.NDArray[np.int64]                 # [R] prompts
    key: npt.NDArray[np.str_]                # [R]
    dataset: npt.NDArray[np.str_]            # [R]
    role: npt.NDArray[np.str_]               # [R] base | thinking | hybrid
    rule: npt.NDArray[np.str_]               # [R] "" for base and thinking rows
    ablation: npt.NDArray[np.str_]           # [R] "" for base and thinking rows
    accuracy: npt.NDArray[np.float64]        # [R] over the prompts with a reference
    accuracy_lo: npt.NDArray[np.float64]     # [R] bootstrap interval
    accuracy_hi: npt.NDArray[np.float64]     # [R]
    gap: npt.NDArray[np.float64]             # [R] (row − base) / (thinking − base); NaN for base and thinking rows
    gap_lo: npt.NDArray[np.float64]          # [R]
    gap_hi: npt.NDArray[np.float64]          # [R]
    vs_hybrid: npt.NDArray[np.float64]       # [R] hybrid − row, paired (NaN unless an ablation row)
    vs_hybrid_lo: npt.NDArray[np.float64]    # [R]
    vs_hybrid_hi: npt.NDArray[np.float64]    # [R]
    steered_share: npt.NDArray[np.float64]   # [R] mean over prompts of steered steps / new tokens
    disagree_share: npt.NDArray[np.float64]  # [R]
    hit_share: npt.NDArray[np.float64]       # [R] steered steps that emitted the thinking model's token / steered steps
    think_tokens: npt.NDArray[np.float64]    # [R] mean thinking length
    category_usage: npt.NDArray[np.float64]  # [R, C] share of steered steps per category
    categories: int = 0
    bootstrap: int = 0
    ci: float = 0.95
    partial: bool = False
    provenance: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.task)

    def interval(self, name: str, i: int) -> tuple[float, float, float]:
        """(value, lo, hi) of column `name` (accuracy, gap or vs_hybrid) at row i."""
        return float(getattr(self, name)[i]), float(getattr(self, f"{name}_lo")[i]), float(getattr(self, f"{name}_hi")[i])

    def datasets(self) -> list[str]:
        """The datasets in row order, each once."""
        return list(dict.fromkeys(self.dataset.tolist()))

    def rows(self, dataset: str | None = None, role: str | None = None, ablation: str | None = None) -> list[int]:
        """The rows matching every filter given, in row order."""
        keep = np.ones(len(self), dtype=bool)
        for col, want in ((self.dataset, dataset), (self.role, role), (self.ablation, ablation)):
            if want is not None:
                keep &= col == want
        return [int(i) for i in np.flatnonzero(keep)]

    def row_of(self, key: str) -> int | None:
        hits = np.flatnonzero(self.key == key)
        return int(hits[0]) if hits.size else None


def _summary_values(path: pathlib.Path, s: HybridSummary) -> None:
    for i in range(len(s)):
        _check_row(path, f"/role: row {i}", str(s.role[i]), str(s.rule[i]), str(s.ablation[i]))
    i = first_index([not KEY.fullmatch(str(k)) for k in s.key])
    if i is not None:
        raise SchemaError(path, "/key", f"row {i}: {str(s.key[i])!r} is not 16 hex digits")
    keys = s.key.tolist()
    i = first_index([keys.index(k) != j for j, k in enumerate(keys)])
    if i is not None:
        raise SchemaError(path, "/key", f"row {i}: {keys[i]} repeats row {keys.index(keys[i])}")
    i = first_index(s.n < 0)
    if i is not None:
        raise SchemaError(path, "/n", f"row {i}: {s.n[i]}, expected >= 0")
    for name in ("accuracy", "accuracy_lo", "accuracy_hi"):
        v = getattr(s, name)
        i = first_index(np.isfinite(v) & ((v < 0) | (v > 1)))
        if i is not None:
            raise SchemaError(path, f"/{name}", f"row {i}: {v[i]}, expected a share in [0, 1] (or NaN)")


def read_hybrid_summary(run_dir: PathLike) -> HybridSummary:
    """Reads and checks <run_dir>/hybrid/summary.h5 (or the file given): identity, every dataset's shape and
    kind (R from /task, C from the attribute categories), roles with their rule and ablation, 16-hex-digit
    keys without repeats, n >= 0, accuracies in [0, 1]; SchemaError names the file and the dataset or attribute."""
    path = HYBRID_SUMMARY.require(HYBRID_SUMMARY.path(run_dir))
    with open_h5(path) as f:
        HYBRID_SUMMARY.check(f)
        C = int_attr(f, "categories")
        if C < 0:
            raise SchemaError(path, "attribute 'categories'", f"{C}, expected >= 0")
        task = read(f, "/task", [("row", None)], "int").astype(np.int64)
        R = [("row", len(task))]
        ints = {n: read(f, f"/{n}", R, "int").astype(np.int64) for n in SUMMARY_INTS}
        strs = {n: read(f, f"/{n}", R, "str") for n in SUMMARY_STRS}
        values = {n: read(f, f"/{n}", R, "float").astype(np.float64) for n in SUMMARY_FLOATS}
        usage = read(f, "/category_usage", [("row", len(task)), ("category", C)], "float").astype(np.float64)
        partial = int_attr(f, "partial", 0)
        if partial not in (0, 1):
            raise SchemaError(path, "attribute 'partial'", f"{partial}, expected 0 or 1")
        ci = _number_attr(f, "ci")
        if not 0 < ci < 1:
            raise SchemaError(path, "attribute 'ci'", f"{ci}, expected a level in (0, 1)")
        s = HybridSummary(path=path, task=task, category_usage=usage, categories=C, bootstrap=int_attr(f, "bootstrap", 0), ci=ci,
                          partial=bool(partial), provenance=provenance(f), **ints, **strs, **values)
    _summary_values(path, s)
    return s
