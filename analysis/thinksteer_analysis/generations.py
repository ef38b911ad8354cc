"""Generation traces written by `thinksteer generate` (src/stages/generate.cpp):
<run.dir>/generate/generations.h5, format thinksteer.generations schema_version 1 (N prompts), and
generations.jsonl, the same traces as one JSON object per prompt for people to read.

    from thinksteer_analysis.generations import load_generations, load_traces, summarize_traces
    g = load_generations(run_dir)           # or the path of a generations.h5
    g.thinking[i], g.tokens(i)              # str; int32 [n_new_tokens[i]] generated token ids
    summarize_traces(load_traces(run_dir))  # counts, closed-thinking rate, finish reasons, lengths

    python -m thinksteer_analysis.generations RUN_DIR     # prints a summary table

generations.h5:
  /prompts/{id, user_prompt, prompt_text, reference_answer, text, thinking, answer_text, finish_reason}
                                                    [N] str
  /prompts/{n_prompt_tokens, n_new_tokens, n_thinking_tokens, token_offset, prompt_token_offset}
                                                    [N] int64
  /prompts/thinking_closed                          [N] uint8
  /tokens/id [T] int32, /tokens/prompt_index [T] int64   T = sum n_new_tokens, prompt after prompt
  /prompt_tokens/id                                 [sum n_prompt_tokens] int32
"""
from __future__ import annotations

import pathlib
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

import numpy as np
import numpy.typing as npt

from .schema import Artifact, PathLike, SchemaError, check_offsets, jsonl_rows, open_h5, provenance, read, require_keys

GENERATIONS = Artifact(dir="generate", file="generations.h5", format="thinksteer.generations", schema_version=1, stage="generate")
GENERATIONS_JSONL = Artifact(dir="generate", file="generations.jsonl", format=None, schema_version=None, stage="generate")
FORMAT = GENERATIONS.format
SCHEMA_VERSION = GENERATIONS.schema_version
PATH = GENERATIONS.relpath
FINISH_REASONS = ("eos", "stop_string", "length")
STRING_FIELDS = ("id", "user_prompt", "prompt_text", "reference_answer", "text", "thinking", "answer_text", "finish_reason")
COUNT_FIELDS = ("n_prompt_tokens", "n_new_tokens", "n_thinking_tokens", "token_offset", "prompt_token_offset")
# generations.jsonl: the keys of each line and their JSON types.
JSONL_KEYS: dict[str, type | tuple[type, ...]] = {
    "id": str, "prompt": str, "prompt_text": str, "prompt_tokens": int, "token_ids": list, "text": str, "thinking": str,
    "answer_text": str, "thinking_closed": bool, "n_new_tokens": int, "n_thinking_tokens": int, "finish_reason": str,
    "reference_answer": str,
}


def generations_path(run_dir: PathLike) -> pathlib.Path:
    """<run_dir>/generate/generations.h5, or `run_dir` itself when it names a file."""
    return GENERATIONS.path(run_dir)


@dataclass
class Generations:
    """One generations.h5: N prompts, T generated tokens."""
    path: pathlib.Path
    id: npt.NDArray[np.str_]                  # [N] prompt ids
    user_prompt: npt.NDArray[np.str_]         # [N] the prompt as given
    prompt_text: npt.NDArray[np.str_]         # [N] the chat-formatted prompt
    reference_answer: npt.NDArray[np.str_]    # [N]
    text: npt.NDArray[np.str_]                # [N] decoded generated tokens, special tokens kept
    thinking: npt.NDArray[np.str_]            # [N] the part before </think>
    answer_text: npt.NDArray[np.str_]         # [N] the part after </think>
    finish_reason: npt.NDArray[np.str_]       # [N] eos | stop_string | length
    n_prompt_tokens: npt.NDArray[np.int64]    # [N]
    n_new_tokens: npt.NDArray[np.int64]       # [N] generated tokens, EOS included
    n_thinking_tokens: npt.NDArray[np.int64]  # [N] generated tokens before </think> (all if unclosed)
    thinking_closed: npt.NDArray[np.bool_]    # [N]
    token_offset: npt.NDArray[np.int64]       # [N] first row of each prompt in token_id
    prompt_token_offset: npt.NDArray[np.int64]  # [N] first row of each prompt in prompt_token_id
    token_id: npt.NDArray[np.int32]           # [T] generated token ids, back to back
    token_prompt_index: npt.NDArray[np.int64]  # [T] the prompt of each generated token
    prompt_token_id: npt.NDArray[np.int32]    # [sum n_prompt_tokens] formatted prompt token ids
    provenance: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.id)

    def tokens(self, i: int) -> npt.NDArray[np.int32]:
        """The generated token ids of prompt i."""
        o = int(self.token_offset[i])
        return self.token_id[o:o + int(self.n_new_tokens[i])]

    def prompt_tokens(self, i: int) -> npt.NDArray[np.int32]:
        """The formatted prompt's token ids of prompt i."""
        o = int(self.prompt_token_offset[i])
        return self.prompt_token_id[o:o + int(self.n_prompt_tokens[i])]

    def trace_ids(self) -> dict[str, list[int]]:
        """{trace id: its prompt's token ids then its generated ones}: the sequence a forward pass over a trace reads."""
        return {str(self.id[i]): np.concatenate([self.prompt_tokens(i), self.tokens(i)]).tolist() for i in range(len(self))}


