"""The per-point worker: counts that follow from the network, provenance, and a killed job leaves no
complete-looking file."""
import os
import signal
import subprocess
import sys
import time

import pytest

from eprop_dist.scaling import StudyError, load
from eprop_dist.scaling.folder import point_json, prepare, result_h5
from eprop_dist.scaling.results import point_files, read_point
from eprop_dist.scaling.worker import run_point
from scaling_cases import ROOT, write_study


@pytest.mark.parametrize("delay,fb", [(1.0, 0), (2.0, 5)])
def test_counts_follow_from_the_network(tmp_path, delay, fb):
    s = load(write_study(tmp_path, ranks=(1,), delay=delay, fb=fb))
    p = s.points[0]
    d = prepare(s, str(tmp_path / "s"))
    summary = run_point(p, result_h5(d, p), progress=lambda *a, **k: None)
    n = p.network
    intervals = p.t_sim / (1000.0 / n["rate"])       # ignore-and-spike: every neuron spikes once per interval
    assert intervals == 2
    assert summary["spikes"] == (n["n_in"] + n["n_rec"]) * intervals
    spike_synapses = n["n_rec"] * (n["k_in"] + n["k_rec"]) + n["n_out"] * n["k_out"]
    assert summary["syn_events"] == spike_synapses * intervals
    ls = n["n_out"] * (fb or n["n_rec"])
    assert summary["n_synapses"] == spike_synapses + ls
    back = read_point(result_h5(d, p))
    assert back["summary"]["spikes"] == summary["spikes"] and back["ranks"] == 1 and back["D"] == delay
    assert back["provenance"]["package_version"] and back["provenance"]["n_ranks"] == 1
    assert back["provenance"]["launcher"] in ("local", "slurm")
    assert list(back["per_rank"]["rank"]) == [0]
    assert all(back["per_rank"]["time_" + ph][0] >= 0 for ph in ("update", "deliver", "eprop", "communicate"))


def test_rank_count_mismatch_refused(tmp_path):
    s = load(write_study(tmp_path, ranks=(2,)))
    p = s.points[0]
    with pytest.raises(StudyError, match="communicator has 1 rank.s. but the point needs 2"):
        run_point(p, str(tmp_path / "x.h5"))
    assert not os.path.exists(tmp_path / "x.h5")


def test_killed_job_leaves_no_complete_looking_file(tmp_path):
    s = load(write_study(tmp_path, ranks=(1,), t_sim=200000.0, n_rec=2000))
    p = s.points[0]
    d = prepare(s, str(tmp_path / "s"))
    out = result_h5(d, p)
    proc = subprocess.Popen([sys.executable, "-m", "eprop_dist", "scaling", "worker", point_json(d, p),
                             "--out", out], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=ROOT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        for line in proc.stdout:                  # wait until it is inside the timed simulation
            if "simulating" in line or time.monotonic() > deadline:
                break
        assert proc.poll() is None, "worker ended before it could be killed"
        time.sleep(0.3)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert not os.path.exists(out) and point_files(d) == []
    with pytest.raises(StudyError, match="not found"):
        read_point(out)


def test_unusable_output_refused_before_work(tmp_path, monkeypatch):
    from eprop_dist.scaling import worker
    s = load(write_study(tmp_path, ranks=(1,)))
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    built = []
    monkeypatch.setattr(worker, "build_network", lambda *a: built.append(1))
    with pytest.raises(StudyError, match="cannot create the output folder"):
        run_point(s.points[0], str(blocker / "sub" / "x.h5"), progress=lambda *a, **k: None)
    assert built == []                          # refused before the network was built
