#!/usr/bin/env bash
# Install eprop-dist and run every suite:
#   serial unit + invariance tests, once more with the Cython debug checks on, then the MPI suite
#   under 2 and 3 ranks -- with the PyPI mpich wheel (.venv), and then once more with Debian's Open MPI
#   (installed with apt-get when missing; mpi4py built against it in .venv-openmpi), plus a real
#   cross-launch check (each mpi4py started by the other MPI's launcher must stop with an error).
# EPROP_MPI=system instead uses only the MPI already on PATH (mpi4py built against its mpicc, in
#   .venv-system) for every suite.
# The nest extra brings the nest-simulator wheel whose own e-prop test files tests/nest_suite runs
#   (EPROP_SKIP_NEST_SUITE=1 skips); a single-node Slurm on localhost runs two small scaling studies
#   through the real sbatch (EPROP_SKIP_SLURM=1 skips).
# EPROP_SKIP_DEBUG=1 skips the debug-build pass.  Launcher flags (Open MPI: --oversubscribe, and
#   --allow-run-as-root as root) come from `python -m eprop_dist.mpirun -n N`; EPROP_MPIEXEC overrides
#   the launcher command.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
MODE=${EPROP_MPI:-pypi}
case "$MODE" in pypi|system) ;; *) echo "EPROP_MPI must be 'pypi' or 'system', got '$MODE'" >&2; exit 2;; esac

status=0
SUMMARY=()
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT

run_pytest() {   # run_pytest LABEL CMD...; pytest exit code 5 (no tests collected) is an error here
    local label=$1 rc=0 counts
    shift
    "$@" 2>&1 | tee "$LOG" || rc=${PIPESTATUS[0]}
    if [ "$rc" -eq 5 ]; then echo "no tests collected by: $*" >&2; fi
    if [ "$rc" -ne 0 ]; then status=1; fi
    local w='(passed|failed|errors?|skipped|deselected|xfailed|xpassed|warnings?)'
    counts=$(sed 's/\x1b\[[0-9;]*m//g' "$LOG" | grep -aoE "[0-9]+ $w(, [0-9]+ $w)* in " | sed 's/ in $//' |
             sort | uniq -c | awk '{c=$1; $1=""; printf "%s%s (x%s)", sep, substr($0,2), c; sep="; "}' || true)
    SUMMARY+=("$(printf '%-40s rc=%-3s %s' "$label" "$rc" "${counts:-no summary line}")")
}

make_venv() {    # make_venv DIR: create and activate
    [ -x "$1/bin/python" ] || "$PY" -m venv "$1"
    # shellcheck disable=SC1091
    . "$1/bin/activate"
    python -m pip install -q --upgrade pip
}

build_mpi4py() { # build_mpi4py MPICC: mpi4py from source against that MPI; rebuilt when it does not match
    if ! python -c "import mpi4py" 2>/dev/null; then
        MPICC="$1" python -m pip install -q --no-binary mpi4py mpi4py
    fi
    python -m pip install -q -e ".[test]"
    if ! python -m eprop_dist.mpirun --describe; then
        echo "mpi4py does not match $1: rebuilding it without the pip cache" >&2
        MPICC="$1" python -m pip install -q --no-binary mpi4py --no-cache-dir --force-reinstall mpi4py
        python -m eprop_dist.mpirun --describe
    fi
}

mpi_suite() {    # mpi_suite LABEL: tests/mpi under 2 and 3 ranks with the active venv's MPI
    local n argv
    for n in 2 3; do
        mapfile -t argv < <(python -m eprop_dist.mpirun -n "$n")
        [ "${#argv[@]}" -gt 0 ] || { echo "no MPI launcher for $1" >&2; status=1; return; }
        echo "--- $1: MPI suite on $n ranks: ${argv[*]} ---"
        run_pytest "$1 tests/mpi -n $n" timeout 1500 "${argv[@]}" python -m pytest -q -p no:cacheprovider \
            --with-mpi tests/mpi
    done
}

