"""Options of the steer CLI tests (tests/steer/test_steer_cli.py)."""
import os


def pytest_addoption(parser):
    group = parser.getgroup("thinksteer")
    group.addoption("--thinksteer", default=os.environ.get("THINKSTEER_BIN"), help="thinksteer executable")
    group.addoption("--toy-model", default=os.environ.get("THINKSTEER_TOY_MODEL"), help="shipped toy thinker directory")
