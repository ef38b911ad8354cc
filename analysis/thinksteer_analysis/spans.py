"""Behaviour spans written by `thinksteer annotate` (src/stages/annotate.cpp): <run.dir>/annotate/spans.h5,
format thinksteer.spans schema_version 1 (S spans, N traces, K labels), beside spans.jsonl (one line per
trace, for people) and problems.jsonl (one line per thing skipped).

    from thinksteer_analysis.spans import load_spans
    s = load_spans(run_dir)                 # or the path of a spans.h5
    s.labels[s.label[r]], s.char_begin[r]   # span r: its label, code-point range in the trace text
    s.rows(i)                               # the span rows of trace i

spans.h5:
  /labels [K] str, /traces/id [N] str
  /spans/trace [S] int64 (row in /traces), /spans/label [S] int32 (index into /labels),
  /spans/char_begin, char_end [S] int64 (code points of the trace text, end exclusive)
  /traces/span_offset, n_spans, part_begin, part_end, n_sentences, n_problems [N] int64
  with token ranges (annotate with model.path): /spans/token_begin, token_end [S] int64 ((-1, -1): no
  token overlaps), /traces/n_tokens, n_prompt_tokens [N] int64
  root attributes: annotator, annotator_identity, part, text_field, input, token_sequence
  (generation | text | none), char_units
"""
from __future__ import annotations

import pathlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .schema import Artifact, PathLike, SchemaError, attr, check_offsets, open_h5, provenance, read

SPANS = Artifact(dir="annotate", file="spans.h5", format="thinksteer.spans", schema_version=1, stage="annotate")
FORMAT = SPANS.format
SCHEMA_VERSION = SPANS.schema_version
PATH = SPANS.relpath
SPANS_JSONL = "spans.jsonl"        # beside spans.h5
PROBLEMS_JSONL = "problems.jsonl"  # beside spans.h5
TOKEN_SEQUENCES = ("generation", "text", "none")


def spans_path(run_dir: PathLike) -> pathlib.Path:
    """<run_dir>/annotate/spans.h5, or `run_dir` itself when it names a file."""
    return SPANS.path(run_dir)


@dataclass
class Spans:
    """One spans.h5. Token ranges (token_begin, token_end, n_tokens, n_prompt_tokens) are None when the
    file has none (token_sequence "none": annotated without model.path)."""
    path: pathlib.Path
    labels: list[str]                          # [K]
    trace_id: npt.NDArray[np.str_]             # [N]
    trace: npt.NDArray[np.int64]               # [S] row in trace_id
    label: npt.NDArray[np.int64]               # [S] index into labels
    char_begin: npt.NDArray[np.int64]          # [S]
    char_end: npt.NDArray[np.int64]            # [S] exclusive
    span_offset: npt.NDArray[np.int64]         # [N] first span row of each trace
    n_spans: npt.NDArray[np.int64]             # [N]
    part_begin: npt.NDArray[np.int64]          # [N] the annotated part, code points
    part_end: npt.NDArray[np.int64]            # [N]
    n_sentences: npt.NDArray[np.int64]         # [N] sentences the annotator considered
    n_problems: npt.NDArray[np.int64]          # [N] lines of the trace in problems.jsonl
    token_begin: npt.NDArray[np.int64] | None = None   # [S] -1: no token overlaps
    token_end: npt.NDArray[np.int64] | None = None     # [S] exclusive
    n_tokens: npt.NDArray[np.int64] | None = None      # [N] tokens of the trace's sequence
    n_prompt_tokens: npt.NDArray[np.int64] | None = None  # [N] tokens before the trace text
    annotator: str = ""
    part: str = ""
    token_sequence: str = ""                   # generation | text | none
    provenance: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.trace)

    def rows(self, i: int) -> range:
        """The span rows of trace i."""
        o = int(self.span_offset[i])
        return range(o, o + int(self.n_spans[i]))

    def label_index(self, label: str) -> int:
        try:
            return self.labels.index(label)
        except ValueError:
            raise KeyError(f"{self.path}: no label {label!r}; stored: {', '.join(self.labels)}") from None


