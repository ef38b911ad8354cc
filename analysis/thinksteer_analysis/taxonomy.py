"""The taxonomy's artifacts (docs/algorithms.md §B.4-§B.6, docs/run-layout.md "taxonomy/"): one clustering per
task of a taxonomy sweep, the summary `reduce` writes, and the cluster titles `thinksteer titles` writes;
read_sentences (the sentences they cluster, module sentences) is re-exported here. Each reader checks
identity, shapes and values and raises SchemaError naming the file and the dataset, attribute or JSON key.

    from thinksteer_analysis.taxonomy import read_sentences, read_taxonomy_task, read_taxonomy_summary, read_titles
    t = read_taxonomy_task(run_dir, key)        # or the path of a task file: t.assign, t.metric("fvu")
    s = read_taxonomy_summary(run_dir)          # s.mean["nmi"][g], s.selected (group index or None), s.groups()
    titles = read_titles(run_dir, key)          # titles.clusters[c].title

taxonomy/tasks/<key>.h5 (+ .done), thinksteer.taxonomy_task schema_version 1 (src/artifacts/taxonomy_task.h),
N sentences, K clusters:
  /assign [N] i64, /sizes [K] i64, /centres [K, d] f32, /loss [E] f64,
  /sae/{w_enc [K, d], b_enc [K], w_dec [K, d], b_dec [d]} f32 (method sae only)
  root attributes: task, key, point (JSON: task, key, sweep, layer, k, method, seed), metrics (JSON object;
  the C++ writes NaN as null), sentences_file, sentences_hash, and the identity and provenance
taxonomy/summary.h5 (+ summary.csv), thinksteer.taxonomy_summary schema_version 1
(src/artifacts/taxonomy_summary.h), G groups (layer, K, method), M metrics:
  /metrics [M] str; /groups/{layer, k, n_seeds} [G] i64, /groups/method [G] str, /groups/score [G] f64,
  /groups/<metric>, <metric>_lo, <metric>_hi [G] f64 for each metric (95% t interval; NaN with one seed)
  root attributes: rule, selected_layer, selected_k, selected_method (-1, -1, "" when none), partial,
  n_tasks, n_missing, missing
titles/<key>/titles.json, a JSON object with "format": "thinksteer.titles", "version": 1, key (the
taxonomy task's), layer, k, method (sae | kmeans), seed, source (offline | llm), clusters: exactly k
objects {index (0..k-1 in order), title, description, size, words [str], examples [str], and optionally
random [str]}, optionally hook; beside it, for an SAE, a SAELens-style export (cfg.json,
sae_weights.safetensors, ...) not read here, and titles/index.json (not read: titles_keys lists the directories).
"""
from __future__ import annotations

import json
import pathlib
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .schema import (Artifact, PathLike, SchemaError, attr, first_index, int_attr, json_file, keyed_file, open_h5, provenance, read,
                     require_keys)
from .sentences import SENTENCES, Sentences, read_sentences

TAXONOMY_TASK = Artifact(dir="taxonomy", file="tasks/{key}.h5", format="thinksteer.taxonomy_task", schema_version=1, stage="sweep run")
TAXONOMY_SUMMARY = Artifact(dir="taxonomy", file="summary.h5", format="thinksteer.taxonomy_summary", schema_version=1, stage="reduce")
# JSON: `format` and `version` are keys of the object (schema_version stands for "version").
TITLES = Artifact(dir="titles", file="{key}/titles.json", format="thinksteer.titles", schema_version=1, stage="titles")
SUMMARY_CSV = "summary.csv"     # beside taxonomy/summary.h5
METHODS = ("sae", "kmeans")
SOURCES = ("offline", "llm")
KEY = re.compile(r"[0-9a-f]{16}")
POINT_KEYS: dict[str, type | tuple[type, ...]] = {"task": int, "key": str, "sweep": str, "layer": int, "k": int, "method": str, "seed": int}
TITLES_KEYS: dict[str, type | tuple[type, ...]] = {"key": str, "layer": int, "k": int, "method": str, "seed": int, "source": str, "clusters": list}
CLUSTER_KEYS: dict[str, type | tuple[type, ...]] = {"index": int, "title": str, "description": str, "size": int, "words": list, "examples": list}

