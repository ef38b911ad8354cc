#!/usr/bin/env python3
"""Tokenizer throughput, C++ (bench_tokenizer) against HF tokenizers, on the same text in one run.

Builds a ~1 MB corpus of documents (Python standard library sources plus multilingual prose),
trains a byte-level BPE tokenizer with one family's exact pipeline (or uses --tokenizer), times HF
tokenizers single-threaded (RAYON_NUM_THREADS=1: encode_batch and a loop of encode) and the C++
binary on the same documents, checks that both produce identical ids and prints the speed ratio.

Usage: bench_tokenizer.py --binary build/bin/bench_tokenizer [--family qwen2|llama3|deepseek_r1]
                          [--tokenizer tokenizer.json] [--size-mb 1.0] [--repeats 5] [--workdir DIR]
                          [--long-run N]

--long-run N times hostile input instead of the corpus: two documents of N letters without a space
(seeded random letters, and one letter repeated), each a single pre-token that BPE merges as one word.
Merging is O(n log n) in the word's length (docs/algorithms.md, tokenizer); 1M letters is the size
the reliability issue measured.
"""
import argparse
import glob
import json
import os
import random
import subprocess
import sys
import sysconfig
import tempfile
import time

os.environ["RAYON_NUM_THREADS"] = "1"  # must precede the tokenizers import
os.environ["TOKENIZERS_PARALLELISM"] = "false"

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "tokenizer"))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import make_tokenizer_cases as cases  # noqa: E402  (family regexes and sample texts)

PROSE = [line for line in cases.TRAINING_TEXT.split("\n") if line.strip()] + [
    line for line in cases.TEST_CORPUS if line and len(line) < 200]


def build_corpus(size_bytes, seed=1234):
    """Documents: standard library modules (code, docstrings) and shuffled multilingual prose."""
    rng = random.Random(seed)
    documents, total = [], 0
    files = sorted(glob.glob(os.path.join(sysconfig.get_paths()["stdlib"], "*.py")))
    for path in files:
        if total >= size_bytes * 0.7:
            break
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()[:20000]
        documents.append(text)
        total += len(text.encode())
    while total < size_bytes:
        paragraph = " ".join(rng.choice(PROSE) for _ in range(rng.randint(5, 40)))
        documents.append(paragraph)
        total += len(paragraph.encode())
    rng.shuffle(documents)
    return documents


def train_tokenizer(family, documents, vocab_size):
    if family == "qwen2":
        normalizer = normalizers.NFC()
        splits = [pre_tokenizers.Split(Regex(cases.QWEN2_PATTERN), behavior="isolated")]
    elif family == "llama3":
        normalizer = None
        splits = [pre_tokenizers.Split(Regex(cases.LLAMA3_PATTERN), behavior="isolated")]
    else:
        normalizer = normalizers.Sequence([])
        splits = [pre_tokenizers.Split(Regex(p), behavior="isolated") for p in cases.R1_PATTERNS]
    tok = Tokenizer(models.BPE(ignore_merges=family == "llama3"))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        splits + [pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(documents, trainer)
    return tok


def best_time(fn, repeats):
    best = float("inf")
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def find_binary(explicit):
    if explicit:
        return explicit
    for pattern in ("build/bin/bench_tokenizer", "build/bench/bench_tokenizer", "build*/bin/bench_tokenizer",
                    "build*/bench/bench_tokenizer"):
        found = sorted(glob.glob(os.path.join(ROOT, pattern)))
        if found:
            return found[0]
    sys.exit("bench_tokenizer binary not found: build it and pass --binary")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", help="path of the bench_tokenizer executable")
    parser.add_argument("--family", default="qwen2", choices=["qwen2", "llama3", "deepseek_r1"])
    parser.add_argument("--tokenizer", help="use this tokenizer.json instead of training one")
    parser.add_argument("--vocab-size", type=int, default=32000)
    parser.add_argument("--size-mb", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workdir", help="where to write the corpus and tokenizer (default: a temp dir)")
    parser.add_argument("--long-run", type=int, default=0, metavar="N",
                        help="time two unspaced runs of N letters instead of the corpus")
    args = parser.parse_args()

    binary = find_binary(args.binary)
    workdir = args.workdir or tempfile.mkdtemp(prefix="bench_tokenizer_")
    os.makedirs(workdir, exist_ok=True)
    documents = build_corpus(int(args.size_mb * 1e6))
    training_documents = documents
    if args.long_run > 0:
        rng = random.Random(7)
        documents = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(args.long_run)),
                     "a" * args.long_run]
    corpus_path = os.path.join(workdir, "corpus.jsonl")
    with open(corpus_path, "w", encoding="utf-8") as f:
        for d in documents:
            f.write(json.dumps(d, ensure_ascii=False) + "\n")
    n_bytes = sum(len(d.encode()) for d in documents)

    if args.tokenizer:
        tokenizer_path = args.tokenizer
    else:
        tokenizer_path = os.path.join(workdir, f"{args.family}_tokenizer.json")
        train_tokenizer(args.family, training_documents, args.vocab_size).save(tokenizer_path)
    tok = Tokenizer.from_file(tokenizer_path)

    hf_batch, encodings = best_time(lambda: tok.encode_batch(documents, add_special_tokens=False), args.repeats)
    hf_ids = [e.ids for e in encodings]
    hf_loop, _ = best_time(lambda: [tok.encode(d, add_special_tokens=False) for d in documents], args.repeats)
    n_tokens = sum(len(i) for i in hf_ids)

    ids_path = os.path.join(workdir, "cpp_ids.json")
    out = subprocess.run([binary, tokenizer_path, corpus_path, str(args.repeats), "--dump-ids", ids_path],
                         check=True, capture_output=True, text=True).stdout
    cpp = json.loads(out.strip().splitlines()[-1])
    with open(ids_path) as f:
        cpp_ids = json.load(f)
    mismatched = sum(1 for a, b in zip(hf_ids, cpp_ids) if a != b) + abs(len(hf_ids) - len(cpp_ids))

    hf_best = min(hf_batch, hf_loop)
    result = {
        "tokenizer": tokenizer_path,
        "documents": len(documents),
        "bytes": n_bytes,
        "tokens": n_tokens,
        "hf_encode_batch_seconds": hf_batch,
        "hf_encode_loop_seconds": hf_loop,
        "cpp_seconds": cpp["seconds"],
        "cpp_seconds_with_offsets": cpp["seconds_with_offsets"],
        "hf_tokens_per_s": n_tokens / hf_best,
        "cpp_tokens_per_s": cpp["tokens_per_s"],
        "speedup_vs_hf": hf_best / cpp["seconds"],
        "ids_identical": mismatched == 0,
        "mismatched_documents": mismatched,
    }
    print(json.dumps(result))
    print(f"{n_bytes / 1e6:.2f} MB, {n_tokens} tokens: HF {n_tokens / hf_best / 1e6:.2f} M tok/s, "
          f"C++ {cpp['tokens_per_s'] / 1e6:.2f} M tok/s -> C++ is {hf_best / cpp['seconds']:.2f}x HF "
          f"(single thread); ids identical: {mismatched == 0}", file=sys.stderr)
    return 0 if mismatched == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