def load_generations(run_dir: PathLike) -> Generations:
    """Reads and checks <run_dir>/generate/generations.h5 (or the file given): identity, every dataset's
    shape and kind, offsets back to back, finish reasons; SchemaError names the file and dataset."""
    path = GENERATIONS.require(generations_path(run_dir))
    with open_h5(path) as f:
        GENERATIONS.check(f)
        ids = read(f, "/prompts/id", [("prompt", None)], "str")
        N = len(ids)
        text = {name: read(f, f"/prompts/{name}", [("prompt", N)], "str") for name in STRING_FIELDS}
        count = {name: read(f, f"/prompts/{name}", [("prompt", N)], "int").astype(np.int64) for name in COUNT_FIELDS}
        closed = read(f, "/prompts/thinking_closed", [("prompt", N)], "uint8")
        token_id = read(f, "/tokens/id", [("token", None)], "int")
        T = len(token_id)
        token_prompt_index = read(f, "/tokens/prompt_index", [("token", T)], "int").astype(np.int64)
        prompt_token_id = read(f, "/prompt_tokens/id", [("prompt_token", None)], "int")
        g = Generations(path=path, id=ids, user_prompt=text["user_prompt"], prompt_text=text["prompt_text"],
                        reference_answer=text["reference_answer"], text=text["text"], thinking=text["thinking"],
                        answer_text=text["answer_text"], finish_reason=text["finish_reason"], n_prompt_tokens=count["n_prompt_tokens"],
                        n_new_tokens=count["n_new_tokens"], n_thinking_tokens=count["n_thinking_tokens"], thinking_closed=closed.astype(bool),
                        token_offset=count["token_offset"], prompt_token_offset=count["prompt_token_offset"],
                        token_id=token_id.astype(np.int32, copy=False), token_prompt_index=token_prompt_index,
                        prompt_token_id=prompt_token_id.astype(np.int32, copy=False), provenance=provenance(f))
    check_offsets(path, "/prompts/token_offset", g.token_offset, g.n_new_tokens, T, "/tokens/id")
    check_offsets(path, "/prompts/prompt_token_offset", g.prompt_token_offset, g.n_prompt_tokens, len(g.prompt_token_id), "/prompt_tokens/id")
    bad = np.flatnonzero(g.token_prompt_index != np.repeat(np.arange(N), g.n_new_tokens))
    if bad.size:
        raise SchemaError(path, "/tokens/prompt_index", f"row {bad[0]}: {g.token_prompt_index[bad[0]]}, not the prompt whose rows /prompts/token_offset places there")
    bad = np.flatnonzero((g.n_thinking_tokens < 0) | (g.n_thinking_tokens > g.n_new_tokens))
    if bad.size:
        raise SchemaError(path, "/prompts/n_thinking_tokens", f"row {bad[0]}: {g.n_thinking_tokens[bad[0]]} outside [0, n_new_tokens = {g.n_new_tokens[bad[0]]}]")
    bad = np.flatnonzero(~np.isin(g.finish_reason, FINISH_REASONS))
    if bad.size:
        raise SchemaError(path, "/prompts/finish_reason", f"row {bad[0]}: {g.finish_reason[bad[0]]!r} is not one of {', '.join(FINISH_REASONS)}")
    return g


# ---- generations.jsonl --------------------------------------------------------------------------------

class TraceSummary(TypedDict):
    traces: int
    thinking_closed: float
    finish_reasons: dict[str, int]
    new_tokens_mean: float
    thinking_tokens_mean: float


def load_traces(run_dir: PathLike) -> list[dict[str, Any]]:
    """The trace dicts of a finished generate stage (generations.jsonl; FileNotFoundError when the stage
    has not finished, SchemaError naming the file and line of a row without the documented keys)."""
    stage = pathlib.Path(run_dir) / GENERATIONS.dir
    done = GENERATIONS.done_path(run_dir)
    if not done.exists():
        raise FileNotFoundError(f"{done}: no .done marker; the generate stage has not finished")
    path = GENERATIONS_JSONL.require(stage / GENERATIONS_JSONL.file)
    rows = []
    for line, row in jsonl_rows(path):
        require_keys(path, f"line {line}", row, JSONL_KEYS)
        rows.append(row)
    return rows


def summarize_traces(traces: Sequence[dict[str, Any]]) -> TraceSummary:
    """Counts, closed-thinking rate, finish reasons and token lengths."""
    n = len(traces)
    new = [t["n_new_tokens"] for t in traces]
    think = [t["n_thinking_tokens"] for t in traces]
    reasons: dict[str, int] = {}
    for t in traces:
        reasons[t["finish_reason"]] = reasons.get(t["finish_reason"], 0) + 1
    return {
        "traces": n,
        "thinking_closed": sum(t["thinking_closed"] for t in traces) / n if n else 0.0,
        "finish_reasons": reasons,
        "new_tokens_mean": statistics.fmean(new) if n else 0.0,
        "thinking_tokens_mean": statistics.fmean(think) if n else 0.0,
    }


def main(argv: Sequence[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    for k, v in summarize_traces(load_traces(argv[0])).items():
        print(f"{k:22s} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