__all__ = [
    "SENTENCES", "TAXONOMY_SUMMARY", "TAXONOMY_TASK", "TITLES", "Sentences", "TaxonomySummary", "TaxonomyTask", "TitleCluster", "Titles",
    "finished_taxonomy_tasks", "read_sentences", "read_taxonomy_summary", "read_taxonomy_task", "read_titles", "taxonomy_task_path",
    "titles_keys", "titles_path",
]


def _json_attr(f: Any, name: str) -> dict[str, Any]:
    """Root attribute `name` parsed as a JSON object (SchemaError naming it when absent, not JSON or not an object)."""
    text = attr(f, name, required=True)
    try:
        v = json.loads(text) if isinstance(text, str) else None
    except ValueError as e:
        raise SchemaError(f.filename, f"attribute {name!r}", f"not JSON: {e}") from None
    if not isinstance(v, dict):
        raise SchemaError(f.filename, f"attribute {name!r}", "is not a JSON object")
    return v


# ---- taxonomy task --------------------------------------------------------------------------------

def taxonomy_task_path(run_dir: PathLike, key: str | None = None) -> pathlib.Path:
    """<run_dir>/taxonomy/tasks/<key>.h5, or `run_dir` itself when it names a file (then key is None)."""
    return keyed_file(TAXONOMY_TASK, run_dir, key)


@dataclass
class TaxonomyTask:
    """One finished clustering: N sentences, K clusters in d dimensions."""
    path: pathlib.Path
    task: int
    key: str
    layer: int
    k: int
    method: str                                # sae | kmeans
    seed: int
    assign: npt.NDArray[np.int64]              # [N] cluster of each sentence (row of the sentences file)
    sizes: npt.NDArray[np.int64]               # [K] (0: a dead latent)
    centres: npt.NDArray[np.float32]           # [K, d] unit cluster directions
    loss: npt.NDArray[np.float64]              # [E] SAE: FVU per epoch; k-means: [1], objective / N
    sae: dict[str, npt.NDArray[np.float32]] | None   # w_enc, b_enc, w_dec, b_dec (method sae); None for k-means
    metrics: dict[str, Any]                    # as parsed (null: the C++ wrote NaN)
    sentences_file: str = ""
    sentences_hash: str = ""
    config_sha256: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.assign)

    @property
    def d(self) -> int:
        return int(self.centres.shape[1])

    def metric(self, name: str) -> float:
        """Metric `name` as a float (nan when absent, null or not a number)."""
        v = self.metrics.get(name)
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else float("nan")


def _sae(f: Any, K: int, d: int) -> dict[str, npt.NDArray[np.float32]]:
    dims = {"w_enc": [("K", K), ("d", d)], "b_enc": [("K", K)], "w_dec": [("K", K), ("d", d)], "b_dec": [("d", d)]}
    return {name: read(f, f"/sae/{name}", shape, "float").astype(np.float32, copy=False) for name, shape in dims.items()}


def _check_point(path: pathlib.Path, point: dict[str, Any], task: int, key: str, K: int) -> None:
    where = "attribute 'point'"
    require_keys(path, where, point, POINT_KEYS)
    if point["sweep"] != "taxonomy":
        raise SchemaError(path, where, f"key 'sweep' is {point['sweep']!r}, expected 'taxonomy'")
    if point["method"] not in METHODS:
        raise SchemaError(path, where, f"key 'method' must be {' or '.join(METHODS)}, got {point['method']!r}")
    if (point["task"], point["key"]) != (task, key):
        raise SchemaError(path, where, f"task {point['task']} key {point['key']}, but the file is task {task} key {key}")
    if point["k"] != K:
        raise SchemaError(path, "/centres", f"{K} clusters, but the point has k = {point['k']}")


