#!/usr/bin/env python3
"""Reference cases for the C++ tokenizer, produced with HF `tokenizers`.

For every tokenizer family (the exact normalizer / pre-tokenizer / post-processor / decoder
settings of Qwen2, Llama-3, DeepSeek-R1-Distill, plus families exercising the other supported
components), trains a small byte-level BPE on a fixed corpus, adds the family's added tokens,
saves DIR/<family>/tokenizer.json and encodes a fixed test corpus with HF, writing the expected
ids, code point offsets and decodings to DIR/<family>/cases.json. DIR/families.json lists them.

Usage: make_tokenizer_cases.py --out DIR
"""
import argparse
import json
import os
import sys

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers  # noqa: E402

QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
R1_PATTERNS = [
    r"\p{N}{1,3}",
    r"[一-龥぀-ゟ゠-ヿ]+",
    r"[!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+"
    r"| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
]

BOS_R1, EOS_R1 = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"

TRAINING_TEXT = """
The quick brown fox jumps over the lazy dog. I'd've thought it's John's book; they'll see, we're here.
Tokenization splits text into tokens: words, numbers like 1234567 or 3.14159, and punctuation!!!
In 2024, about 1,000,000 people visited https://example.com/path?q=1&r=2 and wrote to info@example.org.
Café, naïve, résumé, façade, coöperate, São Paulo, Zürich, Ångström, Łódź, Dvořák, Ærøskøbing.
我爱自然语言处理。今天天气很好！机器学习和深度学习正在改变世界。中文分词是一个重要的问题。
ひらがなとカタカナ、そして漢字。東京は日本の首都です。ありがとうございます。カタカナのテキスト。
안녕하세요 세계. 한국어 텍스트도 포함합니다. Привет, мир! Как дела? Γειά σου κόσμε. مرحبا بالعالم. שָׁלוֹם עוֹלָם.
नमस्ते दुनिया। สวัสดีชาวโลก Emoji: 🤗 😀 ❤️ 👍🏽 👨‍👩‍👧‍👦 🇯🇵 🏳️‍🌈 ✨🔥🚀
def fibonacci(n: int) -> int:
    if n < 2:
        return n
    return fibonacci(n - 1) + fibonacci(n - 2)

for i in range(10):
    print(f"{i}: {fibonacci(i)}")

#include <stdio.h>
int main(int argc, char** argv) {
    for (int i = 0; i < argc; ++i) {
        printf("%d: %s\\n", i, argv[i]);
    }
    return 0;
}
Let me think step by step. First, 12 + 30 = 42. Then 42 * 2 = 84. So the answer is 84.
Wait, maybe I should double-check: 84 / 2 = 42. Yes. Therefore the final answer is \\boxed{84}.
"""

