"""What every run artifact shares (the Python side of src/artifacts/artifact.h): its identity (the root
attributes `format` and `schema_version` of the HDF5 file, `format_version` where the C++ writes one),
where it lives under the run directory, and checked reads, so a file that does not follow its layout
fails with the file and the dataset named, not with an IndexError three functions later.

    from thinksteer_analysis.schema import open_h5, read
    with open_h5(path) as f:
        ATTRIBUTION.check(f)                                            # format + schema_version
        mean = read(f, "/mean", [("label", K), ("layer", L)], "float")   # SchemaError if missing or mis-shaped
        labels = read(f, "/labels", [("label", None)], "str")           # numpy str array ('<U…'), decoded

One module per artifact uses this: generations, spans, activations, attribution, vectors,
sweep_manifest, sweep_task, sweep_summary, sentences, taxonomy (taxonomy tasks, summary, titles).
"""
from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import h5py

PathLike = str | os.PathLike[str]
Kind = Literal["int", "float", "number", "uint8", "str"]
Dims = Sequence[tuple[str, int | None]]

KINDS: dict[str, str] = {"int": "iu", "float": "f", "number": "iuf", "uint8": "u"}


class SchemaError(ValueError):
    """A file that does not follow its documented layout. The message starts with the file and the
    dataset (or attribute, or line) name."""

    def __init__(self, path: PathLike, name: str, problem: str) -> None:
        self.path, self.name, self.problem = str(path), name, problem
        super().__init__(f"{path}: {name}: {problem}")


@dataclass(frozen=True)
class Artifact:
    """One run artifact's identity and place: <run_dir>/<dir>/<file>, root attribute `format` = format,
    `schema_version` = schema_version (None: the C++ writes none), `format_version` = format_version
    (None: none), written by `thinksteer <stage>`. `file` may hold "{key}" (sweep task files)."""
    dir: str
    file: str
    format: str | None
    schema_version: int | None
    stage: str
    format_version: int | None = None

    @property
    def relpath(self) -> str:
        """The path under the run directory, e.g. "annotate/spans.h5"."""
        return f"{self.dir}/{self.file}"

    def path(self, run_dir: PathLike, **fields: str) -> pathlib.Path:
        """<run_dir>/<dir>/<file> (fields fill "{key}"), or `run_dir` itself when it names a file of
        this artifact's kind (an existing file, or a path with the artifact's suffix)."""
        p = pathlib.Path(run_dir)
        if p.is_file() or p.suffix == pathlib.PurePath(self.file).suffix:
            return p
        return p / self.dir / self.file.format(**fields)

    def done_path(self, run_dir: PathLike, **fields: str) -> pathlib.Path:
        """The `.done` marker the stage writes after committing the file (it holds the config hash)."""
        return done_marker(self.path(run_dir, **fields))

    def require(self, path: pathlib.Path) -> pathlib.Path:
        """`path`, or FileNotFoundError naming it and the stage that writes it."""
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file (run `thinksteer {self.stage}` first)")
        return path

    def check(self, f: h5py.File) -> None:
        """The open file's root attributes `format`, `schema_version` and `format_version` are this
        artifact's (SchemaError naming the file and the attribute otherwise)."""
        if self.format is None:
            raise TypeError(f"{self.relpath} is not an HDF5 artifact")
        got = attr(f, "format", required=True)
        if got != self.format:
            raise SchemaError(f.filename, "attribute 'format'", f"{got!r}, expected {self.format!r} (the file `thinksteer {self.stage}` writes)")
        for name, want in (("schema_version", self.schema_version), ("format_version", self.format_version)):
            if want is None:
                continue
            v = attr(f, name, required=True)
            if v != want:
                raise SchemaError(f.filename, f"attribute {name!r}", f"{v!r} of {self.format} is not the version this reader knows ({want}): "
                                  f"regenerate it with `thinksteer {self.stage}`")


def keyed_file(artifact: Artifact, run_dir: PathLike, key: str | None = None) -> pathlib.Path:
    """A per-task file of `artifact` (its path has a {key}): <run_dir>/<path with key>, or `run_dir` itself
    when it names the file (then key is None)."""
    p = pathlib.Path(run_dir)
    if key is None:
        if p.is_dir():
            raise ValueError(f"{p}: a run directory needs the task's key")
        return p
    return artifact.path(p, key=key)