def read_taxonomy_task(run_dir: PathLike, key: str | None = None) -> TaxonomyTask:
    """Reads and checks a task file (<run_dir>/taxonomy/tasks/<key>.h5, or the file given): identity,
    shapes and kinds, the point (and that its key is the one the file is filed under), assignments in
    [0, K) and sizes that count them, the SAE's state for method sae; SchemaError names the file and field."""
    path = TAXONOMY_TASK.require(taxonomy_task_path(run_dir, key))
    with open_h5(path) as f:
        TAXONOMY_TASK.check(f)
        centres = read(f, "/centres", [("K", None), ("d", None)], "float").astype(np.float32, copy=False)
        K, d = centres.shape
        assign = read(f, "/assign", [("N", None)], "int").astype(np.int64)
        sizes = read(f, "/sizes", [("K", K)], "int").astype(np.int64)
        loss = read(f, "/loss", [("epoch", None)], "float").astype(np.float64)
        task, tkey = int_attr(f, "task"), str(attr(f, "key", required=True))
        point = _json_attr(f, "point")
        _check_point(path, point, task, tkey, K)
        sae = _sae(f, K, d) if point["method"] == "sae" or "sae" in f else None
        t = TaxonomyTask(path=path, task=task, key=tkey, layer=point["layer"], k=K, method=point["method"], seed=point["seed"],
                         assign=assign, sizes=sizes, centres=centres, loss=loss, sae=sae, metrics=_json_attr(f, "metrics"),
                         sentences_file=str(attr(f, "sentences_file", required=True)), sentences_hash=str(attr(f, "sentences_hash", required=True)),
                         config_sha256=str(attr(f, "config_sha256", "")), provenance=provenance(f))
    if key is not None and t.key != key:
        raise SchemaError(path, "attribute 'key'", f"{t.key!r}, but the file is filed under {key!r}")
    i = first_index((assign < 0) | (assign >= K))
    if i is not None:
        raise SchemaError(path, "/assign", f"row {i}: cluster {assign[i]} is outside [0, K = {K})")
    counts = np.bincount(assign, minlength=K)
    c = first_index(counts != sizes)
    if c is not None:
        raise SchemaError(path, "/sizes", f"cluster {c}: {sizes[c]}, but /assign puts {counts[c]} sentences there")
    return t


def finished_taxonomy_tasks(run_dir: PathLike) -> list[pathlib.Path]:
    """<run_dir>/taxonomy/tasks/<key>.h5 files with their .done marker, by key."""
    tasks = pathlib.Path(run_dir) / TAXONOMY_TASK.dir / "tasks"
    return sorted(p for p in tasks.glob("*.h5") if KEY.fullmatch(p.stem) and TAXONOMY_TASK.done_path(p).exists())


# ---- taxonomy summary -----------------------------------------------------------------------------

@dataclass
class TaxonomySummary:
    """One taxonomy summary.h5: G groups (layer, K, method), each metric's mean and 95% t interval over the
    group's finished seeds (NaN bounds with one seed)."""
    path: pathlib.Path
    metrics: list[str]                           # [M]
    layer: npt.NDArray[np.int64]                 # [G]
    k: npt.NDArray[np.int64]                     # [G]
    method: npt.NDArray[np.str_]                 # [G] sae | kmeans
    n_seeds: npt.NDArray[np.int64]               # [G]
    score: npt.NDArray[np.float64]               # [G] selection score (NaN: not judged)
    mean: dict[str, npt.NDArray[np.float64]]     # metric -> [G]
    lo: dict[str, npt.NDArray[np.float64]]       # metric -> [G]
    hi: dict[str, npt.NDArray[np.float64]]       # metric -> [G]
    selected: int | None                         # the chosen group, None when the rule chose none
    rule: str = ""
    partial: bool = False
    n_tasks: int = 0
    n_missing: int = 0
    missing: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.layer)

    def group(self, g: int) -> dict[str, Any]:
        """Group g as a dict: layer, k, method, n_seeds, score, selected, and <metric>, <metric>_lo, <metric>_hi."""
        row: dict[str, Any] = {"layer": int(self.layer[g]), "k": int(self.k[g]), "method": str(self.method[g]), "n_seeds": int(self.n_seeds[g]),
                               "score": float(self.score[g]), "selected": g == self.selected}
        for m in self.metrics:
            row.update({m: float(self.mean[m][g]), f"{m}_lo": float(self.lo[m][g]), f"{m}_hi": float(self.hi[m][g])})
        return row

    def groups(self) -> list[dict[str, Any]]:
        return [self.group(g) for g in range(len(self))]

    def series(self) -> list[tuple[tuple[int, str], npt.NDArray[np.intp]]]:
        """((layer, method), group rows by ascending K) for each (layer, method), by layer then method."""
        keys = sorted({(int(l), str(m)) for l, m in zip(self.layer, self.method)})
        out = []
        for l, m in keys:
            rows = np.flatnonzero((self.layer == l) & (self.method == m))
            out.append(((l, m), rows[np.argsort(self.k[rows], kind="stable")]))
        return out