def load_spans(run_dir: PathLike) -> Spans:
    """Reads and checks <run_dir>/annotate/spans.h5 (or the file given), as src/stages/trace_spans.cpp
    does: identity, shapes, each trace's rows where /traces says, label indices and token ranges in
    range; SchemaError names the file and dataset."""
    path = SPANS.require(spans_path(run_dir))
    with open_h5(path) as f:
        SPANS.check(f)
        labels = [str(x) for x in read(f, "/labels", [("label", None)], "str")]
        trace_id = read(f, "/traces/id", [("trace", None)], "str")
        N = len(trace_id)
        S = len(read(f, "/spans/trace", [("span", None)], "int"))
        per_span = {name: read(f, f"/spans/{name}", [("span", S)], "int").astype(np.int64) for name in ("trace", "label", "char_begin", "char_end")}
        per_trace = {name: read(f, f"/traces/{name}", [("trace", N)], "int").astype(np.int64)
                     for name in ("span_offset", "n_spans", "part_begin", "part_end", "n_sentences", "n_problems")}
        token_sequence = str(attr(f, "token_sequence", "none"))
        tokens: dict[str, npt.NDArray[np.int64]] = {}
        if token_sequence != "none" or "/spans/token_begin" in f:
            tokens = {name: read(f, f"/spans/{name}", [("span", S)], "int").astype(np.int64) for name in ("token_begin", "token_end")}
            tokens.update({name: read(f, f"/traces/{name}", [("trace", N)], "int").astype(np.int64) for name in ("n_tokens", "n_prompt_tokens")})
        s = Spans(path=path, labels=labels, trace_id=trace_id, **per_span, **per_trace, **tokens, annotator=str(attr(f, "annotator", "")),
                  part=str(attr(f, "part", "")), token_sequence=token_sequence, provenance=provenance(f))
    if s.token_sequence not in TOKEN_SEQUENCES:
        raise SchemaError(path, "attribute 'token_sequence'", f"{s.token_sequence!r} is not one of {', '.join(TOKEN_SEQUENCES)}")
    check_offsets(path, "/traces/span_offset", s.span_offset, s.n_spans, S, "/spans/trace")
    bad = np.flatnonzero(s.trace != np.repeat(np.arange(N), s.n_spans))
    if bad.size:
        raise SchemaError(path, "/spans/trace", f"row {bad[0]}: {s.trace[bad[0]]} is not the trace whose rows /traces/span_offset places here")
    bad = np.flatnonzero((s.label < 0) | (s.label >= len(labels)))
    if bad.size:
        raise SchemaError(path, "/spans/label", f"row {bad[0]}: {s.label[bad[0]]} is not an index into /labels ({len(labels)} labels)")
    bad = np.flatnonzero((s.char_begin < 0) | (s.char_end < s.char_begin))
    if bad.size:
        raise SchemaError(path, "/spans/char_begin", f"row {bad[0]}: [{s.char_begin[bad[0]]}, {s.char_end[bad[0]]}) is not a range")
    if s.token_begin is not None and s.token_end is not None and s.n_tokens is not None:
        b, e = s.token_begin, s.token_end
        bad = np.flatnonzero(((b == -1) != (e == -1)) | (b < -1) | (e < b))
        if bad.size:
            raise SchemaError(path, "/spans/token_begin", f"row {bad[0]}: token range [{b[bad[0]]}, {e[bad[0]]}) is neither a range nor (-1, -1)")
        bad = np.flatnonzero(e > s.n_tokens[s.trace]) if S else np.zeros(0, dtype=np.int64)
        if bad.size:
            r = bad[0]
            raise SchemaError(path, "/spans/token_end", f"row {r}: {e[r]} is past the trace's {s.n_tokens[s.trace[r]]} tokens (/traces/n_tokens)")
    return s
