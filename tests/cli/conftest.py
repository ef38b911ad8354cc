"""Options of the bad-input suite (tests/cli/test_bad_input.py).

Every option also reads an environment variable, so the suite runs the same from CTest, from
tests/cli/run_asan.sh and by hand:

  --thinksteer PATH     the main executable            (THINKSTEER_BIN)
  --check-binary PATH   the thinksteer-check validator  (THINKSTEER_CHECK_BIN)
  --reference DIR       tests/reference output          (THINKSTEER_REFERENCE_DIR)
  --only-check          run thinksteer-check only (the torch-free ASan build has no `thinksteer`)
"""
import os


def pytest_addoption(parser):
    group = parser.getgroup("thinksteer")
    group.addoption("--thinksteer", default=os.environ.get("THINKSTEER_BIN"), help="thinksteer executable")
    group.addoption("--check-binary", default=os.environ.get("THINKSTEER_CHECK_BIN"), help="thinksteer-check executable")
    group.addoption("--reference", default=os.environ.get("THINKSTEER_REFERENCE_DIR"),
                    help="directory written by tests/reference/make_reference.py")
    group.addoption("--demo-model", default=os.environ.get("THINKSTEER_DEMO_MODEL"),
                    help="where test_generate.py makes the demo checkpoint (default: a temp dir)")
    group.addoption("--only-check", action="store_true", default=os.environ.get("THINKSTEER_ONLY_CHECK") == "1",
                    help="test thinksteer-check only")