TEST_CORPUS = [
    "",
    "Hello world",
    "Hello, world! How are you today?",
    "I'd've thought it's John's; they'll say we're done, I'm sure you've seen.",
    "IT'S LOUD, WE'LL SEE. It'S mIxEd 'S 'ſ",
    "don't stop believin' 'tis 'twas",
    "café naïve résumé façade Zürich Ångström",
    "cafe\u0301 nai\u0308ve re\u0301sume\u0301 e\u0301\u0301 a\u0316\u0301 x\u0302\u0323 \u00e2\u0323 \u212b \u2126\u0301",
    "\u1100\u1161\u11a8 \uac00 \u0958 \u0f73 \u0344 q\u0307\u0323 \u1e0b\u0323 \u1e9b\u0323",
    "\u0301abc \u0301 \u0300\u0301x",
    "\ufb01x \u00bd \u3300 \uff76\uff80\uff76\uff85 \u00aa\u00b2 x\u00a0y",
    "我爱自然语言处理。今天天气很好！",
    "ひらがなとカタカナ、漢字。東京は日本の首都です。ｶﾀｶﾅ",
    "안녕하세요 세계",
    "Привет, мир! Γειά σου κόσμε.",
    "مرحبا بالعالم שָׁלוֹם עוֹלָם",
    "नमस्ते दुनिया। สวัสดีชาวโลก",
    "I ❤️ 🤗! 👨‍👩‍👧‍👦 🏳️‍🌈 🇯🇵🇺🇸 👍🏽 ✨🔥🚀",
    "1234567 and 3.14159 and 1,000,000 and 2024-01-31",
    "²³ ½ ٣٤٥ ０１２ ⅧⅨ ①②",
    "abc123def４５６ x1y22z333w4444",
    "a  b   c\t\td\n\ne \r\n f   \n  \n",
    "   leading spaces",
    "trailing spaces   ",
    "\n\n\n",
    " ",
    "\t",
    "\r\n\r\n",
    "line\u2028sep para\u2029sep\u00a0nbsp\u3000ideo\u0085nel\u180emongol\u200bzwsp\ufeffbom",
    "\x00\x01\x1f\x7f control\x0b\x0c",
    "def fibonacci(n: int) -> int:\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n",
    "#include <stdio.h>\nint main(void) {\n\tprintf(\"%d\\n\", 42);\n\treturn 0;\n}\n",
    "∀x∈ℝ: x²≥0 → √x ≤ ∞; α+β=γ",
    "!!!???...,,,;;; --- ___ *** ### @@@ ((( ))) [[[ ]]] {{{ }}}",
    "https://example.com/path?q=1&r=2#frag info@example.org",
    "a [MASK] b [MASK]c\t[MASK]\t d",
    "x<sw>y <sw> z <sw>",
    "ÜNÏ ünï u\u0308nı u\u0308ni\u0308 xünïx",
    "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
    BOS_R1 + "You are helpful.<｜User｜>What is 2+2?<｜Assistant｜><think>\nOkay, 2+2=4.\n</think>\n\n4" + EOS_R1,
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
    "<think><think></think></think>",
    "<<think>> <|im_start <｜User <|im_end|><|im_end|>",
    "text<|endoftext|>more <s> </s> <unk>",
    "a" * 300,
    " " * 300 + "x",
    "ab" * 150 + " " + "🤗" * 40,
    "Let me think step by step. First, 12 + 30 = 42. Then 42 * 2 = 84. So the answer is \\boxed{84}.",
    # Long unspaced runs: one pre-token of 20k symbols, merged by the O(n log n) heap path (README "Reliability").
    "".join("abcdefghijklmnopqrstuvwxyz"[(i * 7919 + i * i * 104729) % 26] for i in range(20000)),
    "a" * 20001,
    "ab" * 5000 + "ba" * 5000,
]


# Building blocks of the seeded random lines: every feature above, mixed at random.
RANDOM_POOL = list("aAbBzZ09 _-.,;:!?'\"()[]{}<>|/\\@#$%^&*+=~`") + [
    " ", "  ", "\t", "\n", "\r\n", "\r", "\u00a0", "\u3000", "\u2028", "\x85", "\u180e", "\u200b", "\x0b", "\x1c",
    "é", "e\u0301", "\u0301", "\u0323", "\u0302", "\u0316", "ǘ", "Å", "\u212b", "ﬁ", "½", "²", "㌀", "ｶ", "ﾞ", "가",
    "\u1100", "\u1161", "\u11a8", "我", "爱", "龥", "ひ", "カ", "ー", "、", "。", "！", "🤗", "👍", "🏽", "\u200d", "👨",
    "🇯", "🇵", "❤", "\ufe0f", "ſ", "K", "ß", "İ", "ı", "'s", "'S", "'ll", "'VE", "'d", "123", "4567", "٣", "०", "①", "Ⅷ",
    "x", "xx", "ünï", "u\u0308nı", "[MASK]", " [MASK] ", "<sw>", " <sw> ", "<think>", "</think>", "<|im_start|>",
    "<|im_end|>", "<|endoftext|>", "<｜User｜>", "<｜Assistant｜>", BOS_R1, "<|begin_of_text|>", "<|eot_id|>", "<s>",
    "</s>", "the", " the", "Hello", " world", "def", "return", "ing", "東京", "Привет", "مرحبا", "नमस्ते", "\U0001F600",
    "\U00010348", "\ufffd", "\x00", "\x7f", "\u1ac1", "\U0001FADA", "\U00031350", "\u1c89", "\U000107AF"]


