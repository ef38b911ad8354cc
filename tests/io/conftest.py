"""Options of the vector-file tests (tests/io/test_vectors.py): --vectors-fixture PATH (or THINKSTEER_VECTORS_FIXTURE)."""
import os

import pytest


def pytest_addoption(parser):
    parser.getgroup("thinksteer").addoption("--vectors-fixture", default=os.environ.get("THINKSTEER_VECTORS_FIXTURE"),
                                            help="tests/io/vectors_fixture executable")


@pytest.fixture(scope="module")
def vectors_fixture(request):
    path = request.config.getoption("--vectors-fixture")
    if not path:
        pytest.skip("no --vectors-fixture given")
    return path
