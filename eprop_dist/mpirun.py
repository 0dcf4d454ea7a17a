"""Launching MPI jobs with the MPI that mpi4py was built against.

The project spawns ``mpiexec`` in its tests, in ``launch/test.sh`` and in the scaling benchmark.  What a
launcher needs differs between implementations: Open MPI refuses to start more ranks than cores
without ``--oversubscribe`` and refuses to run as root without ``--allow-run-as-root``; MPICH (and its
derivatives: Intel MPI, MVAPICH, Cray MPICH) needs neither.  A launcher from one implementation
starting a Python whose mpi4py uses the other gives every rank a world of size 1 (or an abort inside
``MPI_Init``), so :func:`mpiexec_argv` refuses that pair with a message naming both.

This module never initialises MPI in the calling process: mpi4py's library version is read in a
short subprocess with ``mpi4py.rc.initialize = False`` (``MPI_Get_library_version`` may be called
before ``MPI_Init``), unless ``mpi4py.MPI`` is already imported here.  The MPI calls of a run stay in
:mod:`eprop_dist.comm`.

``EPROP_MPIEXEC`` overrides the launcher command (split like a shell would, e.g.
``EPROP_MPIEXEC="srun --mpi=pmix"``); otherwise the ``mpiexec`` next to the Python executable (the
one the PyPI ``mpich`` wheel puts into the virtual environment) is preferred to the one on ``PATH``.

Command line (used by ``launch/test.sh``)::

    python -m eprop_dist.mpirun -n 3      # prints the argv prefix, one word per line
    python -m eprop_dist.mpirun --describe  # prints the two implementations; exit 1 on a mismatch
"""
from __future__ import annotations

import functools
import os
import re
import shlex
import shutil
import subprocess
import sys

from .errors import EpropError

OPENMPI = "Open MPI"
MPICH = "MPICH"
UNKNOWN = "unknown"

# MPICH-derived libraries: same launcher conventions as MPICH (Hydra, PMI/PMI2), no extra flags.
_MPICH_FAMILY = ("MPICH", "Intel(R) MPI", "MVAPICH", "CRAY MPICH", "HYDRA")
_PROBE = ("import mpi4py; mpi4py.rc.initialize = False; mpi4py.rc.finalize = False; "
          "from mpi4py import MPI; print(MPI.Get_library_version())")


class MPILaunchError(EpropError, RuntimeError):
    """No usable MPI launcher, or a launcher of another MPI than the one mpi4py uses."""


def implementation(version_text: str) -> str:
    """The MPI implementation family named by a version text: ``MPI.Get_library_version()`` or the
    output of ``mpiexec --version``.  Returns ``"Open MPI"``, ``"MPICH"`` or ``"unknown"``."""
    t = version_text or ""
    if "Open MPI" in t or "OpenRTE" in t or "Open RTE" in t or re.search(r"\bprterun\b|\bPRRTE\b", t):
        return OPENMPI
    if any(k.upper() in t.upper() for k in _MPICH_FAMILY):
        return MPICH
    return UNKNOWN


@functools.lru_cache(maxsize=None)
def _probe_library(python: str) -> str:
    try:
        p = subprocess.run([python, "-c", _PROBE], capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL, env=_clean_env())
    except (OSError, subprocess.TimeoutExpired) as e:
        raise MPILaunchError(f"cannot ask {python} which MPI its mpi4py uses: {e}") from None
    if p.returncode != 0:
        raise MPILaunchError(f"{python} cannot import mpi4py (needed to launch MPI jobs): "
                             f"{p.stderr.strip()[-800:]}")
    return p.stdout.strip()


def mpi4py_library(python: str | None = None) -> str:
    """``MPI.Get_library_version()`` of the mpi4py that `python` (default: this interpreter) imports,
    read without initialising MPI in this process."""
    python = python or sys.executable
    if python == sys.executable and "mpi4py.MPI" in sys.modules:
        return sys.modules["mpi4py.MPI"].Get_library_version().strip()
    return _probe_library(python)


def _clean_env():
    """The environment without the variables of an enclosing launch, so a probe run from inside an
    MPI job does not try to join it."""
    drop = ("PMI_", "PMIX_", "OMPI_", "HYDI_", "HYDRA_", "MPI_LOCAL")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


@functools.lru_cache(maxsize=None)
def launcher_version(mpiexec: tuple[str, ...]) -> str:
    """The output of ``<mpiexec> --version`` (stdout and stderr), '' if it gives none."""
    try:
        p = subprocess.run([*mpiexec, "--version"], capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL, env=_clean_env())
    except FileNotFoundError:
        raise MPILaunchError(f"MPI launcher {mpiexec[0]!r} not found") from None
    except (OSError, subprocess.TimeoutExpired) as e:
        raise MPILaunchError(f"cannot run {' '.join(mpiexec)} --version: {e}") from None
    return (p.stdout + p.stderr).strip()


