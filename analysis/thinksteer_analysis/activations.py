"""Activations written by `thinksteer collect`: <run.dir>/collect/activations.h5 (layout in the README).

    from thinksteer_analysis.activations import load_activations, open_activations
    x = load_activations(run_dir, "blocks.12.hook_resid_post")   # float32 [rows, d_model]
    ds = open_activations(run_dir)                               # xarray.Dataset, dims row/d_model/...

    python -m thinksteer_analysis.activations RUN_DIR            # lists hooks, shapes, dtypes
"""
import pathlib
import sys

import numpy as np

FORMAT = "thinksteer.activations"


def activations_path(run_dir):
    """The committed activations file of a run (raises if the collect stage has not finished)."""
    path = pathlib.Path(run_dir) / "collect" / "activations.h5"
    if not pathlib.Path(str(path) + ".done").exists():
        raise FileNotFoundError(f"{path}.done: no .done marker; the collect stage has not finished")
    return path


def decode(dataset):
    """A stored activation dataset as float32: float16 widened, bfloat16 (uint16 bits with
    attribute encoding = "bfloat16") decoded."""
    data = dataset[()]
    if dataset.attrs.get("encoding") == "bfloat16":
        return (data.astype(np.uint32) << 16).view(np.float32)
    return data.astype(np.float32, copy=False)


def load_activations(run_dir, hook):
    """The rows stored for `hook` (a TransformerLens name), float32, plus nothing else: the row ->
    sequence/token mapping is in /activations/sequence, token_begin, token_end."""
    import h5py
    with h5py.File(activations_path(run_dir), "r") as f:
        if f.attrs.get("format") != FORMAT:
            raise ValueError(f"{f.filename}: format is {f.attrs.get('format')!r}, not {FORMAT!r}")
        if hook not in f["activations"]:
            hooks = [k for k in f["activations"] if "hook" in k]
            raise KeyError(f"{f.filename}: no hook {hook!r}; stored: {', '.join(hooks)}")
        return decode(f["activations"][hook])


def open_activations(run_dir):
    """The /activations group as an xarray Dataset (named dimensions from the file's dimension scales)."""
    import xarray as xr
    return xr.open_dataset(activations_path(run_dir), engine="h5netcdf", group="activations")


def main(argv):
    if len(argv) != 1:
        print(__doc__)
        return 2
    import h5py
    with h5py.File(activations_path(argv[0]), "r") as f:
        print(f"{f.filename}: positions={f['activations'].attrs.get('positions')} source={f['activations'].attrs.get('source')}")
        for name, d in f["activations"].items():
            if "hook" in d.attrs:
                print(f"  {name:36s} {str(d.shape):18s} {d.attrs.get('dtype')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
