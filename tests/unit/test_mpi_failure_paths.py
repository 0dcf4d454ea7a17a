"""Issue 9 under ``mpiexec -n 2`` and ``-n 3`` (subprocesses with a timeout): a failure on one rank
before the first Simulate, inside Connect, inside GetConnections and inside a recorder read ends
every rank with that rank's message; reads made on one rank only (NEST's local GetConnections,
.get(), recorder events) never block; the global helpers gather every rank's share.

The scripts use the module API (``import eprop_dist as nest``) without importing mpi4py first: the
abort-on-error hook is installed when eprop_dist is imported under an MPI launcher."""
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MPIEXEC = shutil.which("mpiexec")

PRELUDE = textwrap.dedent("""
    import json
    import numpy as np
    import eprop_dist as nest
    rank = nest.Rank()
    gen = nest.Create("spike_generator", 3, {"spike_times": [1.0, 4.0, 6.0]})
    par = nest.Create("parrot_neuron", 3)
    rec = nest.Create("eprop_iaf", 7, {"V_th": -69.0})
    sr = nest.Create("spike_recorder")
    mm = nest.Create("multimeter", {"record_from": ["V_m"]})
    nest.Connect(gen, par, "one_to_one")
""")
CONNECT = "nest.Connect(par, rec, 'all_to_all', {'synapse_model': 'eprop_synapse', 'weight': 30.0})\n"
RECORD = "nest.Connect(par + rec, sr)\nnest.Connect(mm, rec)\n"


def launch(body, tmp_path, n, timeout=90):
    if MPIEXEC is None:
        pytest.fail("mpiexec not found: install the MPI extra (pip install -e '.[mpich]')")
    script = tmp_path / "job.py"
    script.write_text(PRELUDE + "\n".join(textwrap.dedent(part) for part in body.split("#--\n")))
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("EPROP_DIST_READ_SCOPE", None)
    t0 = time.monotonic()
    p = subprocess.run([MPIEXEC, "-n", str(n), sys.executable, str(script)], capture_output=True, text=True,
                       timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    return p, time.monotonic() - t0


def assert_aborted(p, dt, *needles):
    assert p.returncode != 0, p.stdout + p.stderr
    for s in needles:
        assert s in p.stderr, p.stderr[-3000:]
    assert "finished" not in p.stdout
    assert dt < 60


@pytest.mark.parametrize("n", [2, 3])
def test_failure_before_first_simulate(tmp_path, n):
    p, dt = launch(CONNECT + RECORD + "#--\n" + """
        if rank == 1:
            rec.set(tau_m=-1.0)
        nest.Simulate(5.0)
        print("finished", rank)
    """, tmp_path, n)
    assert_aborted(p, dt, "rank 1", "tau_m")


@pytest.mark.parametrize("n", [2, 3])
def test_failure_inside_connect(tmp_path, n):
    p, dt = launch("""
        if rank == n_bad:
            nest.Connect(par, rec, {"rule": "fixed_indegree", "indegree": -1}, {"synapse_model": "eprop_synapse"})
        else:
            nest.Connect(par, rec, {"rule": "fixed_indegree", "indegree": 2}, {"synapse_model": "eprop_synapse"})
        nest.Simulate(5.0)
        print("finished", rank)
    """.replace("n_bad", str(n - 1)), tmp_path, n)
    assert_aborted(p, dt, f"rank {n - 1}", "indegree must be an integer >= 0")


@pytest.mark.parametrize("n", [2, 3])
def test_failure_inside_get_connections_on_one_rank(tmp_path, n):
    p, dt = launch(CONNECT + "#--\n" + """
        nest.Simulate(5.0)
        if rank == 0:
            nest.GetConnections(synapse_model="eprop_synapse_nope")
        nest.Simulate(5.0)
        print("finished", rank)
    """, tmp_path, n)
    assert_aborted(p, dt, "rank 0", "eprop_synapse_nope")


@pytest.mark.parametrize("n", [2, 3])
def test_failure_inside_recorder_read(tmp_path, n):
    p, dt = launch(CONNECT + RECORD + "#--\n" + """
        nest.Simulate(5.0)
        if rank == 1:
            mm.get("evnets")
        nest.Simulate(5.0)
        print("finished", rank)
    """, tmp_path, n)
    assert_aborted(p, dt, "rank 1", "evnets")


@pytest.mark.parametrize("n", [2, 3])
def test_reads_on_one_rank_are_local_and_never_block(tmp_path, n):
    """NEST's pattern ``if nest.Rank() == 0: nest.GetConnections(...).get()``, before and after the
    first Simulate, and recorder reads on one rank; then the explicit global helpers."""
    p, dt = launch(CONNECT + RECORD + "#--\n" + """
        if rank == 0:
            before = nest.GetConnections().get()                 # builds rank 0's share only
        nest.Simulate(10.0)
        mine = nest.GetConnections().get()
        if rank == n_last:
            ev = sr.get("events")
            mev = mm.get("events")
        nest.Simulate(5.0)
        ev = sr.get("events")
        mev = mm.get("events")
        allc = nest.gather_connections()
        alle = nest.gather_events(sr)
        root = nest.gather_events(mm, root=0)
        open(f"OUT_DIR/r{rank}.json", "w").write(json.dumps({
            "rank": rank, "n_local": int(len(mine["source"])), "local_targets": [int(x) for x in mine["target"]],
            "ev_senders": [int(x) for x in ev["senders"]], "mm_senders": sorted(set(int(x) for x in mev["senders"])),
            "n_all": int(len(allc["source"])), "all_senders": [int(x) for x in alle["senders"]],
            "root_is_none": root is None, "num_connections": nest.GetKernelStatus("num_connections"),
            "vps": nest.total_num_virtual_procs, "local": [bool(x) for x in rec.get("local")],
            "sr_local": sr.get("local")}))
        print("finished", rank)
    """.replace("n_last", str(n - 1)).replace("OUT_DIR", str(tmp_path)), tmp_path, n)
    assert p.returncode == 0, p.stderr[-3000:]
    assert dt < 60
    res = [json.loads((tmp_path / f"r{r}.json").read_text()) for r in range(n)]
    assert sorted(r["rank"] for r in res) == list(range(n))
    rec_gids, par_gids = range(7, 14), range(4, 7)       # gids: generators 1-3, parrots 4-6, neurons 7-13
    for r in res:
        assert all(t % n == r["rank"] for t in r["local_targets"])          # only this rank's targets
        n_mine = 3 * sum(g % n == r["rank"] for g in rec_gids) + sum(g % n == r["rank"] for g in par_gids)
        assert r["n_local"] == n_mine == r["num_connections"]
        assert all(s % n == r["rank"] for s in r["ev_senders"])              # events of own nodes only
        assert all(s % n == r["rank"] for s in r["mm_senders"])
        assert r["n_all"] == 24                                              # every rank's share
        assert r["vps"] == n
        assert r["root_is_none"] == (r["rank"] != 0)
        assert r["local"] == [g % n == r["rank"] for g in rec_gids] and r["sr_local"] is True
    assert sorted(s for r in res for s in r["ev_senders"]) == sorted(res[0]["all_senders"])
    assert len(res[0]["all_senders"]) > 10
