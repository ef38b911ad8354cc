#!/usr/bin/env python3
"""The include layering of src/: a folder is a layer, and a file may include only its own folder and
the folders below it.

    core <- tokenizer <- model <- dist <- io <- {vectors, steer, toy, taxonomy, basevec, thinkedit, directions} <- hybrid <- annotate <- artifacts
    <- stages <- app

vectors, steer, toy, taxonomy, basevec, thinkedit and directions are peers: none of them includes another. hybrid (the lockstep of two
models) applies basevec's shift and coefficient MLP. annotate sits above them: its toy
annotator recovers the toy world's planted phrasings (toy/phrasings.h), and its factory builds every
annotator. Every `#include "x/..."` of
every file under src/ is checked (includes without a folder, such as generated headers, and folders
that are not in src/, such as third-party paths, are not layers). Prints each crossing as
`file:line: <folder> includes <folder>/...` and exits 1 when there is any; a folder of src/ missing
from LAYERS is an error too, so that a new folder gets a place in the order.

Usage: check_layers.py [--src DIR]   (default: the src/ beside tests/)
"""
import argparse
import pathlib
import re
import sys

# Bottom to top; the folders of one entry are peers.
LAYERS = [
    {"core"},
    {"tokenizer"},
    {"model"},
    {"dist"},
    {"io"},
    {"vectors", "steer", "toy", "taxonomy", "basevec", "thinkedit", "directions"},
    {"hybrid"},
    {"annotate"},
    {"artifacts"},
    {"stages"},
    {"app"},
]
RANK = {folder: rank for rank, folders in enumerate(LAYERS) for folder in folders}
SOURCE_SUFFIXES = {".h", ".hpp", ".cpp", ".cc", ".inc"}
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"/]+)/[^"]*"')


def crossing(folder, target):
    """Why `folder` may not include `target`, or None when it may."""
    if target == folder or RANK[target] < RANK[folder]:
        return None
    if RANK[target] == RANK[folder]:
        peers = ", ".join(sorted(LAYERS[RANK[folder]]))
        return f"{folder} and {target} are peers ({peers}) and may not include each other"
    return f"{target} is above {folder} in the layer order"


def check(src):
    problems = []
    for folder_path in sorted(p for p in src.iterdir() if p.is_dir()):
        folder = folder_path.name
        if folder not in RANK:
            problems.append(f"{folder_path}: folder '{folder}' is not in the layer order (tests/layering/check_layers.py LAYERS)")
            continue
        for path in sorted(folder_path.rglob("*")):
            if path.suffix not in SOURCE_SUFFIXES or not path.is_file():
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
                match = INCLUDE.match(line)
                if not match or match.group(1) not in RANK:
                    continue
                why = crossing(folder, match.group(1))
                if why:
                    included = line.strip().split('"')[1]
                    problems.append(f"{path.relative_to(src.parent)}:{number}: {folder} includes {included}: {why}")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=pathlib.Path, default=pathlib.Path(__file__).resolve().parents[2] / "src")
    args = parser.parse_args()
    if not args.src.is_dir():
        print(f"check_layers: {args.src} is not a directory", file=sys.stderr)
        return 2
    problems = check(args.src.resolve())
    for p in problems:
        print(p)
    if problems:
        print(f"check_layers: {len(problems)} include(s) cross the layer order", file=sys.stderr)
        return 1
    print("check_layers: every include of src/ respects the layer order")
    return 0


if __name__ == "__main__":
    sys.exit(main())
