"""Launching with the MPI in use (eprop_dist.mpirun) and stopping on a launcher/library mismatch
(eprop_dist.comm.world)."""
import os
import re
import stat
import subprocess
import sys
import textwrap

import pytest

from eprop_dist import mpirun
from eprop_dist.comm import launcher_size
from eprop_dist.mpirun import OPENMPI, MPICH, UNKNOWN, MPILaunchError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# version texts as the real tools print them
OMPI_LIB = "Open MPI v4.1.4, package: Debian OpenMPI, ident: 4.1.4, repo rev: v4.1.4, May 26, 2022"
OMPI_EXEC = "mpiexec (OpenRTE) 4.1.4\n\nReport bugs to http://www.open-mpi.org/community/help/"
OMPI5_EXEC = "mpirun (Open MPI) 5.0.3\n\nReport bugs to https://www.open-mpi.org/community/help/"
MPICH_LIB = "MPICH Version:      5.0.2\nMPICH Release date: Fri Sep 25 20:45:26 UTC 2026"
HYDRA_EXEC = "HYDRA build details:\n    Version:                                 5.0.2"
IMPI_LIB = "Intel(R) MPI Library 2021.10 for Linux* OS"
SRUN = "slurm 23.02.7"


@pytest.mark.parametrize("text, impl", [(OMPI_LIB, OPENMPI), (OMPI_EXEC, OPENMPI), (OMPI5_EXEC, OPENMPI),
                                        (MPICH_LIB, MPICH), (HYDRA_EXEC, MPICH), (IMPI_LIB, MPICH),
                                        ("MVAPICH2 Version : 2.3.7", MPICH), (SRUN, UNKNOWN), ("", UNKNOWN)])
def test_implementation_from_version_text(text, impl):
    assert mpirun.implementation(text) == impl


def test_extra_flags():
    assert mpirun.extra_flags(OPENMPI, as_root=False) == ["--oversubscribe"]
    assert mpirun.extra_flags(OPENMPI, as_root=True) == ["--oversubscribe", "--allow-run-as-root"]
    assert mpirun.extra_flags(MPICH, as_root=True) == []
    assert mpirun.extra_flags(UNKNOWN, as_root=True) == []


