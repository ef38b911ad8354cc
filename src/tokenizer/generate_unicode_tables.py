#!/usr/bin/env python3
"""Generates unicode_tables.inc: where HF tokenizers' Unicode data differs from this build's libraries.

HF tokenizers matches regexes with Oniguruma (Unicode 16 in tokenizers 0.23) and normalizes with the
`unicode_normalization_alignments` crate (about Unicode 9). We use PCRE2 10.42 (Unicode 14) and
utf8proc 2.8 (Unicode 15). Measured with HF itself as the oracle, this writes:
  kRecentCategories         code points PCRE2 leaves unassigned but Oniguruma assigns a general
                            category (added to \\p{..} classes by regex.cpp)
  kLegacyStarters           code points with a combining class in utf8proc that HF treats as 0
  kLegacyNoCanonical        code points whose canonical decomposition HF does not know
  kLegacyNoCompat           code points whose compatibility decomposition HF does not know

Run with the project venv (tokenizers installed) on a machine with libpcre2-8 and libutf8proc:
  .venv/bin/python src/tokenizer/generate_unicode_tables.py > src/tokenizer/unicode_tables.inc
"""
import ctypes
import sys

from tokenizers import Regex, normalizers, pre_tokenizers

CATEGORIES = ["Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf",
              "Po", "Sm", "Sc", "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Co"]


def code_points():
    return [cp for cp in range(0x110000) if not 0xD800 <= cp < 0xE000]


def pcre2_unassigned(cps):
    pcre = ctypes.CDLL("libpcre2-8.so.0")
    pcre.pcre2_compile_8.restype = ctypes.c_void_p
    pcre.pcre2_compile_8.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint32, ctypes.POINTER(ctypes.c_int),
                                     ctypes.POINTER(ctypes.c_size_t), ctypes.c_void_p]
    pcre.pcre2_match_data_create_8.restype = ctypes.c_void_p
    pcre.pcre2_match_data_create_8.argtypes = [ctypes.c_uint32, ctypes.c_void_p]
    pcre.pcre2_match_8.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_uint32,
                                   ctypes.c_void_p, ctypes.c_void_p]
    err, off = ctypes.c_int(), ctypes.c_size_t()
    pattern = rb"^\p{Cn}$"
    code = pcre.pcre2_compile_8(pattern, len(pattern), 0x00080000 | 0x00020000, ctypes.byref(err), ctypes.byref(off), None)  # UTF | UCP
    data = pcre.pcre2_match_data_create_8(1, None)
    out = []
    for cp in cps:
        s = chr(cp).encode()
        if pcre.pcre2_match_8(code, s, len(s), 0, 0, data, None) > 0:
            out.append(cp)
    return out


def oniguruma_categories(cps):
    """General category of each code point according to HF's Oniguruma (absent: unassigned)."""
    text = "".join(chr(cp) for cp in cps)
    result = {}
    for cat in CATEGORIES:
        split = pre_tokenizers.Split(Regex(r"\p{" + cat + "}"), behavior="removed", invert=True)
        for _, (start, _) in split.pre_tokenize_str(text):
            result[cps[start]] = cat
    return result


def utf8proc():
    lib = ctypes.CDLL("libutf8proc.so.2")

    class Prop(ctypes.Structure):
        _fields_ = [("category", ctypes.c_int16), ("combining_class", ctypes.c_int16)]
    lib.utf8proc_get_property.restype = ctypes.POINTER(Prop)
    libc = ctypes.CDLL("libc.so.6")
    libc.free.argtypes = [ctypes.c_void_p]
    for name in ("utf8proc_NFD", "utf8proc_NFKD"):
        getattr(lib, name).restype = ctypes.c_void_p
        getattr(lib, name).argtypes = [ctypes.c_char_p]

    def normalize(fn, s):
        p = fn(s.encode())
        r = ctypes.string_at(p).decode()
        libc.free(p)
        return r
    return (lambda cp: lib.utf8proc_get_property(cp).contents.combining_class,
            lambda s: normalize(lib.utf8proc_NFD, s), lambda s: normalize(lib.utf8proc_NFKD, s))


def legacy_normalization(cps):
    ccc, nfd, nfkd = utf8proc()
    hf_nfd, hf_nfkd = normalizers.NFD(), normalizers.NFKD()
    starters, no_canonical, no_compat = [], [], []
    for cp in cps:
        if cp < 0xA0:
            continue
        c = chr(cp)
        k = ccc(cp)
        if k:
            probe = "x\u0301" + c if k < 230 else "x" + c + "\u0316"  # reorders iff HF knows the class
            if hf_nfd.normalize_str(probe) == probe:
                starters.append(cp)
        d = nfd(c)
        if d != c and hf_nfd.normalize_str(c) == c:
            no_canonical.append(cp)
        kd = nfkd(c)
        if kd != d and hf_nfkd.normalize_str(c) in (c, d):
            no_compat.append(cp)
    return starters, no_canonical, no_compat


def ranges(cps):
    out = []
    for cp in sorted(cps):
        if out and out[-1][1] == cp - 1:
            out[-1][1] = cp
        else:
            out.append([cp, cp])
    return out


def category_ranges(categories):
    out = []
    for cp in sorted(categories):
        cat = categories[cp]
        if out and out[-1][1] == cp - 1 and out[-1][2] == cat:
            out[-1][1] = cp
        else:
            out.append([cp, cp, cat])
    return out


def main():
    cps = code_points()
    unassigned = pcre2_unassigned(cps)
    recent = oniguruma_categories(unassigned)
    starters, no_canonical, no_compat = legacy_normalization(cps)
    w = sys.stdout.write
    w("// Generated by generate_unicode_tables.py from HF tokenizers, PCRE2 and utf8proc; do not edit.\n")
    w("// Where HF's Unicode data (Oniguruma for regexes, an old normalization crate) differs from ours.\n")
    w("// clang-format off\n")
    w("static constexpr CategoryRange kRecentCategories[] = {\n")
    for lo, hi, cat in category_ranges(recent):
        w(f"  {{0x{lo:X}, 0x{hi:X}, \"{cat}\"}},\n")
    w("};\n")
    for name, values in (("kLegacyStarters", starters), ("kLegacyNoCanonical", no_canonical), ("kLegacyNoCompat", no_compat)):
        w(f"static constexpr CodePointRange {name}[] = {{\n")
        for lo, hi in ranges(values):
            w(f"  {{0x{lo:X}, 0x{hi:X}}},\n")
        w("};\n")
    w("// clang-format on\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
