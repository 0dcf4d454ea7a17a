"""A real mismatch: this Python's mpi4py launched by the OTHER MPI's launcher (run by launch/test.sh,
which installs both MPIs and passes the other launcher in EPROP_CROSS_MPIEXEC).

- Open MPI's mpi4py under MPICH's Hydra mpiexec: every rank initialises as a world of 1; world()
  stops with the eprop-dist message naming both.
- MPICH's mpi4py under Open MPI's mpirun: MPICH >= 4 refuses the PMIx environment inside MPI_Init
  ("unsupported PMI version PMIx") before any eprop-dist code runs; older MPICH builds start as worlds
  of 1 and get the eprop-dist message.  Either way the job ends with a non-zero exit in seconds."""
import os
import shlex
import subprocess
import sys
import time

from eprop_dist import mpirun

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

JOB = """import eprop_dist
k = eprop_dist.Kernel()
k.Create("eprop_iaf", 4)
k.Simulate(2.0)
print("simulated", flush=True)
"""


def test_other_mpis_launcher_is_refused(tmp_path):
    cross = os.environ.get("EPROP_CROSS_MPIEXEC", "")
    assert cross, "set EPROP_CROSS_MPIEXEC to the launcher of the other MPI (launch/test.sh does)"
    launcher = shlex.split(cross)
    lib = mpirun.mpi4py_library()
    lib_impl = mpirun.implementation(lib)
    other = mpirun.implementation(mpirun.launcher_version(tuple(launcher[:1])))
    assert {lib_impl, other} == {mpirun.OPENMPI, mpirun.MPICH}, (lib, launcher)
    script = tmp_path / "job.py"
    script.write_text(JOB)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for via in ([], ["-m", "mpi4py"]):
        t0 = time.monotonic()
        p = subprocess.run(launcher + ["-n", "2", sys.executable, *via, str(script)], capture_output=True,
                           text=True, timeout=120, env=env, stdin=subprocess.DEVNULL)
        assert p.returncode != 0, p.stdout
        assert "simulated" not in p.stdout
        assert time.monotonic() - t0 < 60
        ours = "MPI launch mismatch" in p.stderr and lib.splitlines()[0].strip() in p.stderr
        if lib_impl == mpirun.OPENMPI:
            assert ours and "PMI_SIZE=2" in p.stderr, p.stderr[-3000:]
        else:
            assert ours or "unsupported PMI version PMIx" in p.stderr, p.stderr[-3000:]
