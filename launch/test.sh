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
# ==== BEGIN slurm section (issue 11: scaling studies through a real Slurm) ====================
# A single-node Slurm on localhost (launch/local_slurm.sh); a small strong and a small weak study
# (1 and 2 ranks) go through the real sbatch, are waited for by polling `scontrol show job`, analyzed,
# and the merged table and plots are checked; then tests/slurm.  Slurm is torn down even on failure.
# EPROP_SKIP_SLURM=1 skips it.
if [ "${EPROP_SKIP_SLURM:-0}" != 1 ]; then
    echo "--- scaling studies through a real Slurm ---"
    (
        trap 'bash launch/local_slurm.sh down' EXIT
        bash launch/local_slurm.sh up || exit 1
        eval "$(bash launch/local_slurm.sh env)"
        work=$(mktemp -d)
        for s in ci_strong ci_weak; do
            eprop-dist slurm submit "launch/studies/$s.toml" --out "$work/$s" || exit 1
            eprop-dist slurm wait "$work/$s" --timeout 900 --poll 1 || exit 1
            eprop-dist scaling analyze "$work/$s" || exit 1
            python - "$work/$s" <<'PYEOF' || exit 1
import os, sys
import numpy as np
from eprop_dist.scaling.analyze import PLOTS
from eprop_dist.scaling.results import read_point, read_table
d = sys.argv[1]
t = read_table(os.path.join(d, "scaling.h5"))
c = t["columns"]
assert list(c["ranks"]) == [1, 2], c["ranks"]
assert c["speedup"][0] == 1.0 and np.all(np.isfinite(c["sim_s_per_bio_s"])) and np.all(c["sim_s_per_bio_s"] > 0)
assert np.all(c["spikes"] > 0) and np.all(c["syn_events"] > 0)
for f in ("p000_r1", "p001_r2"):
    p = read_point(os.path.join(d, "results", f + ".h5"))["provenance"]
    assert p["launcher"] == "slurm" and p["slurm_job_id"], p
md = open(os.path.join(d, "scaling.md")).read()
assert md.count("\n| ") == 3, md
for name in PLOTS:
    with open(os.path.join(d, "plots", name), "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n", name
print(f"{t['study']}: merged table ({t['kind']}) and {len(PLOTS)} plots OK")
PYEOF
        done
        rm -rf "$work"
        rc=0
        timeout 1200 python -m pytest -q -p no:cacheprovider tests/slurm || rc=$?
        [ "$rc" -eq 5 ] && echo "no tests collected by: pytest tests/slurm" >&2
        exit "$rc"
    ) || status=1
fi
# ==== END slurm section =====================================================================
exit $status
