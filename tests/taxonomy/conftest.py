"""Options of the taxonomy sweep tests (tests/taxonomy/test_taxonomy_sweep.py): --thinksteer."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from thinksteer_testing import add_options  # noqa: E402


def pytest_addoption(parser):
    add_options(parser, "thinksteer")
