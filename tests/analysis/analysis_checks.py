"""Checks the analysis tests share: a drawn PNG has the expected size and is not blank, and an HDF5 fixture
with one dataset or root attribute replaced (for the malformed-input cases)."""
import h5py

STR = h5py.string_dtype("utf-8")


def check_png(path, shape):
    import matplotlib.image as mpimg
    img = mpimg.imread(path)
    assert img.shape[:2] == shape, (path, img.shape)
    rgb = img[..., :3]
    assert float(rgb.std()) > 0.05, f"{path}: flat image"
    assert float((rgb < 0.9).any(axis=-1).mean()) > 0.01, f"{path}: almost all white"


def replace(path, name, value):
    """Replaces dataset `name` (deletes it when value is None) or, for "@attr", the root attribute."""
    with h5py.File(path, "a") as f:
        if name.startswith("@"):
            f.attrs[name[1:]] = value
            return
        del f[name]
        if value is not None:
            f.create_dataset(name, data=value, dtype=STR if isinstance(value, list) else None)
