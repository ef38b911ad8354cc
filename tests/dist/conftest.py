"""Options of the distributed end-to-end suite (tests/dist/test_distributed.py)."""
import os


def pytest_addoption(parser):
    group = parser.getgroup("thinksteer")
    group.addoption("--thinksteer", default=os.environ.get("THINKSTEER_BIN"), help="thinksteer executable")
    group.addoption("--demo-model", default=os.environ.get("THINKSTEER_DEMO_MODEL"), help="demo checkpoint (made if absent)")
