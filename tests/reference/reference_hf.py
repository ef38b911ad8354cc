"""make_reference.py's HF side: hook recording (TransformerLens names on HF modules), steering hooks, greedy loops, the
bf16 goldens, the gradient metric and the rotary bands. Imported after the skip check (it needs torch)."""
from pathlib import Path

import torch
import torch.nn.functional as F

from reference_cases import ATTN_IMPL, BF16_MIN_MARGIN, D_MODEL, N_BF16_GREEDY, PAD, check


# ------------------------------------------ hooks --------------------------------------------
def _first(x):
    return x[0] if isinstance(x, tuple) else x


class Recorder:
    """Forward (pre-)hooks on the HF modules; stores [T, ...] tensors for batch 1."""

    def __init__(self, model, keep_graph=False):
        self.acts = {}
        self.keep_graph = keep_graph
        self.handles = []
        inner = model.model
        self.n_heads = model.config.num_attention_heads
        self.d_head = getattr(model.config, "head_dim", None) or D_MODEL // self.n_heads
        for l, layer in enumerate(inner.layers):
            p = f"blocks.{l}."
            self.handles += [
                layer.register_forward_pre_hook(self._pre(p + "hook_resid_pre"), with_kwargs=True),
                layer.register_forward_hook(self._out(p + "hook_resid_post")),
                layer.self_attn.register_forward_hook(self._out(p + "hook_attn_out")),
                layer.post_attention_layernorm.register_forward_pre_hook(
                    self._pre(p + "hook_resid_mid"), with_kwargs=True
                ),
                layer.mlp.register_forward_hook(self._out(p + "hook_mlp_out")),
                layer.self_attn.o_proj.register_forward_pre_hook(self._pre(p + "attn.hook_z"), with_kwargs=True),
            ]
        self.handles.append(inner.norm.register_forward_hook(self._out("ln_final.hook_normalized")))

    def _store(self, name, t):
        check(t.dim() == 3 and t.shape[0] == 1, f"{name}: unexpected shape {tuple(t.shape)}")
        check(name not in self.acts, f"{name} recorded twice (use_cache / generate inside Recorder?)")
        if self.keep_graph:
            if t.requires_grad and not t.is_leaf:
                t.retain_grad()
            self.acts[name] = t
        else:
            self.acts[name] = t.detach().clone()

    def _pre(self, name):
        def hook(module, args, kwargs):
            self._store(name, args[0] if args else kwargs["hidden_states"])

        return hook

    def _out(self, name):
        def hook(module, args, output):
            self._store(name, _first(output))

        return hook

    def remove(self):
        for h in self.handles:
            h.remove()

    def squeezed(self):
        out = {}
        for k, v in self.acts.items():
            v = v.detach()[0]
            if k.endswith("attn.hook_z"):
                v = v.reshape(v.shape[0], self.n_heads, self.d_head)
            out[k] = v.contiguous().clone()
        return out


def add_steering(model, layer, vec, coef):
    """Forward hook adding coef * vec to the decoder layer's output at every position."""

    def hook(module, args, output):
        if isinstance(output, tuple):
            return (output[0] + coef * vec,) + tuple(output[1:])
        return output + coef * vec

    return model.model.layers[layer].register_forward_hook(hook)


# ----------------------------------------- helpers -------------------------------------------
def forward_logits(model, ids):
    return model(input_ids=ids[None], use_cache=False).logits[0]


def hf_greedy(model, ids, n, attention_mask=None):
    if ids.dim() == 1:
        ids = ids[None]
    if attention_mask is None:
        attention_mask = torch.ones_like(ids)
    out = model.generate(
        input_ids=ids,
        attention_mask=attention_mask,
        do_sample=False,
        num_beams=1,
        max_new_tokens=n,
        min_new_tokens=n,
        eos_token_id=None,  # never stop, never suppress: pure argmax for exactly n tokens
        pad_token_id=PAD,
        use_cache=True,
    )
    new = out[:, ids.shape[1] :]
    check(new.shape == (ids.shape[0], n), f"generate returned {tuple(new.shape)}, want {(ids.shape[0], n)}")
    return new.contiguous()


