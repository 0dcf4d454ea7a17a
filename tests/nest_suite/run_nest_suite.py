"""Run NEST 3.10's own e-prop test files, unchanged, against eprop-dist.

The two files are taken at run time from the installed ``nest-simulator`` wheel (extra ``nest``:
``pip install -e ".[nest]"``); they are never copied into the project.  They are copied into a
temporary folder beside a ``conftest.py`` that only maps ``sys.modules["nest"] = eprop_dist``, and
pytest runs there in this process (so under ``mpiexec -n N`` every rank runs the same tests).

    python tests/nest_suite/run_nest_suite.py            # 1 rank
    mpiexec -n 2 python tests/nest_suite/run_nest_suite.py

Exit status: pytest's; a missing wheel or test file, or a run that collects no test, is a failure.
Extra arguments are passed to pytest (e.g. ``-k regression``).
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile

NEST_FILES = ("test_eprop_plasticity.py", "test_eprop_bsshslm_2020_plasticity.py")
SUBDIR = os.path.join("share", "nest", "testsuite", "pytests", "synapses")
HERE = os.path.dirname(os.path.abspath(__file__))


def nest_test_files():
    """Paths of NEST's two e-prop test files in the installed wheel, found without importing nest."""
    spec = importlib.util.find_spec("nest")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("run_nest_suite: the nest-simulator wheel is not installed; "
                         "install it with: pip install -e \".[nest]\" (nest-simulator==3.10.0)")
    root = list(spec.submodule_search_locations)[0]
    paths = [os.path.join(root, SUBDIR, f) for f in NEST_FILES]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise SystemExit(f"run_nest_suite: NEST test file(s) not found in the installed wheel: {missing}")
    return paths


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    # pytest parametrises over set(nest.node_models): the collection order depends on the string hash
    # seed, and every MPI rank must run the tests in the same order.  Fix it before anything is imported.
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable, os.path.abspath(__file__)] + argv)
    # NEST's files read recorder events and connections as one process would see them; on several
    # ranks eprop-dist's documented global read scope (collective reads) gives every rank that view.
    # On one rank 'global' and 'local' are the same.
    os.environ.setdefault("EPROP_DIST_READ_SCOPE", "global")
    files = nest_test_files()
    import pytest

    tmp = tempfile.mkdtemp(prefix="eprop_nest_suite_")
    try:
        for f in files:
            shutil.copy(f, tmp)
        shutil.copy(os.path.join(HERE, "conftest_template.py"), os.path.join(tmp, "conftest.py"))
        with open(os.path.join(tmp, "pytest.ini"), "w") as fh:      # keep the project's pytest settings out
            fh.write("[pytest]\n")
        rc = pytest.main(["-q", "-p", "no:cacheprovider", "--rootdir", tmp, "-c", os.path.join(tmp, "pytest.ini"),
                          tmp] + argv)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if rc == 5:
        print("run_nest_suite: no test was collected", file=sys.stderr)
    return int(rc)


if __name__ == "__main__":
    sys.exit(main())
