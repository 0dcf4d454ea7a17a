#!/usr/bin/env bash
# Install eprop-dist (with test extras and MPI from PyPI) into .venv and run every suite:
#   serial unit + invariance tests, once more with the Cython debug checks on, then the MPI suite
#   under mpiexec -n 2 and -n 3.
# EPROP_MPI=system uses the MPI already on PATH (mpi4py built against its mpicc) instead of the
# PyPI mpich wheel.  EPROP_SKIP_DEBUG=1 skips the debug-build pass.  The nest extra brings the
# nest-simulator wheel whose own e-prop test files tests/nest_suite runs (EPROP_SKIP_NEST_SUITE=1 skips).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install -q --upgrade pip
if [ "${EPROP_MPI:-pypi}" = system ]; then
    python -m pip install -q --no-binary mpi4py mpi4py
    python -m pip install -q -e ".[test,nest]"
else
    python -m pip install -q -e ".[test,mpich,nest]"
fi
MPIEXEC=$(command -v mpiexec)
echo "python: $(command -v python)  mpiexec: $MPIEXEC"

status=0
run_pytest() {   # pytest exit code 5 (no tests collected) is an error here: every suite has tests
    local rc=0
    "$@" || rc=$?
    if [ "$rc" -eq 5 ]; then echo "no tests collected by: $*" >&2; fi
    if [ "$rc" -ne 0 ]; then status=1; fi
}

run_pytest python -m pytest -q -p no:cacheprovider tests/unit tests/invariance
if [ "${EPROP_SKIP_DEBUG:-0}" != 1 ]; then
    echo "--- debug build (EPROP_CYTHON_DEBUG=1: bounds/wraparound/initialisation checks) ---"
    EPROP_CYTHON_DEBUG=1 python setup.py -q build_ext --inplace --force >/dev/null
    run_pytest python -m pytest -q -p no:cacheprovider -x tests/unit
    python setup.py -q build_ext --inplace --force >/dev/null
fi
if [ "${EPROP_SKIP_NEST_SUITE:-0}" != 1 ]; then
    echo "--- NEST 3.10's own e-prop test files, unchanged (tests/nest_suite), 1 rank and 2 ranks ---"
    run_pytest timeout 1200 python tests/nest_suite/run_nest_suite.py
    run_pytest timeout 1200 "$MPIEXEC" -n 2 python tests/nest_suite/run_nest_suite.py
fi
for n in 2 3; do
    echo "--- MPI suite on $n ranks ---"
    run_pytest timeout 1500 "$MPIEXEC" -n "$n" python -m pytest -q -p no:cacheprovider --with-mpi tests/mpi
done
exit $status
