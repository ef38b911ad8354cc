"""Options and fixtures of the toy CLI tests: --thinksteer PATH (or THINKSTEER_BIN)."""
import os

import pytest


def pytest_addoption(parser):
    parser.getgroup("thinksteer").addoption("--thinksteer", default=os.environ.get("THINKSTEER_BIN"),
                                            help="thinksteer executable")


@pytest.fixture(scope="module")
def binary(request):
    path = request.config.getoption("--thinksteer")
    if not path:
        pytest.skip("no --thinksteer given")
    return path