serial_suites() { # serial_suites LABEL
    run_pytest "$1 serial unit+invariance" python -m pytest -q -p no:cacheprovider tests/unit tests/invariance
    if [ "${EPROP_SKIP_DEBUG:-0}" != 1 ]; then
        echo "--- debug build (EPROP_CYTHON_DEBUG=1: bounds/wraparound/initialisation checks) ---"
        EPROP_CYTHON_DEBUG=1 python setup.py -q build_ext --inplace --force >/dev/null
        run_pytest "$1 serial unit (debug build)" python -m pytest -q -p no:cacheprovider -x tests/unit
        python setup.py -q build_ext --inplace --force >/dev/null
    fi
}

if [ "$MODE" = system ]; then
    MPICC=$(command -v mpicc || true)
    [ -n "$MPICC" ] || { echo "EPROP_MPI=system: no mpicc on PATH (load or install an MPI first)" >&2; exit 2; }
    make_venv .venv-system
    build_mpi4py "$MPICC"
    echo "python: $(command -v python)  mpicc: $MPICC"
    serial_suites "system MPI"
    mpi_suite "system MPI"
else
    # 1. the PyPI mpich wheel
    make_venv .venv
    python -m pip install -q -e ".[test,mpich,nest]"
    python -m eprop_dist.mpirun --describe
    serial_suites "PyPI mpich"
    mpi_suite "PyPI mpich"
    if [ "${EPROP_SKIP_NEST_SUITE:-0}" != 1 ]; then
        echo "--- NEST 3.10's own e-prop test files, unchanged (tests/nest_suite), 1 rank and 2 ranks ---"
        mapfile -t ARGV2 < <(python -m eprop_dist.mpirun -n 2)
        run_pytest "NEST e-prop test files, 1 rank" timeout 1200 python tests/nest_suite/run_nest_suite.py
        run_pytest "NEST e-prop test files, 2 ranks" timeout 1200 "${ARGV2[@]}" python tests/nest_suite/run_nest_suite.py
    fi
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
    ) || slurm_rc=$?
    [ "${slurm_rc:-0}" -eq 0 ] || status=1
    SUMMARY+=("$(printf '%-40s rc=%-3s' "Slurm studies + tests/slurm" "${slurm_rc:-0}")")
fi
# ==== END slurm section =====================================================================
    MPICH_PY=$(command -v python)
    mapfile -t MPICH_ARGV1 < <(python -m eprop_dist.mpirun -n 1)   # (no `| head`: a closed pipe fails under pipefail)
    MPICH_EXEC=${MPICH_ARGV1[0]}
    deactivate

    # 2. Debian's Open MPI, mpi4py built against it in a second venv
    if ! command -v mpicc.openmpi >/dev/null || ! command -v mpiexec.openmpi >/dev/null; then
        echo "--- installing Debian's Open MPI ---"
        SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends openmpi-bin libopenmpi-dev \
            || { $SUDO apt-get -o DPkg::Lock::Timeout=600 update &&
                 $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends openmpi-bin libopenmpi-dev; }
    fi
    make_venv .venv-openmpi
    # the Open MPI launcher explicitly: mpiexec on PATH may be another MPI's (update-alternatives)
    OMPI_EXEC=$(command -v mpiexec.openmpi)
    export EPROP_MPIEXEC="$OMPI_EXEC"
    build_mpi4py "$(command -v mpicc.openmpi)"
    mpi_suite "Debian Open MPI"
    run_pytest "Debian Open MPI launch+failure tests" python -m pytest -q -p no:cacheprovider \
        tests/unit/test_mpi_launch.py tests/unit/test_failures.py
    echo "--- cross launch: each mpi4py started by the other MPI's launcher must stop ---"
    mapfile -t OMPI_ARGV < <(python -m eprop_dist.mpirun -n 1)
    OMPI_LAUNCH="${OMPI_ARGV[*]:0:${#OMPI_ARGV[@]}-2}"   # without "-n 1"
    unset EPROP_MPIEXEC
    EPROP_CROSS_MPIEXEC="$MPICH_EXEC" run_pytest "Open MPI mpi4py under MPICH mpiexec" \
        python -m pytest -q -p no:cacheprovider tests/mpi_cross
    EPROP_CROSS_MPIEXEC="$OMPI_LAUNCH" run_pytest "MPICH mpi4py under Open MPI mpirun" \
        "$MPICH_PY" -m pytest -q -p no:cacheprovider tests/mpi_cross
    deactivate
fi

echo "=== summary ($MODE) ==="
printf '%s\n' "${SUMMARY[@]}"
exit $status
