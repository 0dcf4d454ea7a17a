"""Run a study without Slurm: each point under ``mpiexec -n R`` on this machine."""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys

from . import folder
from .study import Study, StudyError


def default_mpiexec() -> list:
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    exe = here if os.path.exists(here) else shutil.which("mpiexec")
    if exe is None:
        raise StudyError("mpiexec not found (install the 'mpich' extra or give --mpiexec)")
    return [exe]


def run_local(study: Study, out: str | None = None, mpiexec: str | None = None, force: bool = False,
              timeout: float = 3600.0, report=print) -> str:
    """Run every point (skipping those with a complete result unless `force`); returns the folder.
    A failing point raises StudyError with the tail of its log after the other points ran."""
    from .results import read_point
    d = folder.prepare(study, out)
    launcher = shlex.split(mpiexec) if mpiexec else default_mpiexec()
    failed = []
    for p in study.points:
        res = folder.result_h5(d, p)
        if not force and os.path.exists(res):
            try:
                read_point(res)
                report(f"{p.tag}: already complete ({res})")
                continue
            except StudyError:
                pass
        if p.nodes > 1:
            report(f"{p.tag}: {p.nodes} nodes requested; running all {p.ranks} ranks on this machine")
        argv = launcher + ["-n", str(p.ranks), sys.executable, "-m", "mpi4py", "-m", "eprop_dist", "scaling",
                           "worker", folder.point_json(d, p), "--out", res]
        log = os.path.join(d, "logs", f"{p.tag}.local.out")
        with open(log, "w") as f:
            f.write("$ " + " ".join(shlex.quote(a) for a in argv) + "\n")
            f.flush()
            try:
                rc = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=d, timeout=timeout).returncode
            except subprocess.TimeoutExpired:
                rc = "timeout"
        with open(log, errors="replace") as f:
            tail = "".join(f.readlines()[-12:])
        if rc != 0:
            failed.append(f"{p.tag} (rc {rc}, log {log}):\n{tail}")
            report(f"{p.tag}: FAILED (rc {rc}), log {log}")
        else:
            report(tail.strip().splitlines()[-1] if tail.strip() else f"{p.tag}: done")
    if failed:
        raise StudyError(f"{len(failed)} of {len(study.points)} point(s) failed:\n" + "\n".join(failed))
    return d
