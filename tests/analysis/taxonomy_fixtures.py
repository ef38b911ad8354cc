"""A tiny writer of the taxonomy's artifacts for tests/analysis/test_taxonomy_analysis.py, to the layouts the
C++ writers produce (src/artifacts/sentences.cpp, taxonomy_task.cpp, taxonomy_summary.cpp,
taxonomy_export.cpp for titles.json), with planted values the tests read back:
  write_sentences(run)            <run>/sentences/sentences.h5 (+.done), N = 8 sentences, layers 2 and 5, d = 4
  write_task(run, layer, k, ...)  <run>/taxonomy/tasks/<key>.h5 (+.done); returns (path, key)
  write_summary(run, ...)         <run>/taxonomy/summary.h5 (+.done, summary.csv): layers x KS x methods groups
  write_titles(run, key, obj)     <run>/titles/<key>/titles.json (titles_object(key) by default)
Strings are variable-length UTF-8 like the C++ HDF5 writer's."""
import hashlib
import json
from pathlib import Path

import h5py
import numpy as np

STR = h5py.string_dtype("utf-8")


def identity(f, fmt, stage):
    """Root attributes of write_h5_identity (src/artifacts/artifact.cpp), the ones a reader looks at."""
    f.attrs["format"] = fmt
    f.attrs["schema_version"] = np.int64(1)
    f.attrs["stage"] = stage
    f.attrs["config_sha256"] = "c" * 64
    f.attrs["provenance"] = json.dumps({"stage": stage, "config": "[run]\ndir = x\n"})


def done(path):
    Path(f"{path}.done").write_text("0" * 64)