def find_mpiexec(python: str | None = None) -> list[str]:
    """The launcher command: ``$EPROP_MPIEXEC`` if set, else the ``mpiexec`` next to `python`, else
    ``mpiexec`` on PATH.  Raises :class:`MPILaunchError` when there is none."""
    override = os.environ.get("EPROP_MPIEXEC", "").strip()
    if override:
        argv = shlex.split(override)
        if shutil.which(argv[0]) is None:
            raise MPILaunchError(f"EPROP_MPIEXEC={override!r}: {argv[0]!r} is not an executable")
        return argv
    python = python or sys.executable
    local = os.path.join(os.path.dirname(python), "mpiexec")
    if os.path.isfile(local) and os.access(local, os.X_OK):
        return [local]
    found = shutil.which("mpiexec")
    if found is None:
        raise MPILaunchError("no mpiexec found (neither next to " + python + " nor on PATH): install an "
                             "MPI (pip install mpich, or the system's Open MPI / MPICH) or set EPROP_MPIEXEC")
    return [found]


def extra_flags(impl: str, as_root: bool | None = None) -> list[str]:
    """Launcher options the implementation needs to start more ranks than cores, and as root
    (``--oversubscribe`` is accepted by Open MPI 4 and 5)."""
    if impl != OPENMPI:
        return []
    if as_root is None:
        as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    flags = ["--oversubscribe"]
    if as_root:
        flags.append("--allow-run-as-root")
    return flags


def mismatch_message(library: str, launcher: str, launcher_text: str) -> str:
    lib = library.splitlines()[0].strip() if library else "?"
    return (f"MPI mismatch: mpi4py uses {implementation(library)} ({lib}) but the launcher {launcher} is "
            f"{implementation(launcher_text)} ({launcher_text.splitlines()[0].strip() if launcher_text else '?'}); "
            f"every rank would run alone as rank 0 of 1.  Use the mpiexec of the MPI mpi4py was built "
            f"against (set EPROP_MPIEXEC), or rebuild mpi4py against the launcher's MPI "
            f"(pip install --no-binary mpi4py --force-reinstall --no-cache-dir mpi4py, with its mpicc on PATH).")


def mpiexec_argv(n: int, python: str | None = None, check: bool = True) -> list[str]:
    """The argv prefix that starts `n` ranks with the launcher matching `python`'s mpi4py, e.g.
    ``['/usr/bin/mpiexec', '--oversubscribe', '--allow-run-as-root', '-n', '3']`` for Open MPI as root
    or ``['.venv/bin/mpiexec', '-n', '3']`` for MPICH.  Append the program and its arguments.

    With `check`, a launcher of a known implementation other than mpi4py's raises
    :class:`MPILaunchError`; launchers that do not say (``srun``, wrappers) are passed through."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise MPILaunchError(f"number of ranks must be a positive integer, got {n!r}")
    python = python or sys.executable
    launcher = find_mpiexec(python)
    text = launcher_version(tuple(launcher))
    impl = implementation(text)
    if check and impl != UNKNOWN:
        lib = mpi4py_library(python)
        if implementation(lib) != UNKNOWN and implementation(lib) != impl:
            raise MPILaunchError(mismatch_message(lib, " ".join(launcher), text))
    return [*launcher, *extra_flags(impl), "-n", str(n)]


def describe(python: str | None = None) -> tuple[str, bool]:
    """A two-line description of mpi4py's MPI and the launcher, and whether they match."""
    python = python or sys.executable
    lib = mpi4py_library(python)
    launcher = find_mpiexec(python)
    text = launcher_version(tuple(launcher))
    li, la = implementation(lib), implementation(text)
    ok = UNKNOWN in (li, la) or li == la
    first = (lib.splitlines() or ["?"])[0].strip()
    return (f"mpi4py: {li} ({first})\nmpiexec: {' '.join(launcher)} -> {la} "
            f"(extra flags: {' '.join(extra_flags(la)) or 'none'})"), ok


def main(argv=None) -> int:
    import argparse
    p = argparse.ArgumentParser(prog="python -m eprop_dist.mpirun", description=__doc__.splitlines()[0])
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("-n", type=int, help="print the launcher argv prefix for N ranks, one word per line")
    g.add_argument("--describe", action="store_true", help="print both implementations; exit 1 on a mismatch")
    a = p.parse_args(argv)
    try:
        if a.describe:
            text, ok = describe()
            print(text)
            if not ok:
                print("MISMATCH: the launcher and mpi4py use different MPI implementations", file=sys.stderr)
            return 0 if ok else 1
        print("\n".join(mpiexec_argv(a.n)))
        return 0
    except MPILaunchError as e:
        print(f"eprop-dist: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
