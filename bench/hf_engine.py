"""bench_engine.py's HF side: the engine benchmark's measurements run with HF transformers (same conventions as
bench_engine.cpp: the same prompts from prompt_ids, recording by forward hooks that clone each decoder layer's output,
greedy model.generate for exactly --new-tokens tokens). Kept apart so that bench_engine.py stays a driver."""
from __future__ import annotations

import statistics
import time
from pathlib import Path

from bench_engine import prompt_ids


class HfRunner:
    """The same measurements with HF transformers (same conventions as bench_engine.cpp)."""

    def __init__(self, model_dir: Path, a):
        import torch
        from transformers import AutoModelForCausalLM

        self.torch, self.a = torch, a
        torch.set_num_threads(a.threads)
        self.threads = torch.get_num_threads()
        t0 = time.perf_counter()
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
        self.load_s = time.perf_counter() - t0
        self.model.generation_config.eos_token_id = None  # exactly max_new_tokens tokens
        self.model.generation_config.pad_token_id = 0
        cfg = self.model.config
        V = cfg.vocab_size
        self.prefill_tokens = torch.tensor([prompt_ids(a.seed, 1000 + b, a.prefill_len, V) for b in range(a.prefill_batch)])
        self.store: list = []
        self.calls: list[tuple[float, float]] = []  # (wall, process CPU) at the start of each forward
        # Decode phase = from the start of the second forward call (the first single-token step) to the
        # end of generate(): new_tokens-1 forwards, as in bench_engine.cpp.
        self.model.register_forward_pre_hook(lambda _m, _i: self.calls.append((time.perf_counter(), time.process_time())))

    def _keep(self, _module, _inputs, output):
        h = output[0] if isinstance(output, tuple) else output
        self.store.append(h.detach().clone())

    def prefill(self, record: bool) -> dict:
        torch, a, model = self.torch, self.a, self.model
        self.store.clear()  # drop the previous run's tensors outside the timed region
        handles = [layer.register_forward_hook(self._keep) for layer in model.model.layers] if record else []
        try:
            with torch.inference_mode():
                c0, t0 = time.process_time(), time.perf_counter()
                if a.prefill_logits == "none":
                    model.model(input_ids=self.prefill_tokens, use_cache=False)
                else:
                    model(input_ids=self.prefill_tokens, use_cache=False,
                          logits_to_keep=0 if a.prefill_logits == "all" else 1)
                s, cpu = time.perf_counter() - t0, time.process_time() - c0
        finally:
            for h in handles:
                h.remove()
        if record:
            assert len(self.store) == model.config.num_hidden_layers
            assert self.store[-1].shape == (a.prefill_batch, a.prefill_len, model.config.hidden_size)
        return {"s": s, "cpu_s": cpu}

    def decode(self, batch: int) -> dict:
        torch, a = self.torch, self.a
        ids = torch.tensor([prompt_ids(a.seed, b, a.prompt_len, self.model.config.vocab_size) for b in range(batch)])
        with torch.inference_mode():
            self.calls.clear()
            c0, t0 = time.process_time(), time.perf_counter()
            res = self.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                      max_new_tokens=a.new_tokens, eos_token_id=None, pad_token_id=0)
            t1, cpu = time.perf_counter(), time.process_time() - c0
        assert len(self.calls) == a.new_tokens, f"expected {a.new_tokens} forward calls, saw {len(self.calls)}"
        assert res.shape == (batch, a.prompt_len + a.new_tokens), res.shape
        return {"batch": batch, "total_s": t1 - t0, "decode_s": t1 - self.calls[1][0], "cpu_s": cpu,
                "decode_cpu_s": c0 + cpu - self.calls[1][1], "tokens": res[:, a.prompt_len:].tolist()}

    # ---- --profile: where an HF decode step's time goes ----

    def profile(self, steps: int) -> dict:
        """Batch-1 decode steps as bare forwards (no generate), the weight matmuls alone, and torch.profiler."""
        torch, a, model = self.torch, self.a, self.model
        from transformers import DynamicCache

        cfg = model.config
        ids = torch.tensor([prompt_ids(a.seed, 0, a.prompt_len, cfg.vocab_size)])
        out: dict = {"steps": steps}
        with torch.inference_mode():
            cache = DynamicCache(config=cfg)
            logits = model(input_ids=ids, past_key_values=cache, use_cache=True, logits_to_keep=1).logits

            def step():
                nonlocal logits
                nxt = logits[:, -1].argmax(-1, keepdim=True)
                logits = model(input_ids=nxt, past_key_values=cache, use_cache=True, logits_to_keep=1).logits

            step()
            times, cpus = [], []
            for _ in range(steps):
                c, t = time.process_time(), time.perf_counter()
                step()
                times.append(time.perf_counter() - t)
                cpus.append(time.process_time() - c)
            out["forward_step_ms"] = 1e3 * statistics.median(times)
            out["forward_step_ms_min"] = 1e3 * min(times)
            out["forward_step_cpu_ms"] = 1e3 * statistics.median(cpus)

            prof = self._op_profile(step, steps)
            out["profiled_step_ms"] = prof["step_ms"]
            out["op_self_ms_per_step"] = prof["op_self_ms"]
            out["top_ops"] = prof["ops"]
            out["matmul_floor"] = {str(b): self._matmul_floor(b) for b in a.decode_batches}
        return out

    def profile_prefill(self, steps: int) -> dict:
        """The prefill without hooks (as prefill(False)) under torch.profiler."""
        torch, a, model = self.torch, self.a, self.model

        def step():
            if a.prefill_logits == "none":
                model.model(input_ids=self.prefill_tokens, use_cache=False)
            else:
                model(input_ids=self.prefill_tokens, use_cache=False, logits_to_keep=0 if a.prefill_logits == "all" else 1)

        with torch.inference_mode():
            step()
            return self._op_profile(step, steps)

    @staticmethod
    def _op_profile(step, steps: int) -> dict:
        """One torch.profiler per step; per op, the median over steps of its self time (resists other load)."""
        from torch.profiler import ProfilerActivity, profile

        per_op: dict[str, list[float]] = {}
        calls: dict[str, int] = {}
        walls, totals = [], []
        for i in range(steps):
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                t = time.perf_counter()
                step()
                walls.append(time.perf_counter() - t)
            total = 0.0
            for e in prof.key_averages():
                v = per_op.setdefault(e.key, [])
                v += [0.0] * (i - len(v)) + [e.self_cpu_time_total / 1e3]
                calls[e.key] = calls.get(e.key, 0) + e.count
                total += e.self_cpu_time_total / 1e3
            totals.append(total)
        rows = sorted(((k, statistics.median(v + [0.0] * (steps - len(v)))) for k, v in per_op.items()), key=lambda r: -r[1])
        return {"step_ms": 1e3 * statistics.median(walls), "op_self_ms": statistics.median(totals),
                "ops": [{"op": k, "calls_per_step": calls[k] / steps, "self_ms_per_step": ms} for k, ms in rows[:12]]}

    def _matmul_floor(self, batch: int) -> dict:
        """One decode step's weight matmuls alone, with the model's own weights, as HF runs them and fused."""
        torch, model = self.torch, self.model
        F = torch.nn.functional
        cfg = model.config
        x = torch.randn(batch, 1, cfg.hidden_size)
        xf = torch.randn(batch, 1, cfg.intermediate_size)
        layers = model.model.layers
        fused = [(torch.cat([l.self_attn.q_proj.weight, l.self_attn.k_proj.weight, l.self_attn.v_proj.weight]),
                  torch.cat([l.self_attn.q_proj.bias, l.self_attn.k_proj.bias, l.self_attn.v_proj.bias]),
                  l.self_attn.o_proj.weight, torch.cat([l.mlp.gate_proj.weight, l.mlp.up_proj.weight]),
                  l.mlp.down_proj.weight) for l in layers]

        def run_separate():
            for l in layers:
                at, mlp = l.self_attn, l.mlp
                at.q_proj(x), at.k_proj(x), at.v_proj(x), at.o_proj(x), mlp.gate_proj(x), mlp.up_proj(x), mlp.down_proj(xf)
            model.lm_head(x)

        def run_fused():
            for w_qkv, b_qkv, w_o, w_gu, w_d in fused:
                F.linear(x, w_qkv, b_qkv), F.linear(x, w_o), F.linear(x, w_gu), F.linear(xf, w_d)
            F.linear(x, model.lm_head.weight)

        def timed(fn, n=15):
            fn()
            ts, cs = [], []
            for _ in range(n):
                c, t = time.process_time(), time.perf_counter()
                fn()
                ts.append(time.perf_counter() - t)
                cs.append(time.process_time() - c)
            return 1e3 * statistics.median(ts), 1e3 * min(ts), 1e3 * statistics.median(cs)

        weight_bytes = 4 * sum(p.numel() for n, p in model.named_parameters() if n.endswith("weight") and p.dim() == 2
                               and "embed_tokens" not in n) + 4 * model.lm_head.weight.numel()
        with torch.inference_mode():
            sep, sep_min, sep_cpu = timed(run_separate)
            fus, fus_min, fus_cpu = timed(run_fused)
        return {"separate_ms": sep, "separate_ms_min": sep_min, "separate_cpu_ms": sep_cpu, "fused_ms": fus,
                "fused_ms_min": fus_min, "fused_cpu_ms": fus_cpu, "weight_mb": weight_bytes / 1e6}