def fake_launcher(tmp_path, version_text, name="mpiexec"):
    """An executable that answers --version like a real launcher and otherwise runs its program."""
    path = tmp_path / name
    path.write_text("#!/bin/sh\n"
                    f"if [ \"$1\" = --version ]; then cat <<'EOF'\n{version_text}\nEOF\nexit 0; fi\n"
                    "echo \"fake launcher: $*\"\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_argv_for_the_mpi_in_use_starts_more_ranks_than_cores(tmp_path):
    """The real launcher matching this mpi4py starts 3 ranks (more than this machine's 2 cores needs
    --oversubscribe under Open MPI, --allow-run-as-root as root) and they form one world."""
    lib = mpirun.mpi4py_library()
    argv = mpirun.mpiexec_argv(3)
    launcher = argv[:argv.index("-n")]
    impl = mpirun.implementation(mpirun.launcher_version(tuple(launcher)))
    assert impl == mpirun.implementation(lib) != UNKNOWN
    assert argv[-2:] == ["-n", "3"]
    assert ("--oversubscribe" in argv) == (impl == OPENMPI)
    assert ("--allow-run-as-root" in argv) == (impl == OPENMPI and os.geteuid() == 0)
    script = tmp_path / "ranks.py"
    script.write_text(textwrap.dedent("""
        import sys
        from eprop_dist.comm import world
        c = world()
        sys.stdout.write(f"<rank {c.rank} of {c.size}>\\n")
        sys.stdout.flush()
    """))
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run(argv + [sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                       env=env, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr[-2000:]
    # the launcher may interleave the ranks' output, so match the tokens, not lines
    assert sorted(re.findall(r"<rank (\d+) of (\d+)>", p.stdout)) == [("0", "3"), ("1", "3"), ("2", "3")]


def test_mpiexec_override_and_mismatch(tmp_path, monkeypatch):
    lib_impl = mpirun.implementation(mpirun.mpi4py_library())
    same = OMPI_EXEC if lib_impl == OPENMPI else HYDRA_EXEC
    other = HYDRA_EXEC if lib_impl == OPENMPI else OMPI_EXEC
    monkeypatch.setenv("EPROP_MPIEXEC", fake_launcher(tmp_path, same) + " --verbose")
    argv = mpirun.mpiexec_argv(4)
    assert argv[0] == str(tmp_path / "mpiexec") and argv[1] == "--verbose" and argv[-2:] == ["-n", "4"]
    # a launcher that does not say which MPI it is (srun, a site wrapper) passes unchanged
    (tmp_path / "s").mkdir()
    monkeypatch.setenv("EPROP_MPIEXEC", fake_launcher(tmp_path / "s", SRUN, "srun") + " --mpi=pmix")
    assert mpirun.mpiexec_argv(2)[1:] == ["--mpi=pmix", "-n", "2"]
    # a launcher of the other implementation is refused, naming both
    (tmp_path / "o").mkdir()
    monkeypatch.setenv("EPROP_MPIEXEC", fake_launcher(tmp_path / "o", other))
    with pytest.raises(MPILaunchError) as e:
        mpirun.mpiexec_argv(2)
    msg = str(e.value)
    assert "MPI mismatch" in msg and OPENMPI in msg and MPICH in msg and str(tmp_path / "o") in msg
    assert mpirun.main(["--describe"]) == 1
    # bad values name what is wrong
    monkeypatch.setenv("EPROP_MPIEXEC", str(tmp_path / "nope"))
    with pytest.raises(MPILaunchError, match="EPROP_MPIEXEC="):
        mpirun.mpiexec_argv(2)
    with pytest.raises(MPILaunchError, match="positive integer"):
        mpirun.mpiexec_argv(0)


def test_cli_prints_argv(capsys):
    assert mpirun.main(["-n", "2"]) == 0
    assert capsys.readouterr().out.splitlines() == mpirun.mpiexec_argv(2)


@pytest.mark.parametrize("env, expect", [
    ({}, None),
    ({"OMPI_COMM_WORLD_SIZE": "1"}, None),
    ({"OMPI_COMM_WORLD_SIZE": "4"}, (4, "OMPI_COMM_WORLD_SIZE")),
    ({"PMI_SIZE": "3", "PMI_RANK": "0"}, (3, "PMI_SIZE")),
    ({"PMI_SIZE": "x"}, None),
    ({"SLURM_STEP_NUM_TASKS": "8"}, None),                          # batch script, not an srun step
    ({"SLURM_STEP_NUM_TASKS": "8", "SLURM_STEP_ID": "4294967294"}, None),
    ({"SLURM_STEP_NUM_TASKS": "8", "SLURM_STEP_ID": "0", "PMIX_RANK": "0"}, (8, "SLURM_STEP_NUM_TASKS")),
])
def test_launcher_size_from_environment(env, expect):
    got = launcher_size(env)
    assert (got if got is None else got[:2]) == expect


def test_world_stops_on_launcher_mismatch(tmp_path):
    """A real MPI initialisation (size 1) in an environment that says another MPI's launcher started
    2 ranks: world() stops with a message naming the library and the launcher, exit code != 0.
    The variable is one the library in use ignores (Open MPI ignores PMI_SIZE; MPICH ignores
    OMPI_COMM_WORLD_SIZE), exactly what happens when the launcher belongs to the other MPI."""
    lib_impl = mpirun.implementation(mpirun.mpi4py_library())
    var, who = ("PMI_SIZE", "MPICH") if lib_impl == OPENMPI else ("OMPI_COMM_WORLD_SIZE", "Open MPI")
    script = tmp_path / "job.py"
    script.write_text("import eprop_dist\nk = eprop_dist.Kernel()\nk.Create('eprop_iaf', 4)\n"
                      "k.Simulate(2.0)\nprint('simulated', flush=True)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI", "OMPI_", "HYDI", "SLURM"))}
    env.update({var: "2", "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")})
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env,
                       stdin=subprocess.DEVNULL)
    assert p.returncode != 0
    assert "simulated" not in p.stdout
    assert "MPI launch mismatch" in p.stderr and f"{var}=2" in p.stderr and who in p.stderr
    lib_first = mpirun.mpi4py_library().splitlines()[0].strip()
    assert lib_first in p.stderr
    assert "srun --mpi=pmix" in p.stderr and "--no-binary mpi4py" in p.stderr