def random_lines(count=300, seed=20240531):
    import random
    rng = random.Random(seed)
    blocks = [(0x80, 0x3000), (0x300, 0x370), (0x1100, 0x1200), (0xAC00, 0xD7A3), (0x1F300, 0x1FAFF), (0x20, 0x10FFFF)]
    lines = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 40)):
            if rng.random() < 0.15:
                cp = rng.randint(*rng.choice(blocks))
                parts.append(chr(0x41 if 0xD800 <= cp <= 0xDFFF else cp))
            else:
                parts.append(rng.choice(RANDOM_POOL))
        lines.append("".join(parts))
    return lines


def long_line():
    parts = []
    i = 0
    while sum(len(p) for p in parts) < 6000:
        parts.append(TEST_CORPUS[3 + (i * 7) % (len(TEST_CORPUS) - 10)])
        parts.append(str(i * 7919))
        i += 1
    return " ".join(parts)


def training_corpus():
    lines = [line for line in TRAINING_TEXT.split("\n") if line]
    return lines * 20


def train(normalizer, pre_tokenizer, vocab_size=1500, **bpe_kwargs):
    tok = Tokenizer(models.BPE(**bpe_kwargs))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    tok.train_from_iterator(training_corpus(), trainer)
    return tok


def edit(tok, fn):
    """Applies fn to the tokenizer's JSON and reloads it."""
    data = json.loads(tok.to_str())
    fn(data)
    return Tokenizer.from_str(json.dumps(data, ensure_ascii=False))


def byte_level_string(text):
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    table = dict(zip(bs, cs))
    return "".join(chr(table[b]) for b in text.encode("utf-8"))


def add_tokens(tok, specials, others):
    tok.add_special_tokens([AddedToken(c, special=True, normalized=False) for c in specials])
    for t in others:
        tok.add_tokens([t])


def template(tok, single):
    names = [w for w in single.split() if not w.startswith("$")]
    return processors.TemplateProcessing(single=single, special_tokens=[(n, tok.token_to_id(n)) for n in names])


def make_qwen2():
    tok = train(normalizers.NFC(), pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)]))
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    add_tokens(tok, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
               [AddedToken("<think>", special=False, normalized=False), AddedToken("</think>", special=False, normalized=False),
                AddedToken("ünï", special=False, normalized=True)])
    return tok


def make_llama3():
    tok = train(None, pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)]))
    extra = ["Ġthought", "Ġbelievin", "ĠHello", "Hello", "Ġworld", "ĠĠĠ", "123", "456", "ĠJohn", "ĠĠĠĠĠĠĠ",
             byte_level_string(" 東京"), byte_level_string("🤗"), byte_level_string(" naïve")]

    def ignore_merges(data):
        data["model"]["ignore_merges"] = True
        vocab = data["model"]["vocab"]
        next_id = max(vocab.values()) + 1
        for w in extra:
            if w not in vocab:
                vocab[w] = next_id
                next_id += 1
    tok = edit(tok, ignore_merges)
    add_tokens(tok, ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|start_header_id|>",
                     "<|end_header_id|>", "<|eot_id|>"], [])
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True),
        template(tok, "<|begin_of_text|> $A")])
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    return tok


def make_deepseek_r1():
    tok = train(normalizers.Sequence([]), pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(p), behavior="isolated", invert=False) for p in R1_PATTERNS] +
        [pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)]))
    add_tokens(tok, [BOS_R1, EOS_R1, "<｜User｜>", "<｜Assistant｜>"],
               [AddedToken("<think>", special=False, normalized=False), AddedToken("</think>", special=False, normalized=False)])
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        template(tok, BOS_R1 + " $A")])
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    return tok


def make_digits():
    tok = train(None, pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)]))
    tok.post_processor = processors.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    add_tokens(tok, ["<s>", "</s>"],
               [AddedToken("[MASK]", special=False, normalized=False, lstrip=True, rstrip=True),
                AddedToken("<sw>", special=False, normalized=False, single_word=True),
                AddedToken("<think>", special=False, normalized=True)])
    return tok