def point_key(layer, k, method, seed):
    """src/taxonomy/sweep_point.cpp key_of: SHA-256 of nlohmann's compact dump (keys sorted), 16 hex digits."""
    params = {"sweep": "taxonomy", "layer": layer, "k": k, "method": method, "seed": seed}
    return hashlib.sha256(json.dumps(params, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


# ---- sentences.h5 -----------------------------------------------------------------------------------
N, D, LAYERS, N_TRACES = 8, 4, (2, 5), 3
TEXTS = [f"Sentence {i} | wait, let me check." for i in range(N)]
LABELS = ["backtracking", "", "deduction", "deduction", "backtracking", "", "deduction", "backtracking"]


def layer_arrays(layer):
    rng = np.random.default_rng(layer)
    raw = rng.standard_normal((N, D))
    mean = raw.mean(axis=0)
    c = raw - mean
    norm = np.linalg.norm(c, axis=1)
    return (c / norm[:, None]).astype(np.float32), norm.astype(np.float32), mean.astype(np.float32)


def write_sentences(run, labels=True):
    path = run / "sentences" / "sentences.h5"
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        for l in LAYERS:
            vectors, norm, mean = layer_arrays(l)
            f[f"/layer_{l}/vectors"], f[f"/layer_{l}/norm"], f[f"/layer_{l}/mean"] = vectors, norm, mean
        f["/sentences/trace"] = np.array([0, 0, 0, 1, 1, 2, 2, 2], dtype=np.int64)
        f["/sentences/char_begin"] = np.arange(N, dtype=np.int64) * 10
        f["/sentences/char_end"] = np.arange(N, dtype=np.int64) * 10 + 9
        f["/sentences/token_begin"] = np.arange(N, dtype=np.int64) * 3 + 5
        f["/sentences/token_end"] = np.arange(N, dtype=np.int64) * 3 + 7
        f.create_dataset("/sentences/trace_id", data=[f"t{i}" for i in (0, 0, 0, 1, 1, 2, 2, 2)], dtype=STR)
        f.create_dataset("/sentences/text", data=TEXTS, dtype=STR)
        if labels:
            f.create_dataset("/sentences/label", data=LABELS, dtype=STR)
        identity(f, "thinksteer.sentences", "sentences")
        f.attrs["hook"] = "blocks.{l}.hook_resid_post"
        f.attrs["position"] = "mean"
        f.attrs["layers"] = np.array(LAYERS, dtype=np.int64)
        for name, v in (("d_model", D), ("n_sentences", N), ("n_traces", N_TRACES), ("n_mean_traces", N_TRACES)):
            f.attrs[name] = np.int64(v)
        f.attrs["model_path"] = "models/toy"
    done(path)
    return path


# ---- taxonomy/tasks/<key>.h5 ----------------------------------------------------------------------------
ASSIGN = np.array([0, 1, 1, 0, 2, 2, 1, 0], dtype=np.int64)


def write_task(run, layer=5, k=3, method="sae", seed=0, task=0, metrics=None):
    key = point_key(layer, k, method, seed)
    path = run / "taxonomy" / "tasks" / f"{key}.h5"
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(task)
    centres = rng.standard_normal((k, D)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    assign = ASSIGN % k
    with h5py.File(path, "w") as f:
        f["/assign"] = assign
        f["/sizes"] = np.bincount(assign, minlength=k).astype(np.int64)
        f["/centres"] = centres
        f["/loss"] = np.array([0.5, 0.3, 0.2]) if method == "sae" else np.array([0.4])
        if method == "sae":
            f["/sae/w_enc"], f["/sae/w_dec"] = centres, centres
            f["/sae/b_enc"], f["/sae/b_dec"] = np.zeros(k, dtype=np.float32), np.zeros(D, dtype=np.float32)
        identity(f, "thinksteer.taxonomy_task", "sweep run")
        point = {"task": task, "key": key, "sweep": "taxonomy", "layer": layer, "k": k, "method": method, "seed": seed}
        f.attrs["task"] = np.int64(task)
        f.attrs["key"] = key
        f.attrs["point"] = json.dumps(point)
        f.attrs["metrics"] = json.dumps(metrics if metrics is not None else {"fvu": 0.25, "orthogonality": 0.8, "dead": 0, "nmi": None})
        f.attrs["sentences_file"] = str(run / "sentences" / "sentences.h5")
        f.attrs["sentences_hash"] = "s" * 64
    done(path)
    return path, key


# ---- taxonomy/summary.h5 ---------------------------------------------------------------------------
KS = (2, 4, 8)
METRICS_REF = ["fvu", "orthogonality", "dead", "nmi", "ari", "majority", "matched", "epochs"]


def planted_groups(reference=True, seeds=3):
    """(layer, k, method, n_seeds, {metric: mean}) in manifest order (layers x ks x methods); layer 5,
    K 4, sae has the highest NMI; layer 2, K 8, kmeans has one seed."""
    groups = []
    for layer in LAYERS:
        for k in KS:
            for method in ("sae", "kmeans"):
                nmi = 0.9 if (layer, k, method) == (5, 4, "sae") else 0.1 * k / 8 + 0.05 * (layer == 5) + 0.02 * (method == "sae")
                m = {"fvu": 1.0 / k + 0.05 * (method == "kmeans"), "orthogonality": 0.5 + 0.04 * k, "dead": 0.0, "nmi": nmi, "ari": nmi - 0.1,
                     "majority": 0.5, "matched": nmi - 0.05, "epochs": 3.0}
                if not reference:
                    m = {name: v for name, v in m.items() if name not in ("nmi", "ari", "majority", "matched")}
                groups.append((layer, k, method, 1 if (layer, k, method) == (2, 8, "kmeans") else seeds, m))
    return groups


def write_summary(run, reference=True, seeds=3, selected=True):
    path = run / "taxonomy" / "summary.h5"
    path.parent.mkdir(parents=True, exist_ok=True)
    groups = planted_groups(reference, seeds)
    metrics = [m for m in METRICS_REF if m in groups[0][4]]
    with h5py.File(path, "w") as f:
        f["/groups/layer"] = np.array([g[0] for g in groups], dtype=np.int64)
        f["/groups/k"] = np.array([g[1] for g in groups], dtype=np.int64)
        f["/groups/n_seeds"] = np.array([g[3] for g in groups], dtype=np.int64)
        f.create_dataset("/groups/method", data=[g[2] for g in groups], dtype=STR)
        f.create_dataset("/metrics", data=metrics, dtype=STR)
        for m in metrics:
            mean = np.array([g[4][m] for g in groups])
            half = np.array([0.02 if g[3] > 1 else np.nan for g in groups])
            f[f"/groups/{m}"], f[f"/groups/{m}_lo"], f[f"/groups/{m}_hi"] = mean, mean - half, mean + half
        key = "nmi" if reference else None
        score = [(g[4][key] if key else 0.5 * (1 - g[4]["fvu"] + g[4]["orthogonality"])) if g[2] == "sae" else np.nan for g in groups]
        f["/groups/score"] = np.array(score, dtype=np.float64)
        identity(f, "thinksteer.taxonomy_summary", "reduce")
        f.attrs["rule"] = "highest mean NMI with the reference labels among the SAE groups; ties: smaller K, then earlier layer"
        best = int(np.nanargmax(score))
        sel = (groups[best][0], groups[best][1], groups[best][2]) if selected else (-1, -1, "")
        f.attrs["selected_layer"], f.attrs["selected_k"], f.attrs["selected_method"] = np.int64(sel[0]), np.int64(sel[1]), sel[2]
        f.attrs["partial"], f.attrs["n_tasks"], f.attrs["n_missing"], f.attrs["missing"] = np.int64(0), np.int64(60), np.int64(0), ""
    done(path)
    (path.parent / "summary.csv").write_text("layer,k,method,n_seeds,score,selected\n")
    return path


# ---- titles/<key>/titles.json -----------------------------------------------------------------------
LONG = "Wait | maybe I should recheck the " + "very " * 30 + "long computation."


def titles_object(key, k=3):
    clusters = [{"index": c, "title": f"Title {c} | pipes", "description": f"cluster {c}", "size": int((ASSIGN % k == c).sum()),
                 "words": ["wait", "check"], "examples": [LONG, f"Short example {c}.", "A third example."][: 3 - (c == k - 1) * 2],
                 "random": ["r"]} for c in range(k)]
    return {"format": "thinksteer.titles", "version": 1, "key": key, "layer": 5, "k": k, "method": "sae", "seed": 0, "source": "offline",
            "hook": "blocks.5.hook_resid_post", "clusters": clusters}


def write_titles(run, key, obj=None):
    path = run / "titles" / key / "titles.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj if obj is not None else titles_object(key), indent=1))
    (path.parent / "cfg.json").write_text("{}")
    return path
