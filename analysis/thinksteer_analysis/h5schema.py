"""Checked reads of thinksteer's HDF5 files: every dataset by its documented name, shape and kind, so a
file that does not follow its layout fails with the file and the dataset named, not with an IndexError
three functions later.

    with h5py.File(path, "r") as f:
        check_format(f, "thinksteer.attribution")
        mean = read(f, "/mean", [("label", K), ("layer", L)], "float")   # SchemaError if missing or mis-shaped
        labels = read(f, "/labels", [("label", None)], "str")           # numpy str array ('<U…'), decoded
"""
import json
import pathlib

import numpy as np

KINDS = {"int": "iu", "float": "f", "number": "iuf", "uint8": "u"}


class SchemaError(ValueError):
    """A file that does not follow its documented layout. The message starts with the file and the
    dataset (or attribute) name."""

    def __init__(self, path, name, problem):
        self.path, self.name, self.problem = str(path), name, problem
        super().__init__(f"{path}: {name}: {problem}")


def open_h5(path):
    """h5py.File(path, "r"), with a failure to open (not HDF5, truncated) reported as a SchemaError
    naming the file (h5py's own message does not)."""
    import h5py
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise SchemaError(path, "(file)", f"cannot be opened as HDF5: {e}") from None


def _dims(dims):
    return "[" + ", ".join(n if s is None else f"{n}={s}" for n, s in dims) + "]"


def decode_strings(values):
    """Strings as h5py hands them back (bytes from C++'s variable-length UTF-8, str, numpy bytes) as a
    numpy str array of the same shape."""
    values = np.asarray(values, dtype=object)
    out = [v.decode("utf-8") if isinstance(v, (bytes, np.bytes_)) else str(v) for v in values.ravel()]
    return np.array(out, dtype=str).reshape(values.shape) if out else np.zeros(values.shape, dtype=str)


def read(f, name, dims, kind):
    """Dataset `name` of the open h5py.File `f`, checked: shape `dims` (a list of (dimension name, size or
    None for any)), element kind "int", "float", "number", "uint8" or "str". Numbers come back as numpy
    arrays of the stored dtype, strings as a numpy str array."""
    import h5py
    if name not in f:
        raise SchemaError(f.filename, name, "missing dataset")
    ds = f[name]
    if not isinstance(ds, h5py.Dataset):
        raise SchemaError(f.filename, name, "is a group, expected a dataset")
    if len(ds.shape) != len(dims) or any(s is not None and s != n for (_, s), n in zip(dims, ds.shape)):
        raise SchemaError(f.filename, name, f"shape {tuple(ds.shape)}, expected {_dims(dims)}")
    if kind == "str":
        if h5py.check_string_dtype(ds.dtype) is None and ds.dtype.kind != "O":
            raise SchemaError(f.filename, name, f"dtype {ds.dtype}, expected strings")
        return decode_strings(ds[()])
    if ds.dtype.kind not in KINDS[kind] or (kind == "uint8" and ds.dtype.itemsize != 1):
        raise SchemaError(f.filename, name, f"dtype {ds.dtype}, expected {kind}")
    return np.asarray(ds[()])


def attr(f, name, default=None, required=False):
    """Root attribute `name`, strings decoded; SchemaError if required and absent."""
    if name not in f.attrs:
        if required:
            raise SchemaError(f.filename, f"attribute {name!r}", "missing root attribute")
        return default
    v = f.attrs[name]
    if isinstance(v, (bytes, np.bytes_)):
        return v.decode("utf-8")
    if isinstance(v, np.ndarray) and v.shape == ():
        v = v[()]
    return v.item() if isinstance(v, np.generic) else v


def check_format(f, expected, version_attr=None, version=None):
    """The root attribute `format` is `expected` (and `version_attr` == `version` when given)."""
    got = attr(f, "format", required=True)
    if got != expected:
        raise SchemaError(f.filename, "attribute 'format'", f"{got!r}, expected {expected!r}")
    if version_attr is not None:
        v = attr(f, version_attr, required=True)
        if v != version:
            raise SchemaError(f.filename, f"attribute {version_attr!r}", f"{v!r}, this reader knows version {version}")


def provenance(f):
    """The root attribute `provenance` parsed as JSON ({} when absent or not JSON)."""
    text = attr(f, "provenance", "")
    try:
        return json.loads(text) if text else {}
    except (TypeError, ValueError):
        return {}


def run_file(run_dir, *parts):
    """<run_dir>/<parts...>, or `run_dir` itself when it names a file (an .h5 path)."""
    p = pathlib.Path(run_dir)
    return p if p.is_file() or p.suffix == ".h5" else p.joinpath(*parts)