def _selected(path: pathlib.Path, f: Any, layer: np.ndarray, k: np.ndarray, method: np.ndarray) -> int | None:
    """The group the attributes selected_layer, selected_k, selected_method name (None for -1, -1, "")."""
    want = (int_attr(f, "selected_layer"), int_attr(f, "selected_k"), str(attr(f, "selected_method", required=True)))
    if want == (-1, -1, ""):
        return None
    hits = np.flatnonzero((layer == want[0]) & (k == want[1]) & (method == want[2]))
    if not hits.size:
        raise SchemaError(path, "attribute 'selected_layer'", f"layer {want[0]}, K {want[1]}, method {want[2]!r} is not a group of /groups")
    return int(hits[0])


def read_taxonomy_summary(run_dir: PathLike) -> TaxonomySummary:
    """Reads and checks <run_dir>/taxonomy/summary.h5 (or the file given): identity, every dataset's shape
    and kind, groups distinct with a known method and at least one seed, the selected group among them;
    SchemaError names the file and the dataset or attribute."""
    path = TAXONOMY_SUMMARY.require(TAXONOMY_SUMMARY.path(run_dir))
    with open_h5(path) as f:
        TAXONOMY_SUMMARY.check(f)
        metrics = [str(m) for m in read(f, "/metrics", [("M", None)], "str")]
        layer = read(f, "/groups/layer", [("G", None)], "int").astype(np.int64)
        G = [("G", len(layer))]
        k, n_seeds = (read(f, f"/groups/{name}", G, "int").astype(np.int64) for name in ("k", "n_seeds"))
        method = read(f, "/groups/method", G, "str")
        score = read(f, "/groups/score", G, "float").astype(np.float64)
        mean, lo, hi = ({m: read(f, f"/groups/{m}{suffix}", G, "float").astype(np.float64) for m in metrics} for suffix in ("", "_lo", "_hi"))
        s = TaxonomySummary(path=path, metrics=metrics, layer=layer, k=k, method=method, n_seeds=n_seeds, score=score, mean=mean, lo=lo, hi=hi,
                            selected=None, rule=str(attr(f, "rule", required=True)), partial=bool(int_attr(f, "partial", 0)),
                            n_tasks=int_attr(f, "n_tasks", 0), n_missing=int_attr(f, "n_missing", 0),
                            missing=str(attr(f, "missing", "")), provenance=provenance(f))
        dup = sorted({m for m in metrics if metrics.count(m) > 1})
        if dup:
            raise SchemaError(path, "/metrics", f"metric {dup[0]!r} appears twice")
        i = first_index(~np.isin(method, METHODS))
        if i is not None:
            raise SchemaError(path, "/groups/method", f"row {i}: {str(method[i])!r} is not {' or '.join(METHODS)}")
        i = first_index(n_seeds < 1)
        if i is not None:
            raise SchemaError(path, "/groups/n_seeds", f"row {i}: {n_seeds[i]}, a group has at least one finished seed")
        seen: dict[tuple[int, int, str], int] = {}
        for g, key in enumerate(zip(layer.tolist(), k.tolist(), method.tolist())):
            if key in seen:
                raise SchemaError(path, "/groups/layer", f"row {g}: layer {key[0]}, K {key[1]}, {key[2]} repeats row {seen[key]}")
            seen[key] = g
        s.selected = _selected(path, f, layer, k, method)
    return s


# ---- titles ---------------------------------------------------------------------------------------

def titles_path(run_dir: PathLike, key: str | None = None) -> pathlib.Path:
    """<run_dir>/titles/<key>/titles.json, or `run_dir` itself when it names a file (then key is None)."""
    p = pathlib.Path(run_dir)
    if key is None:
        if p.is_dir():
            raise ValueError(f"{p}: a run directory needs the taxonomy task's key")
        return p
    return TITLES.path(p, key=key)


def titles_keys(run_dir: PathLike) -> list[str]:
    """The keys <k> of the <run_dir>/titles/<k>/titles.json files, sorted (a directory not named by a key,
    such as the <k>.partial/ one being written, is not listed)."""
    return sorted(p.parent.name for p in (pathlib.Path(run_dir) / TITLES.dir).glob("*/titles.json") if KEY.fullmatch(p.parent.name) and p.is_file())


