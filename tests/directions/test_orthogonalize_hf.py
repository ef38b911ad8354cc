"""Directional ablation against HF transformers: the weight-orthogonalised exports test_orthogonalize writes (under
THINKSTEER_TEST_DATA/directions/<case>, the direction in ablation.json) load in transformers, and their logits equal
transformers' own source model with the direction projected out by forward hooks at every decoder layer's input,
attention output and MLP output (fp32, eager attention): max |a - b| <= 1e-4."""
import json
import os
from pathlib import Path

import numpy as np
import pytest

DATA = Path(os.environ.get("THINKSTEER_TEST_DATA", Path(__file__).resolve().parents[2] / "build" / "testdata"))
CASES = ["qwen2_gqa_tied", "qwen2_untied_sharded", "llama3_rope_untied", "llama_bf16"]


def ablate(x, r):
    return x - (x @ r)[..., None] * r


@pytest.mark.parametrize("case", CASES)
def test_export_equals_hf_hooks(case):
    import torch
    from transformers import AutoModelForCausalLM
    export = DATA / "directions" / case
    if not (export / "config.json").exists():
        pytest.skip(f"{export}: run test_orthogonalize first")
    r = torch.tensor(json.loads((export / "ablation.json").read_text())["direction"], dtype=torch.float32)
    r = r / r.norm()
    src = AutoModelForCausalLM.from_pretrained(DATA / "reference" / case, dtype=torch.float32, attn_implementation="eager").eval()
    out = AutoModelForCausalLM.from_pretrained(export, dtype=torch.float32, attn_implementation="eager").eval()
    assert not out.config.tie_word_embeddings
    for layer in src.model.layers:
        layer.register_forward_pre_hook(lambda m, args, kwargs: ((ablate(args[0], r), *args[1:]), kwargs) if args else
                                        ((), {**kwargs, "hidden_states": ablate(kwargs["hidden_states"], r)}), with_kwargs=True)
        layer.self_attn.register_forward_hook(lambda m, a, o: (ablate(o[0], r), *o[1:]))
        layer.mlp.register_forward_hook(lambda m, a, o: ablate(o, r))
    ids = torch.arange(5, 45).remainder(250)[None]
    with torch.inference_mode():
        want = src(ids).logits[0].numpy()
        got = out(ids).logits[0].numpy()
    assert np.abs(got - want).max() <= 1e-4
