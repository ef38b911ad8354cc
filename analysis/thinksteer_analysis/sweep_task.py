"""One finished sweep task written by `thinksteer sweep run` (src/stages/sweep.cpp):
<run.dir>/sweep/tasks/<key>.h5 (+ .done), format thinksteer.sweep_task schema_version 2 (n prompts, K
labels): per prompt of the point's dataset the steered generation's measurements. `reduce` gathers the
tasks into sweep/summary.h5.

    from thinksteer_analysis.sweep_task import load_sweep_task, finished_tasks
    t = load_sweep_task(run_dir, key)      # or the path of a task file
    t.label_tokens[:, t.labels.index("backtracking")]     # int64 [n]
    t.token_ids(0)                                         # int32: prompt 0's generated token ids
    for point, path in finished_tasks(run_dir): ...       # manifest rows whose task file is done

<key>.h5:
  /labels [K] str
  /prompts/id, answer, text [n] str (text is "" unless steer.save_text)
  /prompts/correct [n] int64 (1 correct, 0 wrong or unfinished, -1 no reference answer)
  /prompts/closed [n] uint8; /prompts/think_tokens, new_tokens [n] int64
  /prompts/label_tokens, label_spans [n, K] int64 (tokens / spans of each label in the thinking part)
  /prompts/tokens [sum new_tokens] int32, /prompts/token_offset [n + 1] int64 (schema 2): the generated token ids,
  prompt i's at tokens[token_offset[i]:token_offset[i + 1]]
  root attributes: task, key, point (the manifest row as JSON), vectors_file, vectors_sha256, annotator,
  and the provenance
"""
from __future__ import annotations

import pathlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .schema import Artifact, PathLike, SchemaError, attr, open_h5, parse_json_object, provenance, read
from .sweep_manifest import SweepPoint, load_sweep_manifest

SWEEP_TASK = Artifact(dir="sweep", file="tasks/{key}.h5", format="thinksteer.sweep_task", schema_version=2, stage="sweep run")
FORMAT = SWEEP_TASK.format
SCHEMA_VERSION = SWEEP_TASK.schema_version
PATH = SWEEP_TASK.relpath                  # "sweep/tasks/{key}.h5"


def task_path(run_dir: PathLike, key: str | None = None) -> pathlib.Path:
    """<run_dir>/sweep/tasks/<key>.h5, or `run_dir` itself when it names a file (then key is None)."""
    p = pathlib.Path(run_dir)
    if key is None:
        if p.is_dir():
            raise ValueError(f"{p}: a run directory needs the task's key")
        return p
    return SWEEP_TASK.path(p, key=key)


@dataclass
class SweepTask:
    """One task file: the point's measurements per prompt."""
    path: pathlib.Path
    labels: list[str]                          # [K]
    prompt_id: npt.NDArray[np.str_]            # [n]
    answer: npt.NDArray[np.str_]               # [n] the extracted answer
    text: npt.NDArray[np.str_]                 # [n] generated text ("" unless steer.save_text)
    correct: npt.NDArray[np.int64]             # [n] 1, 0, or -1 (no reference answer)
    closed: npt.NDArray[np.bool_]              # [n] the trace closed </think>
    think_tokens: npt.NDArray[np.int64]        # [n]
    new_tokens: npt.NDArray[np.int64]          # [n]
    label_tokens: npt.NDArray[np.int64]        # [n, K]
    label_spans: npt.NDArray[np.int64]         # [n, K]
    tokens: npt.NDArray[np.int32]              # [sum new_tokens] generated token ids, back to back
    token_offset: npt.NDArray[np.int64]        # [n + 1]
    task: int = -1
    key: str = ""
    point: SweepPoint | None = None
    vectors_file: str = ""
    vectors_sha256: str = ""
    annotator: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.prompt_id)

    def token_ids(self, i: int) -> npt.NDArray[np.int32]:
        """Prompt i's generated token ids."""
        return self.tokens[self.token_offset[i]:self.token_offset[i + 1]]

    def accuracy(self) -> float:
        """Share correct among the prompts with a reference answer (nan when none has one)."""
        answered = self.correct >= 0
        return float(self.correct[answered].mean()) if answered.any() else float("nan")


