"""Options of the vectors CLI tests (tests/vectors/test_vectors_cli.py)."""
import os


def pytest_addoption(parser):
    group = parser.getgroup("thinksteer")
    group.addoption("--thinksteer", default=os.environ.get("THINKSTEER_BIN"), help="thinksteer executable")
    group.addoption("--demo-model", default=os.environ.get("THINKSTEER_DEMO_MODEL"), help="demo checkpoint (made if absent)")
    group.addoption("--toy-model", default=os.environ.get("THINKSTEER_TOY_MODEL"),
                    help="shipped toy thinker directory (the planted-truth test is skipped if absent)")
