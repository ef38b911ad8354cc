"""Vector files written by C++ (tests/io/vectors_fixture) read with the Python readers users will reach for:
h5py, safetensors.numpy and gguf.GGUFReader (the reader of llama.cpp's own gguf-py). Every value must equal
the C++ value bit for bit; expected.json carries those values as uint32 bit patterns.

GGUF layer mapping. What llama.cpp does with a control vector (docs/conventions.md §4.7; ggml-org/llama.cpp:
common/common.cpp common_control_vector_load_one puts direction.N in buffer row N-1 and rejects N = 0;
src/llama-adapter.cpp llama_adapter_cvec::init/apply leave tensors[0] empty and give tensors[il] buffer row
il-1; every src/models/<arch>.cpp calls build_cvec(cur, il) on block il's output inside
`for (il = 0; il < n_layer; ++il)`): direction.N is added to the output of 0-based block N, i.e. at
blocks.{N}.hook_resid_post, and block 0's output cannot be steered. Our exporter has two maps for our
resid_post[l] vector:
  next-block (the default, docs/decisions.md "Names and indexing"): direction.{l+1}, every layer included (layer 0
    is direction.1). It is the layout llama.cpp's llama-cvector-generator writes; llama.cpp applies the
    vector at resid_post[l+1], and our last layer's direction.{n_layer} at no block.
  same-block: direction.{l}, layer 0 left out; llama.cpp applies the vector at resid_post[l].
Every file we write names its map in the key thinksteer.layer_map. tests/io/test_vectors.cpp
GgufLayerMappingMatchesLlamaCpp replays llama.cpp's indexing step by step for both maps.
"""
import json
import subprocess

import numpy as np
import pytest


@pytest.fixture(scope="module")
def written(tmp_path_factory, vectors_fixture):
    out = tmp_path_factory.mktemp("vectors")
    done = subprocess.run([vectors_fixture, str(out)], check=True, capture_output=True, text=True)
    with open(done.stdout.strip()) as f:
        return json.load(f)


def expected_values(e):
    """[name, layer, d_model] float32, exactly the C++ values."""
    return np.array(e["value_bits"], dtype=np.uint32).view(np.float32)


def same_bits(a, b):
    a, b = np.ascontiguousarray(a, dtype=np.float32), np.ascontiguousarray(b, dtype=np.float32)
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


def test_hdf5_with_h5py(written):
    import h5py

    with h5py.File(written["h5"], "r") as f:
        assert f.attrs["format"] == "thinksteer.vectors"
        assert f.attrs["format_version"] == 1
        for key in ("hook_measured", "hook_applied", "architecture", "model"):
            assert f.attrs[key] == written[key]
        assert json.loads(f.attrs["provenance"]) == json.loads(written["provenance"])
        vectors = f["vectors"]
        assert vectors.dtype == np.float32
        assert vectors.shape == (len(written["names"]), len(written["layers"]), written["d_model"])
        assert same_bits(vectors[()], expected_values(written))
        assert [n.decode() for n in f["names"][()]] == written["names"]
        assert f["layers"][()].tolist() == written["layers"]
        assert f["counts"].dtype == np.int64
        assert f["counts"][()].tolist() == written["counts"]
        # Named dimensions (netCDF-style scales), so xarray/h5netcdf label the axes.
        assert [d[0].name for d in vectors.dims] == ["/name", "/layer", "/d_model"]
        assert [d[0].name for d in f["counts"].dims] == ["/name", "/layer"]


def test_safetensors_with_numpy(written):
    from safetensors import safe_open
    from safetensors.numpy import load_file

    tensors = load_file(written["safetensors"])
    values = expected_values(written)
    assert sorted(tensors) == sorted(written["names"] + [n + ".counts" for n in written["names"]])
    for i, name in enumerate(written["names"]):
        assert tensors[name].dtype == np.float32
        assert same_bits(tensors[name], values[i])
        assert tensors[name + ".counts"].dtype == np.int64
        assert tensors[name + ".counts"].tolist() == written["counts"][i]
    with safe_open(written["safetensors"], "np") as f:
        meta = f.metadata()
    assert meta["format"] == "thinksteer.vectors"
    assert meta["format_version"] == "1"
    assert json.loads(meta["names"]) == written["names"]
    assert json.loads(meta["layers"]) == written["layers"]
    assert int(meta["d_model"]) == written["d_model"]
    for key in ("hook_measured", "hook_applied", "architecture", "model", "provenance"):
        assert meta[key] == written[key]


def gguf_field(reader, key):
    field = reader.fields[key]
    return field.contents(), field.types