def done_marker(path: PathLike) -> pathlib.Path:
    """<path>.done, the marker a stage writes after committing `path`."""
    return pathlib.Path(f"{path}.done")


def open_h5(path: PathLike) -> h5py.File:
    """h5py.File(path, "r"), with a failure to open (not HDF5, truncated) reported as a SchemaError
    naming the file (h5py's own message does not)."""
    import h5py
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise SchemaError(path, "(file)", f"cannot be opened as HDF5: {e}") from None


def _dims(dims: Dims) -> str:
    return "[" + ", ".join(n if s is None else f"{n}={s}" for n, s in dims) + "]"


def decode_strings(values: Any) -> npt.NDArray[np.str_]:
    """Strings as h5py hands them back (bytes from C++'s variable-length UTF-8, str, numpy bytes) as a
    numpy str array of the same shape."""
    values = np.asarray(values, dtype=object)
    out = [v.decode("utf-8") if isinstance(v, (bytes, np.bytes_)) else str(v) for v in values.ravel()]
    return np.array(out, dtype=str).reshape(values.shape) if out else np.zeros(values.shape, dtype=str)


def dataset(f: h5py.File, name: str) -> h5py.Dataset:
    """Dataset `name` of the open file (SchemaError naming file and dataset when missing or a group)."""
    import h5py
    if name not in f:
        raise SchemaError(f.filename, name, "missing dataset")
    ds = f[name]
    if not isinstance(ds, h5py.Dataset):
        raise SchemaError(f.filename, name, "is a group, expected a dataset")
    return ds


def check_dataset(f: h5py.File, name: str, dims: Dims, kind: Kind) -> h5py.Dataset:
    """Dataset `name`, checked like `read` but not read (for large arrays read on demand)."""
    import h5py
    ds = dataset(f, name)
    if len(ds.shape) != len(dims) or any(s is not None and s != n for (_, s), n in zip(dims, ds.shape)):
        raise SchemaError(f.filename, name, f"shape {tuple(ds.shape)}, expected {_dims(dims)}")
    if kind == "str":
        if h5py.check_string_dtype(ds.dtype) is None and ds.dtype.kind != "O":
            raise SchemaError(f.filename, name, f"dtype {ds.dtype}, expected strings")
    elif ds.dtype.kind not in KINDS[kind] or (kind == "uint8" and ds.dtype.itemsize != 1):
        raise SchemaError(f.filename, name, f"dtype {ds.dtype}, expected {kind}")
    return ds


def read(f: h5py.File, name: str, dims: Dims, kind: Kind) -> np.ndarray:
    """Dataset `name` of the open h5py.File `f`, checked: shape `dims` (a list of (dimension name, size or
    None for any)), element kind "int", "float", "number", "uint8" or "str". Numbers come back as numpy
    arrays of the stored dtype, strings as a numpy str array."""
    ds = check_dataset(f, name, dims, kind)
    if kind == "str":
        return decode_strings(ds[()])
    return np.asarray(ds[()])


def read_optional(f: h5py.File, name: str, dims: Dims, kind: Kind) -> np.ndarray | None:
    """`read`, or None when the file has no dataset `name`."""
    return read(f, name, dims, kind) if name in f else None


def attr(f: h5py.File | h5py.Group | h5py.Dataset, name: str, default: Any = None, required: bool = False) -> Any:
    """Attribute `name` of the root (or of the group or dataset given), strings decoded, numpy scalars
    as Python scalars; SchemaError if required and absent."""
    if name not in f.attrs:
        if required:
            if getattr(f, "name", "/") == "/":
                raise SchemaError(f.file.filename, f"attribute {name!r}", "missing root attribute")
            raise SchemaError(f.file.filename, f"attribute {f.name}/{name!r}", "missing attribute")
        return default
    v = f.attrs[name]
    if isinstance(v, (bytes, np.bytes_)):
        return v.decode("utf-8")
    if isinstance(v, np.ndarray) and v.shape == ():
        v = v[()]
    return v.item() if isinstance(v, np.generic) else v


def int_attr(f: h5py.File | h5py.Group | h5py.Dataset, name: str, default: int | None = None) -> int:
    """Attribute `name` as an int; required unless `default` is given. SchemaError naming the attribute
    when absent (and required) or not an integer."""
    v = attr(f, name, default, required=default is None)
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise SchemaError(f.file.filename, f"attribute {name!r}", f"{v!r}, expected an integer")
    return int(v)


