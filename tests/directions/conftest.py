"""Options of the reasoning-direction CLI tests (tests/directions/test_directions_cli.py): --thinksteer, --toy-model."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from thinksteer_testing import add_options  # noqa: E402


def pytest_addoption(parser):
    add_options(parser, "thinksteer", "toy-model")