def load_sweep_task(run_dir: PathLike, key: str | None = None) -> SweepTask:
    """Reads and checks a task file (<run_dir>/sweep/tasks/<key>.h5, or the file given): identity, every
    dataset's shape and kind, value ranges, and that its key attribute is the one it is filed under;
    SchemaError names the file and dataset."""
    path = SWEEP_TASK.require(task_path(run_dir, key))
    with open_h5(path) as f:
        SWEEP_TASK.check(f)
        labels = [str(x) for x in read(f, "/labels", [("label", None)], "str")]
        K = len(labels)
        prompt_id = read(f, "/prompts/id", [("prompt", None)], "str")
        n = len(prompt_id)
        ints = {name: read(f, f"/prompts/{name}", [("prompt", n)], "int").astype(np.int64) for name in ("correct", "think_tokens", "new_tokens")}
        per_label = {name: read(f, f"/prompts/{name}", [("prompt", n), ("label", K)], "int").astype(np.int64) for name in ("label_tokens", "label_spans")}
        tokens = read(f, "/prompts/tokens", [("token", None)], "int").astype(np.int32)
        token_offset = read(f, "/prompts/token_offset", [("prompt_edge", n + 1)], "int").astype(np.int64)
        point_text = str(attr(f, "point", ""))
        t = SweepTask(path=path, labels=labels, prompt_id=prompt_id, answer=read(f, "/prompts/answer", [("prompt", n)], "str"),
                      text=read(f, "/prompts/text", [("prompt", n)], "str"), closed=read(f, "/prompts/closed", [("prompt", n)], "uint8").astype(bool),
                      **ints, **per_label, tokens=tokens, token_offset=token_offset, task=int(attr(f, "task", -1)), key=str(attr(f, "key", required=True)),
                      point=SweepPoint.from_row(parse_json_object(point_text), path, "attribute 'point'") if point_text else None,
                      vectors_file=str(attr(f, "vectors_file", "")), vectors_sha256=str(attr(f, "vectors_sha256", "")),
                      annotator=str(attr(f, "annotator", "")), provenance=provenance(f))
    if key is not None and t.key != key:
        raise SchemaError(path, "attribute 'key'", f"{t.key!r}, but the file is filed under {key!r}")
    if t.point is not None and (t.point.key != t.key or t.point.task != t.task):
        raise SchemaError(path, "attribute 'point'", f"task {t.point.task} key {t.point.key}, but the file is task {t.task} key {t.key}")
    bad = np.flatnonzero(~np.isin(t.correct, (-1, 0, 1)))
    if bad.size:
        raise SchemaError(path, "/prompts/correct", f"row {bad[0]}: {t.correct[bad[0]]} is not 1, 0 or -1")
    bad = np.flatnonzero((t.think_tokens < 0) | (t.think_tokens > t.new_tokens))
    if bad.size:
        raise SchemaError(path, "/prompts/think_tokens", f"row {bad[0]}: {t.think_tokens[bad[0]]} outside [0, new_tokens = {t.new_tokens[bad[0]]}]")
    if t.token_offset[0] != 0 or t.token_offset[-1] != len(t.tokens):
        raise SchemaError(path, "/prompts/token_offset", f"runs from {t.token_offset[0]} to {t.token_offset[-1]}, not 0 to {len(t.tokens)} tokens")
    bad = np.flatnonzero(np.diff(t.token_offset) != t.new_tokens)
    if bad.size:
        raise SchemaError(path, "/prompts/token_offset", f"row {bad[0]}: {np.diff(t.token_offset)[bad[0]]} tokens, but new_tokens says {t.new_tokens[bad[0]]}")
    for name in ("label_tokens", "label_spans"):
        a = getattr(t, name)
        if np.any(a < 0):
            i, k = map(int, np.argwhere(a < 0)[0])
            raise SchemaError(path, f"/prompts/{name}", f"row {i}, label {labels[k]!r}: negative count {a[i, k]}")
    return t


def finished_tasks(run_dir: PathLike) -> list[tuple[SweepPoint, pathlib.Path]]:
    """The manifest's points whose task file and .done marker exist, with the file's path, in task order."""
    out = []
    for p in load_sweep_manifest(run_dir):
        path = task_path(run_dir, p.key)
        if path.exists() and SWEEP_TASK.done_path(run_dir, key=p.key).exists():
            out.append((p, path))
    return out
