#!/usr/bin/env python3
"""Create the small demo checkpoint the README's main command runs on (until the planted-truth
toy models ship): a random Qwen2ForCausalLM (4 layers, d_model 128, GQA 4/2 heads) with a byte-level
BPE tokenizer trained on a built-in text, R1 special tokens and the DeepSeek-R1-Distill pre-tokenizer.
Deterministic for a given --seed; skips work when OUT already holds a model made by this script.

Usage: make_demo_model.py --out DIR [--seed 0]
"""
import os
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
import argparse
import hashlib
import json
import pathlib
import sys

CORPUS = """
Let me think about this step by step. First, I need to find the total. Wait, that is not right.
Let me check with an example: if x = 3 then 2x + 1 = 7. So the answer is \\boxed{7}.
Hmm, maybe I should reconsider. The train leaves at 9:00 and travels 120 km at 60 km/h, so it arrives at 11:00.
Alternatively, we can count the cases: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10. There are 10 cases in total.
I'm not sure about this. Let me verify: 12 * 12 = 144, and 144 / 4 = 36. Yes, that's correct.
def solve(n):\n    return sum(i * i for i in range(n))\n
The probability of rolling two sixes is 1/36. Therefore the expected number of tries is 36.
思考一下这个问题。答案是四十二。 数学很有趣！ 🙂
""" * 4

SPECIAL = ["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>"]
ADDED = ["<think>", "</think>"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=pathlib.Path)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    stamp_value = hashlib.sha256(pathlib.Path(__file__).read_bytes() + str(args.seed).encode()).hexdigest()
    stamp = args.out / ".made_by_make_demo_model"
    if stamp.exists() and stamp.read_text().strip() == stamp_value:
        print(f"demo model: {args.out} is up to date")
        return 0

    import torch
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"\p{N}{1,3}"), behavior="isolated"),
        pre_tokenizers.Split(Regex(r"[一-龥぀-ゟ゠-ヿ]+"), behavior="isolated"),
        pre_tokenizers.Split(Regex(r"[!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS.splitlines(), trainer=trainer)
    tok.add_tokens(ADDED)
    vocab = tok.get_vocab_size()

    torch.manual_seed(args.seed)
    cfg = Qwen2Config(vocab_size=vocab, hidden_size=128, intermediate_size=352, num_hidden_layers=4, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=2048, rope_theta=10000.0, rms_norm_eps=1e-6,
                      tie_word_embeddings=True, bos_token_id=tok.token_to_id(SPECIAL[0]), eos_token_id=tok.token_to_id(SPECIAL[1]),
                      pad_token_id=tok.token_to_id(SPECIAL[1]), initializer_range=0.08)
    model = Qwen2ForCausalLM(cfg).eval()
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out)
    GenerationConfig(bos_token_id=cfg.bos_token_id, eos_token_id=cfg.eos_token_id, do_sample=False).save_pretrained(args.out)
    tok.save(str(args.out / "tokenizer.json"))
    (args.out / "tokenizer_config.json").write_text(json.dumps({"bos_token": SPECIAL[0], "eos_token": SPECIAL[1]}, ensure_ascii=False))
    stamp.write_text(stamp_value + "\n")
    n = sum(p.numel() for p in model.parameters())
    print(f"demo model: wrote {args.out} ({n/1e6:.2f}M parameters, vocab {vocab}, seed {args.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