@pytest.mark.parametrize("which", ["gguf", "gguf_scaled", "gguf_same_block"])
def test_gguf_control_vector_with_gguf_py(written, which):
    from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType

    export = written[which]
    reader = GGUFReader(export["path"])
    assert gguf_field(reader, "general.architecture") == ("controlvector", [GGUFValueType.STRING])
    assert gguf_field(reader, "controlvector.model_hint") == (written["architecture"], [GGUFValueType.STRING])
    # llama.cpp's own generator writes layer_count as INT32: the number of direction tensors.
    assert gguf_field(reader, "controlvector.layer_count") == (len(export["layers"]), [GGUFValueType.INT32])
    assert gguf_field(reader, "thinksteer.vector_name")[0] == export["name"]
    assert gguf_field(reader, "thinksteer.scale") == (export["scale"], [GGUFValueType.FLOAT64])
    assert "general.alignment" not in reader.fields  # the default, 32
    assert reader.alignment == 32 and reader.data_offset % 32 == 0

    # See the module docstring: next-block writes direction.{l+1} for every layer, same-block direction.{l}
    # for every layer but 0.
    assert gguf_field(reader, "thinksteer.layer_map") == (export["layer_map"], [GGUFValueType.STRING])
    if export["layer_map"] == "next-block":
        assert export["layers"] == written["layers"]
        assert [t.name for t in reader.tensors] == ["direction.%d" % (l + 1) for l in export["layers"]]
    else:
        assert export["layer_map"] == "same-block"
        assert export["layers"] == [l for l in written["layers"] if l >= 1]
        assert [t.name for t in reader.tensors] == ["direction.%d" % l for l in export["layers"]]
    i = written["names"].index(export["name"])
    values = expected_values(written)[i]
    for t, layer in zip(reader.tensors, export["layers"]):
        assert t.tensor_type == GGMLQuantizationType.F32
        assert t.shape.tolist() == [written["d_model"]]
        assert t.data_offset % 32 == 0
        want = values[written["layers"].index(layer)]
        # The C++ writer scales in double and rounds once to float32; numpy does the same here.
        want = (want.astype(np.float64) * export["scale"]).astype(np.float32)
        assert same_bits(t.data, want), t.name


def write_with_gguf_py(path, directions, layer_count=None, layer_map=None):
    """A control vector as gguf-py writes one (the way repeng exports them): UINT32 layer_count; with
    layer_map, also the key thinksteer.layer_map."""
    from gguf import GGUFWriter

    w = GGUFWriter(str(path), "controlvector")
    w.add_string("controlvector.model_hint", "llama")
    if layer_map is not None:
        w.add_string("thinksteer.layer_map", layer_map)
    w.add_uint32("controlvector.layer_count", len(directions) if layer_count is None else layer_count)
    for name, values in directions.items():
        w.add_tensor(name, values)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# Without thinksteer.layer_map (another tool's file) direction.N is our layer N, where llama.cpp applies it.
@pytest.mark.parametrize("layer_map, layers", [(None, [1, 4, 9]), ("same-block", [1, 4, 9]), ("next-block", [0, 3, 8])])
def test_cpp_reads_gguf_py_control_vectors(vectors_fixture, tmp_path, layer_map, layers):
    rng = np.random.default_rng(7)
    directions = {"direction.%d" % l: rng.standard_normal(16).astype(np.float32) for l in (1, 4, 9)}
    write_with_gguf_py(tmp_path / "repeng.gguf", directions, layer_map=layer_map)
    done = subprocess.run([vectors_fixture, "read-gguf", str(tmp_path / "repeng.gguf")], check=True, capture_output=True, text=True)
    got = json.loads(done.stdout)
    assert got["layers"] == layers
    assert got["names"] == ["direction"] and got["architecture"] == "llama" and got["d_model"] == 16
    assert same_bits(expected_values(got)[0], np.stack(list(directions.values())))


@pytest.mark.parametrize(
    "name, layer_map, field",
    [
        ("direction.0", None, "direction.0"),
        ("direction.0", "next-block", "direction.0"),
        ("direction", None, "direction"),
        ("direction.1", "next_block", "thinksteer.layer_map"),
    ],
)
def test_cpp_rejects_bad_gguf_py_control_vectors(vectors_fixture, tmp_path, name, layer_map, field):
    path = tmp_path / "bad.gguf"
    write_with_gguf_py(path, {name: np.ones(4, dtype=np.float32)}, layer_map=layer_map)
    done = subprocess.run([vectors_fixture, "read-gguf", str(path)], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("%s: %s: " % (path, field)), done.stderr
