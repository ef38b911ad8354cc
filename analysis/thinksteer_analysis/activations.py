"""Activations written by `thinksteer collect` (src/stages/collect.cpp): <run.dir>/collect/activations.h5,
format thinksteer.activations schema_version 1 (R rows, N sequences, K tokens; layout in the README).

    from thinksteer_analysis.activations import load_activations, load_activation_index, open_activations
    x = load_activations(run_dir, "blocks.12.hook_resid_post")   # float32 [rows, d_model]
    ix = load_activation_index(run_dir)                          # hooks, rows -> sequence/token, tokens
    ds = open_activations(run_dir)                               # xarray.Dataset, dims row/d_model/...

    python -m thinksteer_analysis.activations RUN_DIR            # lists hooks, shapes, dtypes

activations.h5:
  /activations/<hook name>  [R, d_model] (attn.hook_z: [R, head, d_head]); float32, float16, or
                            bfloat16 bits as uint16 (attribute encoding = "bfloat16"); attributes hook,
                            layer, positions, dtype
  /activations/sequence, token_begin, token_end [R] int64; /activations/label [R] str (positions = spans)
  /sequences/id, text [N] str; /sequences/n_tokens, n_prompt_tokens, token_offset, row_offset, n_rows [N] int64
  /tokens/id [K] int32; /tokens/sequence, position, char_begin, char_end [K] int64
  /activations attributes: positions, source
"""
from __future__ import annotations

import pathlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .schema import Artifact, PathLike, SchemaError, attr, check_dataset, check_offsets, open_h5, provenance, read, read_optional

if TYPE_CHECKING:
    import h5py
    import xarray

ACTIVATIONS = Artifact(dir="collect", file="activations.h5", format="thinksteer.activations", schema_version=1, stage="collect")
FORMAT = ACTIVATIONS.format
SCHEMA_VERSION = ACTIVATIONS.schema_version
PATH = ACTIVATIONS.relpath
ROW_FIELDS = ("sequence", "token_begin", "token_end")  # /activations/<field>: not hooks


def activations_path(run_dir: PathLike) -> pathlib.Path:
    """The committed activations file of a run (FileNotFoundError if the collect stage has not finished),
    or `run_dir` itself when it names a file."""
    path = ACTIVATIONS.path(run_dir)
    if path == pathlib.Path(run_dir):
        return ACTIVATIONS.require(path)
    if not ACTIVATIONS.done_path(run_dir).exists():
        raise FileNotFoundError(f"{path}.done: no .done marker; the collect stage has not finished")
    return path


def decode(dataset: h5py.Dataset) -> npt.NDArray[np.float32]:
    """A stored activation dataset as float32: float16 widened, bfloat16 (uint16 bits with
    attribute encoding = "bfloat16") decoded."""
    data = dataset[()]
    if attr(dataset, "encoding") == "bfloat16":
        return (data.astype(np.uint32) << 16).view(np.float32)
    return data.astype(np.float32, copy=False)


def _hooks(f: h5py.File) -> dict[str, h5py.Dataset]:
    import h5py
    group = f["activations"] if "activations" in f else None
    if not isinstance(group, h5py.Group):
        raise SchemaError(f.filename, "/activations", "missing group")
    return {name: d for name, d in group.items() if isinstance(d, h5py.Dataset) and "hook" in d.attrs}


def _hook_dims(d: h5py.Dataset, rows: int) -> list[tuple[str, int | None]]:
    """[row, head, d_head] for attn.hook_z (3 axes), else [row, d_model]."""
    return [("row", rows), ("head", None), ("d_head", None)] if len(d.shape) == 3 else [("row", rows), ("d_model", None)]


@dataclass
class HookInfo:
    """One stored hook: /activations/<name>."""
    name: str                     # TransformerLens name, e.g. "blocks.3.hook_resid_post"
    layer: int | None             # None for ln_final
    shape: tuple[int, ...]        # [R, d_model] or [R, head, d_head]
    dtype: str                    # float32 | float16 | bfloat16


@dataclass
class ActivationIndex:
    """Everything in an activations.h5 but the activations: which hooks, what each row is, the tokens."""
    path: pathlib.Path
    hooks: dict[str, HookInfo]
    positions: str                               # all | last | prompt | generated | spans
    source: str                                  # prompts | generations
    row_sequence: npt.NDArray[np.int64]          # [R] row in sequence_id
    row_token_begin: npt.NDArray[np.int64]       # [R]
    row_token_end: npt.NDArray[np.int64]         # [R] exclusive
    row_label: npt.NDArray[np.str_] | None       # [R] span label (positions = spans only)
    sequence_id: npt.NDArray[np.str_]            # [N]
    sequence_text: npt.NDArray[np.str_]          # [N]
    n_tokens: npt.NDArray[np.int64]              # [N]
    n_prompt_tokens: npt.NDArray[np.int64]       # [N]
    token_offset: npt.NDArray[np.int64]          # [N] first row in token_id
    row_offset: npt.NDArray[np.int64]            # [N] first row in /activations
    n_rows: npt.NDArray[np.int64]                # [N]
    token_id: npt.NDArray[np.int32]              # [K]
    token_sequence: npt.NDArray[np.int64]        # [K]
    token_position: npt.NDArray[np.int64]        # [K]
    char_begin: npt.NDArray[np.int64]            # [K] code points of sequence_text
    char_end: npt.NDArray[np.int64]              # [K]
    provenance: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.row_sequence)


