"""What the table-and-figures subcommands (basevec, hybrid, thinkedit) share: the run directory check, and
printing the table then the files the figures were written to."""
from __future__ import annotations

import pathlib
from collections.abc import Callable

from .schema import PathLike


def run_directory(run_dir: PathLike) -> pathlib.Path:
    """The run directory as a path; FileNotFoundError when it is not a directory."""
    run = pathlib.Path(run_dir)
    if not run.is_dir():
        raise FileNotFoundError(f"{run}: not a directory")
    return run


def print_table_and_draw(table: str, draw: Callable[[pathlib.Path, str, list[pathlib.Path]], None], run: pathlib.Path,
                         out: PathLike | None, fmt: str) -> int:
    """Prints `table`, calls draw(out_dir, fmt, written) with out_dir = OUT or RUN/figures, prints each file written;
    returns 0."""
    print(table)
    written: list[pathlib.Path] = []
    draw(pathlib.Path(out) if out is not None else run / "figures", fmt, written)
    if written:
        print("")
        for path in written:
            print(f"wrote {path}")
    return 0
