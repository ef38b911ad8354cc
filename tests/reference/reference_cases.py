"""The reference cases of make_reference.py: the tiny models' shapes, seeds and variants, and the constants of the
goldens (prompts, greedy lengths, steering). Part of the script's digest: editing it regenerates the reference data."""

# ---------------------------------------------------------------------------------------------
# Case definitions
# ---------------------------------------------------------------------------------------------
VOCAB = 256
D_MODEL = 64
D_MLP = 128
MAX_POS = 512
BOS, EOS, PAD = 1, 2, 0
PROMPT_LENGTHS = (7, 12, 5)
PROMPT_SEED = 1234
N_GREEDY = 64
N_BATCH_GREEDY = 16
STEER_LAYER = 1
STEER_COEF = 2.0
STEER_NORM = 8.0  # |coef * vector| = 16 vs |resid| ~ 50 at layer 1: early, clear divergence
INIT_STD = 0.2  # every weight / bias ~ N(0, 0.2) (HF default 0.02 gives flat logits)
NORM_STD = 0.1  # RMSNorm weights ~ 1 + N(0, 0.1)
# Greedy goldens must not hinge on near-ties: every argmax along every recorded greedy path beats
# the runner-up by at least this much (seeds below were picked so that it holds).
MIN_TOP2_MARGIN = 1e-3
N_BF16_GREEDY = 32
BF16_MIN_MARGIN = 0.0625  # logits of magnitude 2-8 are stored in bf16 steps of 2^-6..2^-4: a smaller gap may flip between kernels
ATTN_IMPL = "eager"

# Llama-3 rope scaling.  original_max_position_embeddings is 64 rather than 8192 so that, with
# d_head = 16 and theta = 5e5, the three llama3 bands are all populated: wavelength 6.3 (< 64/4,
# kept), 32.3 (between 16 and 64, smoothed) and 167.. (> 64, divided by factor).  With 32, the
# smoothed band would be empty (32.3 > 32) and that code path would go untested.
LLAMA3_ROPE = {
    "rope_type": "llama3",
    "rope_theta": 500000.0,
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 64,
}

CASES = [
    dict(
        name="qwen2_gqa_tied",
        arch="qwen2",
        layers=3,
        heads=4,
        kv_heads=2,
        tied=True,
        rope={"rope_type": "default", "rope_theta": 10000.0},
        rms_norm_eps=1e-6,
        save_dtype="float32",
        config_style="both",  # rope_parameters (transformers 5) + top-level rope_theta/rope_scaling
        shard_size=None,
        seed=1001,
    ),
    dict(
        name="qwen2_untied_sharded",
        arch="qwen2",
        layers=2,
        heads=8,
        kv_heads=8,
        tied=False,
        rope={"rope_type": "default", "rope_theta": 1000000.0},
        rms_norm_eps=1e-6,
        save_dtype="float32",
        config_style="transformers5",  # exactly what save_pretrained writes
        shard_size="100KB",
        seed=1002,
    ),
    dict(
        name="llama3_rope_untied",
        arch="llama",
        layers=3,
        heads=4,
        kv_heads=1,
        tied=False,
        rope=LLAMA3_ROPE,
        rms_norm_eps=1e-5,
        save_dtype="float32",
        config_style="both",
        shard_size=None,
        seed=1013,
    ),
    dict(
        name="llama_bf16",
        arch="llama",
        layers=2,
        heads=4,
        kv_heads=2,
        tied=True,
        rope={"rope_type": "default", "rope_theta": 10000.0},
        rms_norm_eps=1e-5,
        save_dtype="bfloat16",
        config_style="legacy",  # pre-transformers-5 checkpoint: no rope_parameters, torch_dtype
        shard_size=None,
        seed=1014,
    ),
]


class CheckFailed(RuntimeError):
    """A self-check of make_reference.py failed (raised by both of its modules)."""


def check(cond, msg):
    if not cond:
        raise CheckFailed(msg)
