"""A failure on one MPI rank ends the whole job with the message and a non-zero exit code within
seconds, never a hang (run through mpiexec subprocesses with a timeout)."""
import os
import subprocess
import sys
import textwrap
import time

import pytest

from eprop_dist.mpirun import mpiexec_argv

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PRELUDE = textwrap.dedent("""
    import numpy as np
    from mpi4py import MPI
    import eprop_dist
    rank = MPI.COMM_WORLD.Get_rank()
    k = eprop_dist.Kernel()
    g = k.Create("spike_generator", 2, {"spike_times": [1.0, 5.0]})
    p = k.Create("parrot_neuron", 2)
    n = k.Create("eprop_iaf", 4)
    k.Connect(g, p, "one_to_one")
    k.Connect(p, n, "all_to_all", {"synapse_model": "eprop_synapse"})
""")


def launch(body, tmp_path, n=2, via_mpi4py=True, timeout=90):
    script = tmp_path / "job.py"
    script.write_text(PRELUDE + textwrap.dedent(body))
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = mpiexec_argv(n) + [sys.executable] + (["-m", "mpi4py"] if via_mpi4py else []) + [str(script)]
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                       stdin=subprocess.DEVNULL)
    return p, time.monotonic() - t0


@pytest.mark.parametrize("via_mpi4py", [True, False])
def test_bad_parameter_on_one_rank(tmp_path, via_mpi4py):
    p, dt = launch("""
        k.Simulate(5.0)
        if rank == 1:
            n.set(tau_m=-1.0)
        k.Simulate(5.0)
        print("finished", rank)
    """, tmp_path, via_mpi4py=via_mpi4py)
    assert p.returncode != 0
    assert "tau_m" in p.stderr and "BadProperty" in p.stderr
    assert "finished" not in p.stdout
    assert dt < 60


def test_exception_in_callback_on_one_rank(tmp_path):
    p, dt = launch("""
        def on_iteration(i):
            if rank == 0 and i == 2:
                raise RuntimeError("callback failed in iteration 2")
        for i in range(5):
            k.Simulate(3.0)
            on_iteration(i)
        print("finished", rank)
    """, tmp_path, n=3)
    assert p.returncode != 0
    assert "callback failed in iteration 2" in p.stderr
    assert "finished" not in p.stdout


def test_build_error_on_one_rank_is_collective(tmp_path):
    """Only the rank owning the readout sees the bad wiring; every rank raises (no hang), even
    without python -m mpi4py."""
    p, dt = launch("""
        out = k.Create("eprop_readout", 1)
        gens = k.Create("step_rate_generator", 2)
        k.Connect(gens, out, "all_to_all", {"synapse_model": "rate_connection_delayed", "receptor_type": 2})
        try:
            k.Simulate(2.0)
        except eprop_dist.EpropError as e:
            print("rank", rank, "raised:", e, flush=True)
            raise SystemExit(3)
    """, tmp_path, via_mpi4py=False)
    assert p.returncode != 0
    assert p.stdout.count("raised:") == 2
    assert "more than one step_rate_generator" in p.stdout


def test_cli_bad_config_exits_cleanly(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("n_iter = -3\n")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run(mpiexec_argv(2) + [sys.executable, "-m", "mpi4py", "-m", "eprop_dist", "train",
                        "--config", str(cfg), "--out", str(tmp_path)], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=90, env=env)
    assert p.returncode != 0
    assert "config key 'n_iter' = -3" in p.stderr


def test_cli_recording_too_large_under_mpi_stops_every_rank(tmp_path):
    """The memory check is agreed on by every rank (comm.check): all stop with the message, non-zero exit,
    nothing written."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = tmp_path / "out"
    p = subprocess.run(mpiexec_argv(2) + [sys.executable, "-m", "mpi4py", "-m", "eprop_dist", "train",
                        "--set", "n_iter=1000000000", "--out", str(out)], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=90, env=env)
    assert p.returncode != 0, p.stderr[-2000:]      # 2 with MPICH (MPI_Abort(2)); launchers may map it
    assert p.stderr.count("readout samples") == 2 and "lower 'n_iter' or 'seq'" in p.stderr
    assert not out.exists()
