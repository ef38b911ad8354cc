"""A sentences file (the `sentences` stage's format, artifacts/sentences.h) with planted clusters, for the
taxonomy sweep's tests: N sentences at two layers; at the `planted` layer every sentence is its
category's unit direction plus noise (K_TRUE categories, labels "cat0".."cat5" as the reference
annotation; each category's texts share a word of WORDS), at the other layer the vectors are pure noise. Rows are centred and unit-normalised as
the stage writes them. Deterministic in `seed`."""
import json

import h5py
import numpy as np

K_TRUE = 6
# The word each category's sentences share (what an offline title should find).
WORDS = ("wait", "check", "maybe", "recall", "plan", "compute")
LAYERS = (2, 5)
PLANTED = 5


def write_planted_sentences(path, n=1200, d=32, noise=0.08, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((K_TRUE, d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    truth = np.arange(n) % K_TRUE
    rng.shuffle(truth)
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "thinksteer.sentences"
        f.attrs["schema_version"] = 1
        f.attrs["stage"] = "sentences"
        f.attrs["hook"] = "blocks.{l}.hook_resid_post"  # as the sentences stage writes it
        f.attrs["position"] = "mean"
        f.attrs["layers"] = np.array(LAYERS, dtype=np.int64)
        f.attrs["d_model"] = d
        f.attrs["n_sentences"] = n
        f.attrs["n_traces"] = n // 4
        f.attrs["model_path"] = "planted"
        f.attrs["provenance"] = json.dumps({"stage": "sentences", "planted": True})
        for layer in LAYERS:
            raw = (centres[truth] if layer == PLANTED else 0) + noise * rng.standard_normal((n, d))
            mean = raw.mean(axis=0)
            c = raw - mean
            norm = np.linalg.norm(c, axis=1)
            g = f.create_group(f"layer_{layer}")
            g["vectors"] = (c / norm[:, None]).astype(np.float32)
            g["norm"] = norm.astype(np.float32)
            g["mean"] = mean.astype(np.float32)
        s = f.create_group("sentences")
        s["trace"] = (np.arange(n) // 4).astype(np.int64)
        s["trace_id"] = np.array([f"t{i // 4}" for i in range(n)], dtype=h5py.string_dtype())
        s["text"] = np.array([f"Sentence {i} is about {WORDS[t]} things." for i, t in enumerate(truth)], dtype=h5py.string_dtype())
        for name in ("char_begin", "char_end", "token_begin", "token_end"):
            s[name] = np.zeros(n, dtype=np.int64)
        s["label"] = np.array([f"cat{t}" for t in truth], dtype=h5py.string_dtype())
    return truth