def str_attr(f: h5py.File | h5py.Group | h5py.Dataset, name: str) -> str:
    """Required attribute `name` as a string; SchemaError naming the attribute when absent or not a string."""
    v = attr(f, name, required=True)
    if not isinstance(v, str):
        raise SchemaError(f.file.filename, f"attribute {name!r}", f"{v!r}, expected a string")
    return v


def json_attr(f: h5py.File | h5py.Group | h5py.Dataset, name: str, kind: type) -> Any:
    """Required attribute `name` parsed as JSON of type `kind` (dict or list); SchemaError naming it when absent,
    not JSON or another type."""
    text = attr(f, name, required=True)
    try:
        v = json.loads(text) if isinstance(text, str) else None
    except ValueError as e:
        raise SchemaError(f.file.filename, f"attribute {name!r}", f"not JSON: {e}") from None
    if not isinstance(v, kind):
        raise SchemaError(f.file.filename, f"attribute {name!r}", f"is not a JSON {'object' if kind is dict else 'list'}")
    return v


def first_index(mask: npt.ArrayLike) -> int | None:
    """The first index where `mask` is true (None when nowhere): the row a value check reports."""
    idx = np.flatnonzero(mask)
    return int(idx[0]) if idx.size else None


def provenance(f: h5py.File) -> dict[str, Any]:
    """The root attribute `provenance` parsed as JSON ({} when absent or not JSON)."""
    return parse_json_object(attr(f, "provenance", ""))


def parse_json_object(text: str | None) -> dict[str, Any]:
    """`text` parsed as a JSON object ({} when empty, not JSON, or not an object)."""
    try:
        v = json.loads(text) if text else {}
    except (TypeError, ValueError):
        return {}
    return v if isinstance(v, dict) else {}


def check_offsets(path: PathLike, offset_name: str, offsets: np.ndarray, counts: np.ndarray, total: int, total_name: str) -> None:
    """Rows of item i are [offsets[i], offsets[i] + counts[i]), back to back from 0, and cover `total`
    rows (`total_name` names the dataset they index). SchemaError naming `offset_name` otherwise."""
    if np.any(counts < 0):
        i = int(np.flatnonzero(counts < 0)[0])
        raise SchemaError(path, offset_name, f"row {i}: negative count {int(counts[i])}")
    expect = np.concatenate([[0], np.cumsum(counts)[:-1]]) if len(counts) else np.zeros(0, dtype=np.int64)
    bad = np.flatnonzero(offsets != expect)
    if bad.size:
        i = int(bad[0])
        raise SchemaError(path, offset_name, f"row {i}: offset {int(offsets[i])}, expected {int(expect[i])} (rows follow each other from 0)")
    if int(counts.sum()) != total:
        raise SchemaError(path, offset_name, f"the rows add up to {int(counts.sum())}, but {total_name} holds {total}")


def json_file(path: pathlib.Path) -> dict[str, Any]:
    """The JSON object a file holds; SchemaError naming the file ("(file)") when it is not JSON or not an object."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise SchemaError(path, "(file)", f"not JSON: {e}") from None
    if not isinstance(obj, dict):
        raise SchemaError(path, "(file)", "not a JSON object")
    return obj


def jsonl_rows(path: pathlib.Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-empty line of a JSON-lines file; SchemaError naming the file
    and line for a line that is not a JSON object."""
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as e:
                raise SchemaError(path, f"line {n}", f"not JSON: {e}") from None
            if not isinstance(row, dict):
                raise SchemaError(path, f"line {n}", "not a JSON object")
            yield n, row


def require_keys(path: PathLike, where: str, row: dict[str, Any], types: dict[str, type | tuple[type, ...]]) -> None:
    """Each key of `types` is in `row` with a value of that type (bool is not an int); SchemaError
    naming the file, `where` (e.g. "line 3") and the key otherwise."""
    for key, t in types.items():
        if key not in row:
            raise SchemaError(path, where, f"missing key {key!r}")
        v = row[key]
        ok = isinstance(v, t) and not (isinstance(v, bool) and bool not in (t if isinstance(t, tuple) else (t,)))
        if not ok:
            names = " or ".join(x.__name__ for x in (t if isinstance(t, tuple) else (t,)))
            raise SchemaError(path, where, f"key {key!r} is {type(v).__name__} {v!r}, expected {names}")