@dataclass(frozen=True)
class TitleCluster:
    index: int
    title: str
    description: str
    size: int                      # sentences in the cluster
    words: tuple[str, ...]         # distinctive terms, highest first
    examples: tuple[str, ...]      # example sentences, closest to the cluster's direction first
    random: tuple[str, ...] = ()   # optional key `random`: sentences of the cluster drawn at random


@dataclass
class Titles:
    """One titles.json: the titles of the K clusters of taxonomy task `key`."""
    path: pathlib.Path
    key: str
    layer: int
    k: int
    method: str                    # sae | kmeans
    seed: int
    source: str                    # offline | llm
    clusters: list[TitleCluster]   # [k], cluster c at index c
    hook: str = ""                 # optional key `hook`


def _identity(path: pathlib.Path, obj: dict[str, Any]) -> None:
    """The object's keys `format` and `version` are TITLES' (SchemaError naming the key otherwise)."""
    for name, want in (("format", TITLES.format), ("version", TITLES.schema_version)):
        if name not in obj:
            raise SchemaError(path, f"key {name!r}", "missing")
        got = obj[name]
        if name == "format" and got != want:
            raise SchemaError(path, "key 'format'", f"{got!r}, expected {want!r} (the file `thinksteer {TITLES.stage}` writes)")
        if name == "version" and (got != want or isinstance(got, bool)):
            raise SchemaError(path, "key 'version'", f"{got!r} of {TITLES.format} is not the version this reader knows ({want}): "
                              f"regenerate it with `thinksteer {TITLES.stage}`")


def _cluster(path: pathlib.Path, i: int, c: Any) -> TitleCluster:
    where = f"clusters[{i}]"
    if not isinstance(c, dict):
        raise SchemaError(path, where, "not a JSON object")
    require_keys(path, where, c, CLUSTER_KEYS)
    if c["index"] != i:
        raise SchemaError(path, where, f"key 'index' is {c['index']}, expected {i} (clusters in index order)")
    if c["size"] < 0:
        raise SchemaError(path, where, f"key 'size' is {c['size']}, expected >= 0")
    for name in ("words", "examples", "random"):
        v = c.get(name, [])
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise SchemaError(path, where, f"key {name!r} must be a list of strings")
    return TitleCluster(index=i, title=c["title"], description=c["description"], size=c["size"], words=tuple(c["words"]),
                        examples=tuple(c["examples"]), random=tuple(c.get("random", [])))


def read_titles(run_dir: PathLike, key: str | None = None) -> Titles:
    """Reads and checks <run_dir>/titles/<key>/titles.json (or the file given): identity, every key's type,
    method and source, exactly k clusters indexed 0..k-1 in order, and that its key is the one it is filed
    under; SchemaError names the file and the key (`clusters[i]` for a cluster's)."""
    path = TITLES.require(titles_path(run_dir, key))
    obj = json_file(path)
    _identity(path, obj)
    where = "top level"
    require_keys(path, where, obj, TITLES_KEYS)
    if not KEY.fullmatch(obj["key"]):
        raise SchemaError(path, where, f"key 'key' is {obj['key']!r}, expected 16 hex digits")
    if key is not None and obj["key"] != key:
        raise SchemaError(path, where, f"key 'key' is {obj['key']!r}, but the file is filed under {key!r}")
    for name, allowed in (("method", METHODS), ("source", SOURCES)):
        if obj[name] not in allowed:
            raise SchemaError(path, where, f"key {name!r} must be {' or '.join(allowed)}, got {obj[name]!r}")
    if len(obj["clusters"]) != obj["k"]:
        raise SchemaError(path, "clusters", f"{len(obj['clusters'])} clusters, but k = {obj['k']}")
    if not isinstance(obj.get("hook", ""), str):
        raise SchemaError(path, where, f"key 'hook' is {obj['hook']!r}, expected str")
    clusters = [_cluster(path, i, c) for i, c in enumerate(obj["clusters"])]
    return Titles(path=path, key=obj["key"], layer=obj["layer"], k=obj["k"], method=obj["method"], seed=obj["seed"], source=obj["source"],
                  clusters=clusters, hook=obj.get("hook", ""))
