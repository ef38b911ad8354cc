"""Options of the Slurm suite (tests/slurm/test_slurm_sweep.py): --thinksteer PATH (or THINKSTEER_BIN;
default build/bin/thinksteer). The outcome of each test phase is kept on the item so that fixtures can
print the cluster's logs when a test failed."""
import os

import pytest


def pytest_addoption(parser):
    parser.getgroup("thinksteer").addoption("--thinksteer", default=os.environ.get("THINKSTEER_BIN"),
                                            help="thinksteer executable (default: build/bin/thinksteer)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)