def make_misc():
    """Other supported components: NFKC, Split behaviors, invert, String patterns, Contiguous digits,
    a template before ByteLevel trimming, normalized added tokens with lstrip/rstrip."""
    tok = train(normalizers.Sequence([normalizers.NFKC(), normalizers.NFC()]), pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"[,;]"), behavior="merged_with_previous"),
        pre_tokenizers.Split(" ", behavior="merged_with_next"),
        pre_tokenizers.Split(Regex(r"x+"), behavior="removed"),
        pre_tokenizers.Split(Regex(r"[.!?]+"), behavior="isolated", invert=True),
        pre_tokenizers.Split(Regex(r"\s+"), behavior="contiguous"),
        pre_tokenizers.Digits(individual_digits=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]))
    add_tokens(tok, ["<s>", "</s>"],
               [AddedToken("[MASK]", special=False, normalized=True, lstrip=True, rstrip=False),
                AddedToken("<sw>", special=True, normalized=True, rstrip=True, single_word=True),
                AddedToken("ünï", special=False, normalized=True)])
    tok.post_processor = processors.Sequence([
        template(tok, "<s> $A </s>"),
        processors.ByteLevel(add_prefix_space=False, trim_offsets=True)])
    tok.decoder = decoders.Sequence([decoders.ByteLevel()])
    return tok


def make_charbpe():
    """BPE on characters (no byte-level): unknown characters become a fused <unk>, no decoder."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True))
    tok.normalizer = normalizers.NFD()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"\s+"), behavior="removed"),
        pre_tokenizers.Split(Regex(r"[\p{P}\p{S}]"), behavior="isolated")])
    trainer = trainers.BpeTrainer(vocab_size=600, min_frequency=2, show_progress=False, limit_alphabet=60,
                                  special_tokens=["<unk>"])
    tok.train_from_iterator(training_corpus(), trainer)
    add_tokens(tok, ["<s>"], [])
    return tok


def make_charbpe_nounk():
    """Same without unk_token (unknown characters are dropped and shift later offsets, like HF),
    normalized with NFKD."""
    def no_unk(data):
        data["model"]["unk_token"] = None
        data["model"]["fuse_unk"] = False
        data["normalizer"] = {"type": "NFKD"}
    return edit(make_charbpe(), no_unk)


# Families saved with merges as "a b" strings (the format of Qwen2's released tokenizer.json).
LEGACY_MERGES = {"qwen2"}

FAMILIES = {
    "qwen2": make_qwen2,
    "llama3": make_llama3,
    "deepseek_r1": make_deepseek_r1,
    "digits": make_digits,
    "misc": make_misc,
    "charbpe": make_charbpe,
    "charbpe_nounk": make_charbpe_nounk,
}


def cases_for(tok):
    cases = []
    for text in TEST_CORPUS + [long_line()] + random_lines():
        plain = tok.encode(text, add_special_tokens=False)
        special = tok.encode(text, add_special_tokens=True)
        cases.append({
            "text": text,
            "ids": plain.ids,
            "offsets": [list(o) for o in plain.offsets],
            "ids_special": special.ids,
            "offsets_special": [list(o) for o in special.offsets],
            "decoded": tok.decode(plain.ids, skip_special_tokens=False),
            "decoded_special": tok.decode(special.ids, skip_special_tokens=False),
            "decoded_special_skip": tok.decode(special.ids, skip_special_tokens=True),
            # Token by token (streaming): partial UTF-8 sequences decode to U+FFFD.
            "decoded_each": [tok.decode([i], skip_special_tokens=False) for i in plain.ids[:64]],
        })
    return cases


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="output directory")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    import tokenizers
    manifest = {"tokenizers_version": tokenizers.__version__, "families": []}
    for name, make in FAMILIES.items():
        tok = make()
        directory = os.path.join(args.out, name)
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, "tokenizer.json")
        tok.save(path)
        if name in LEGACY_MERGES:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
            data["model"]["merges"] = [" ".join(m) for m in data["model"]["merges"]]
            with open(path, "w", encoding="utf-8") as f:
                json.dump(data, f, ensure_ascii=False, indent=2)
        tok = Tokenizer.from_file(path)  # expectations come from the saved file, as C++ loads it
        with open(os.path.join(directory, "cases.json"), "w", encoding="utf-8") as f:
            json.dump({"family": name, "cases": cases_for(tok)}, f, ensure_ascii=False)
        manifest["families"].append(name)
    with open(os.path.join(args.out, "families.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
    print(f"wrote {len(manifest['families'])} tokenizer families to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