def manual_greedy(model, ids, n):
    """Argmax loop with a full recompute (no KV cache) each step; returns tokens and min top-2 margin."""
    seq = ids.clone()
    margin = float("inf")
    for _ in range(n):
        logits = forward_logits(model, seq)[-1]
        top = torch.topk(logits, 2)
        margin = min(margin, float(top.values[0] - top.values[1]))
        seq = torch.cat([seq, top.indices[:1]])
    return seq[ids.shape[0] :], margin


def bf16_goldens(path: Path, prompts, g):
    """HF computing in bfloat16 as users load it (from_pretrained(dtype=bfloat16): weights rounded to bf16, rotary
    inv_freq kept in fp32): logits of every prompt, HF's own bf16 error against the fp32 logits (the parity
    test's tolerance), and the bf16 greedy continuation of the prompt with the longest run before a near-tie."""
    from transformers import AutoModelForCausalLM

    bf = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16, attn_implementation=ATTN_IMPL).eval()
    check(bf.model.rotary_emb.inv_freq.dtype == torch.float32, "bf16 load: inv_freq should stay fp32")
    info = {}
    with torch.no_grad():
        for i, ids in enumerate(prompts):
            lb = forward_logits(bf, ids).float()
            g[f"p{i}.bf16.logits"] = lb
            g[f"p{i}.bf16.error"] = (lb - g[f"p{i}.logits"]).abs().max().reshape(1).clone()
            info[f"p{i}.error"] = float(g[f"p{i}.bf16.error"])
        best = (-1, None, None)
        for i, ids in enumerate(prompts):
            greedy = hf_greedy(bf, ids, N_BF16_GREEDY)[0]
            # the tokens before the first step whose top-2 gap is within bf16 resolution of a tie
            seq, keep = ids.clone(), 0
            for t in greedy:
                top = torch.topk(forward_logits(bf, seq)[-1].float(), 2)
                if int(top.indices[0]) != int(t) or float(top.values[0] - top.values[1]) < BF16_MIN_MARGIN:
                    break
                keep += 1
                seq = torch.cat([seq, t.reshape(1)])
            if keep > best[0]:
                best = (keep, i, greedy[:keep].contiguous())
        check(best[0] >= 4, f"bf16 greedy: every prompt has a near-tie within 4 tokens (best {best[0]})")
        g["bf16.greedy.prompt"] = torch.tensor([best[1]], dtype=torch.int64)
        g["bf16.greedy"] = best[2]
        info["greedy_prompt"], info["greedy_tokens"] = best[1], best[0]
    return info


def next_token_metric(logits, ids):
    logp = F.log_softmax(logits[:-1].float(), dim=-1)
    return logp.gather(1, ids[1:, None]).sum()


def rope_bands(model, case):
    """Default vs actual inverse frequencies; for llama3, which band each frequency falls in."""
    import math

    inv = model.model.rotary_emb.inv_freq.detach().clone().float()
    d_head = getattr(model.config, "head_dim", None) or D_MODEL // case["heads"]
    theta = case["rope"]["rope_theta"]
    default = 1.0 / (theta ** (torch.arange(0, d_head, 2, dtype=torch.int64).float() / d_head))
    info = {"inv_freq": [float(x) for x in inv]}
    if case["rope"]["rope_type"] == "llama3":
        r = case["rope"]
        old = r["original_max_position_embeddings"]
        wl = [2 * math.pi / float(x) for x in default]
        bands = [
            "high_kept" if w < old / r["high_freq_factor"] else "low_divided" if w > old / r["low_freq_factor"] else "mid_smoothed"
            for w in wl
        ]
        info["wavelengths"] = wl
        info["bands"] = bands
        for b in ("high_kept", "mid_smoothed", "low_divided"):
            check(b in bands, f"llama3 rope: band {b} empty, wavelengths {wl}")
        changed = int((inv != default).sum())
        check(changed > 0, "llama3 rope scaling did not change any frequency")
        info["n_changed"] = changed
    else:
        check(torch.equal(inv, default), "default rope inv_freq differs from theta^(-2i/d)")
    return inv, info
