"""Checkpoints across rank counts (issue 10 item 6), under ``mpiexec -n N python -m pytest --with-mpi tests/mpi``:
a checkpoint written on 1 rank resumes on N ranks and one written on N ranks resumes on 1, both with
results == the uninterrupted serial run; SIGTERM delivered to one rank only makes every rank write the
checkpoint and stop with exit code 75.  The serial runs are subprocesses started by rank 0 with the
launcher's environment removed (they are plain 1-process runs)."""
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import h5py
import pytest

from eprop_dist import cli
from eprop_dist import checkpoint as CK
from test_checkpoint import DIGITS, EVIDENCE, SINE, assert_same_results

pytestmark = pytest.mark.mpi
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TASK_ARGS = {"sine_waves": (SINE, "n_iter", ()), "evidence_accumulation": (EVIDENCE, "n_iter_train", ("--set", "n_iter_test=0")),
             "digits": (DIGITS, "n_iter_train", ("--set", "n_iter_test=0"))}


@pytest.fixture(scope="module")
def comm():
    from mpi4py import MPI
    return MPI.COMM_WORLD


@pytest.fixture()
def shared(comm, tmp_path):
    """One folder for all ranks (rank 0's tmp_path)."""
    return Path(comm.bcast(str(tmp_path) if comm.rank == 0 else None, root=0))


def serial(*args):
    """`eprop-dist train ...` as a plain 1-process run (no launcher variables: a world of 1)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PMI", "MPI_LOCAL", "HYD", "OMPI_", "PMIX_", "SLURM_STEP"))}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    p = subprocess.run([sys.executable, "-m", "eprop_dist", "train", "--quiet", *args], capture_output=True, text=True,
                       timeout=300, env=env, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    return p


def on_root(comm, fn):
    """Run fn on rank 0; a failure there fails the test on every rank (no rank is left waiting)."""
    msg = None
    if comm.rank == 0:
        try:
            fn()
        except BaseException as e:         # noqa: BLE001 - reported on every rank below
            msg = f"{type(e).__name__}: {e}"
    msg = comm.bcast(msg, root=0)
    assert msg is None, msg


def parallel(comm, *args):
    rc = cli.main(["train", "--quiet", *args])
    rcs = comm.allgather(rc)
    return rcs


@pytest.mark.parametrize("task,family", [("sine_waves", "eprop_plus"), ("sine_waves", "bsshslm_2020"),
                                         ("evidence_accumulation", "bsshslm_2020")])
def test_one_rank_checkpoint_resumes_on_n_ranks(comm, shared, task, family):
    base, count, short_extra = TASK_ARGS[task]
    a, b, c = shared / "full", shared / "ckpt", shared / "resumed"

    def prepare():
        serial(task, "--family", family, *base, *short_extra, "--set", f"{count}=3", "--out", str(a))
        serial(task, "--family", family, *base, *short_extra, "--set", f"{count}=1", "--checkpoint-every", "1",
               "--out", str(b))
        with h5py.File(b / "checkpoint.h5", "r") as f:
            assert int(f.attrs["n_ranks"]) == 1
    on_root(comm, prepare)
    assert parallel(comm, "--resume", str(b), "--set", f"{count}=3", "--out", str(c)) == [0] * comm.size
    on_root(comm, lambda: assert_same_results(a / "results.h5", c / "results.h5"))


@pytest.mark.parametrize("task,family", [("sine_waves", "eprop_plus"), ("sine_waves", "bsshslm_2020"),
                                         ("digits", "eprop_plus")])
def test_n_rank_checkpoint_resumes_on_one_rank(comm, shared, task, family):
    base, count, short_extra = TASK_ARGS[task]
    a, b, c = shared / "full", shared / "ckpt", shared / "resumed"
    assert parallel(comm, task, "--family", family, *base, *short_extra, "--set", f"{count}=2",
                    "--checkpoint-every", "2", "--out", str(b)) == [0] * comm.size

    def check():
        with h5py.File(b / "checkpoint.h5", "r") as f:
            assert int(f.attrs["n_ranks"]) == comm.size
        os.unlink(b / "results.h5")
        serial("--resume", str(b), "--set", f"{count}=4", "--out", str(c))
        serial(task, "--family", family, *base, *short_extra, "--set", f"{count}=4", "--out", str(a))
        assert_same_results(a / "results.h5", c / "results.h5")
    on_root(comm, check)


@pytest.mark.parametrize("seq,resume_serial", [(200, False), (9000, True)])
def test_sigterm_on_one_rank_stops_every_rank_with_a_checkpoint(comm, shared, capfd, monkeypatch, seq, resume_serial):
    """seq 200: phases shorter than a stretch (checkpoint at a phase end), resumed on N ranks; seq 9000: the
    signal usually lands inside a phase (checkpoint between stretches), resumed on 1 rank."""
    b, a, c = shared / "run", shared / "full", shared / "resumed"
    if comm.rank == comm.size - 1:              # only the last rank gets the signal, once its handler is in
        real = CK.Checkpointer.install

        def install(self):
            real(self)
            monkeypatch.setattr(CK.Checkpointer, "install", real)      # the resumed run below: no signal
            threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGTERM)).start()
        monkeypatch.setattr(CK.Checkpointer, "install", install)
    args = [*SINE, "--set", f"seq={seq}"]
    rcs = parallel(comm, "sine_waves", *args, "--set", "n_iter=1000", "--out", str(b))
    assert rcs == [CK.EXIT_CHECKPOINTED] * comm.size
    err = capfd.readouterr().err
    if comm.rank == 0:
        assert "stopped by SIGTERM " in err
    with h5py.File(b / "checkpoint.h5", "r") as f:
        n = int(f.attrs["phase"])
    assert not (b / "results.h5").exists()
    if not resume_serial:
        assert parallel(comm, "--resume", str(b), "--set", f"n_iter={n + 2}", "--out", str(c)) == [0] * comm.size

    def check():
        if resume_serial:
            serial("--resume", str(b), "--set", f"n_iter={n + 2}", "--out", str(c))
        serial("sine_waves", *args, "--set", f"n_iter={n + 2}", "--out", str(a))
        r = assert_same_results(a / "results.h5", c / "results.h5")
        assert r["loss"].size == n + 2
    on_root(comm, check)
