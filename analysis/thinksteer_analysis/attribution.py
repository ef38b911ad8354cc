"""Layer attribution written by `thinksteer attribute` (ALGORITHMS §A.7): <run.dir>/attribute/attribution.h5,
format thinksteer.attribution (the layout src/stages/attribute.cpp writes).

    from thinksteer_analysis import load_attribution
    a = load_attribution(run_dir)            # or the path of an attribution.h5
    a.mean[a.label_index("backtracking")]    # float32 [layer]: mean |effect| over examples
    a.selected_layers("backtracking")        # the layers the stage chose for steering
"""
import configparser
import pathlib
from dataclasses import dataclass, field

import numpy as np

from .h5schema import SchemaError, attr, check_format, open_h5, provenance, read, run_file

FORMAT = "thinksteer.attribution"


def attribution_path(run_dir):
    """<run_dir>/attribute/attribution.h5, or `run_dir` itself when it names a file."""
    return run_file(run_dir, "attribute", "attribution.h5")


@dataclass
class Attribution:
    """One attribution.h5. K labels, L attributed layers, E examples, S picks per label."""
    path: pathlib.Path
    labels: list                 # [K] behaviour labels
    layers: np.ndarray           # int64 [L] 0-based decoder layers attributed (ascending)
    effect: np.ndarray           # float32 [K, L, E] |effect| per example
    effect_signed: np.ndarray    # float32 [K, L, E] the same before the absolute value
    mean: np.ndarray             # float32 [K, L] mean |effect| over the examples with positions
    std: np.ndarray              # float32 [K, L] population std of the same
    cos_embed: np.ndarray        # float32 [K, L] max |cos| of the vector with a token-embedding row
    cos_unembed: np.ndarray      # float32 [K, L] the same with an unembedding (lm_head) row
    n_examples: np.ndarray       # int64 [K] examples with positions
    exclude_first: np.ndarray    # int64 [K] layers below this were not eligible for selection
    exclude_last: np.ndarray     # int64 [K] the last this-many layers of the model were not eligible
    selected: np.ndarray         # int64 [K, S] chosen steering layers, best first; -1 = none
    positions: np.ndarray        # int64 [K, E] positions (spans of other labels) per example
    example_id: list             # [E] generation ids
    metric: str = ""             # "paper" | "logprob"
    mode: str = ""               # "trace" | "per-span"
    hook: str = ""               # e.g. "blocks.{l}.hook_resid_post"
    provenance: dict = field(default_factory=dict)

    def label_index(self, label):
        try:
            return self.labels.index(label)
        except ValueError:
            raise KeyError(f"{self.path}: no label {label!r}; stored: {', '.join(self.labels)}") from None

    def selected_layers(self, label):
        return [int(l) for l in self.selected[self.label_index(label)] if l >= 0]

    def embed_cos_threshold(self):
        """attribute.embed_cos of the run's resolved config (None if not recorded)."""
        text = self.provenance.get("config", "")
        cp = configparser.ConfigParser()
        try:
            cp.read_string(text)
            return float(cp["attribute"]["embed_cos"])
        except (configparser.Error, KeyError, ValueError):
            return None


def load_attribution(run_dir):
    """Reads and checks <run_dir>/attribute/attribution.h5 (or the file given); SchemaError names the
    file and dataset of anything that does not follow the layout."""
    path = attribution_path(run_dir)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file (the attribute stage has not run)")
    with open_h5(path) as f:
        check_format(f, FORMAT)
        labels = read(f, "/labels", [("label", None)], "str")
        K = len(labels)
        layers = read(f, "/layers", [("layer", None)], "int")
        L = len(layers)
        example_id = read(f, "/example_id", [("example", None)], "str")
        E = len(example_id)
        kl, kle = [("label", K), ("layer", L)], [("label", K), ("layer", L), ("example", E)]
        selected = read(f, "/selected", [("label", K), ("pick", None)], "int")
        a = Attribution(
            path=path, labels=[str(s) for s in labels], layers=layers.astype(np.int64),
            effect=read(f, "/effect", kle, "float"), effect_signed=read(f, "/effect_signed", kle, "float"),
            mean=read(f, "/mean", kl, "float"), std=read(f, "/std", kl, "float"),
            cos_embed=read(f, "/cos_embed", kl, "float"), cos_unembed=read(f, "/cos_unembed", kl, "float"),
            n_examples=read(f, "/n_examples", [("label", K)], "int"),
            exclude_first=read(f, "/exclude_first", [("label", K)], "int"),
            exclude_last=read(f, "/exclude_last", [("label", K)], "int"),
            selected=selected, positions=read(f, "/positions", [("label", K), ("example", E)], "int"),
            example_id=[str(s) for s in example_id], metric=str(attr(f, "metric", "")), mode=str(attr(f, "mode", "")),
            hook=str(attr(f, "hook", "")), provenance=provenance(f))
    if np.any(np.diff(a.layers) <= 0):
        raise SchemaError(path, "/layers", f"not strictly ascending: {a.layers.tolist()}")
    return a