def load_activation_index(run_dir: PathLike) -> ActivationIndex:
    """Reads and checks everything in <run_dir>/collect/activations.h5 (or the file given) but the
    activations themselves, whose shapes are checked: identity, every dataset's shape and kind, each
    sequence's tokens and rows back to back; SchemaError names the file and dataset."""
    path = activations_path(run_dir)
    with open_h5(path) as f:
        ACTIVATIONS.check(f)
        row_sequence = read(f, "/activations/sequence", [("row", None)], "int").astype(np.int64)
        R = len(row_sequence)
        rows = {name: read(f, f"/activations/{name}", [("row", R)], "int").astype(np.int64) for name in ("token_begin", "token_end")}
        row_label = read_optional(f, "/activations/label", [("row", R)], "str")
        hooks = {}
        for name, d in _hooks(f).items():
            check_dataset(f, d.name, _hook_dims(d, R), "number")
            layer = str(attr(d, "layer", ""))
            hooks[name] = HookInfo(name=name, layer=int(layer) if layer.lstrip("-").isdigit() else None, shape=tuple(d.shape),
                                   dtype=str(attr(d, "encoding") or attr(d, "dtype") or d.dtype))
        if not hooks:
            raise SchemaError(path, "/activations", "no hook datasets (datasets with a 'hook' attribute)")
        sequence_id = read(f, "/sequences/id", [("sequence", None)], "str")
        N = len(sequence_id)
        seqs = {name: read(f, f"/sequences/{name}", [("sequence", N)], "int").astype(np.int64)
                for name in ("n_tokens", "n_prompt_tokens", "token_offset", "row_offset", "n_rows")}
        token_id = read(f, "/tokens/id", [("token", None)], "int").astype(np.int32, copy=False)
        K = len(token_id)
        toks = {name: read(f, f"/tokens/{name}", [("token", K)], "int").astype(np.int64) for name in ("sequence", "position", "char_begin", "char_end")}
        group = f["activations"]
        ix = ActivationIndex(path=path, hooks=hooks, positions=str(attr(group, "positions", "")), source=str(attr(group, "source", "")),
                             row_sequence=row_sequence, row_token_begin=rows["token_begin"], row_token_end=rows["token_end"], row_label=row_label,
                             sequence_id=sequence_id, sequence_text=read(f, "/sequences/text", [("sequence", N)], "str"), **seqs,
                             token_id=token_id, token_sequence=toks["sequence"], token_position=toks["position"],
                             char_begin=toks["char_begin"], char_end=toks["char_end"], provenance=provenance(f))
    check_offsets(path, "/sequences/token_offset", ix.token_offset, ix.n_tokens, K, "/tokens/id")
    check_offsets(path, "/sequences/row_offset", ix.row_offset, ix.n_rows, R, "/activations/sequence")
    bad = np.flatnonzero(ix.row_sequence != np.repeat(np.arange(N), ix.n_rows))
    if bad.size:
        raise SchemaError(path, "/activations/sequence", f"row {bad[0]}: {ix.row_sequence[bad[0]]} is not the sequence whose rows /sequences/row_offset places here")
    bad = np.flatnonzero(ix.token_sequence != np.repeat(np.arange(N), ix.n_tokens))
    if bad.size:
        raise SchemaError(path, "/tokens/sequence", f"row {bad[0]}: {ix.token_sequence[bad[0]]} is not the sequence whose tokens /sequences/token_offset places here")
    n_tok = ix.n_tokens[ix.row_sequence] if R else np.zeros(0, dtype=np.int64)
    bad = np.flatnonzero((ix.row_token_begin < 0) | (ix.row_token_end <= ix.row_token_begin) | (ix.row_token_end > n_tok))
    if bad.size:
        r = bad[0]
        raise SchemaError(path, "/activations/token_begin", f"row {r}: tokens [{ix.row_token_begin[r]}, {ix.row_token_end[r]}) outside the sequence's {n_tok[r]} tokens")
    return ix


def load_activations(run_dir: PathLike, hook: str) -> npt.NDArray[np.float32]:
    """The rows stored for `hook` (a TransformerLens name), float32, plus nothing else: the row ->
    sequence/token mapping is in /activations/sequence, token_begin, token_end (load_activation_index).
    KeyError naming the stored hooks when there is no such hook."""
    path = activations_path(run_dir)
    with open_h5(path) as f:
        ACTIVATIONS.check(f)
        hooks = _hooks(f)
        if hook not in hooks:
            raise KeyError(f"{f.filename}: no hook {hook!r}; stored: {', '.join(hooks)}")
        R = dataset_rows(f)
        d = hooks[hook]
        check_dataset(f, d.name, _hook_dims(d, R), "number")
        return decode(d)


def dataset_rows(f: h5py.File) -> int:
    """R, the rows of /activations/sequence (every hook dataset has as many)."""
    return check_dataset(f, "/activations/sequence", [("row", None)], "int").shape[0]


def open_activations(run_dir: PathLike) -> xarray.Dataset:
    """The /activations group as an xarray Dataset (named dimensions from the file's dimension scales)."""
    import xarray as xr
    return xr.open_dataset(activations_path(run_dir), engine="h5netcdf", group="activations")


def main(argv: Sequence[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    ix = load_activation_index(argv[0])
    print(f"{ix.path}: positions={ix.positions} source={ix.source} rows={len(ix)} sequences={len(ix.sequence_id)}")
    for h in ix.hooks.values():
        print(f"  {h.name:36s} {str(h.shape):18s} {h.dtype}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
