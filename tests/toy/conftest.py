"""Options of the toy-corpus CLI test: --thinksteer PATH (or THINKSTEER_BIN)."""
import os


def pytest_addoption(parser):
    parser.getgroup("thinksteer").addoption("--thinksteer", default=os.environ.get("THINKSTEER_BIN"),
                                            help="thinksteer executable")
