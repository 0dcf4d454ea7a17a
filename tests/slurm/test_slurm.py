"""Studies through a real Slurm (single node on localhost, launch/local_slurm.sh)."""
import os
import subprocess
import time

import pytest

from eprop_dist.scaling import StudyError, load
from eprop_dist.scaling.analyze import analyze
from eprop_dist.scaling.folder import read_jobs, result_h5
from eprop_dist.scaling.local import run_local
from eprop_dist.scaling.results import point_files, read_point
from eprop_dist.scaling.slurm import job_state, submit, wait
from scaling_cases import write_study

pytestmark = pytest.mark.timeout(600)


@pytest.mark.parametrize("launcher", ["srun", "mpiexec"])
def test_local_and_slurm_give_the_same_counts(slurm, tmp_path, launcher):
    s = load(write_study(tmp_path, name=f"same-{launcher}", ranks=(1, 2), launcher=launcher, fb=7))
    d_slurm, jobs = submit(s, str(tmp_path / "slurm"))
    rows = wait(s, d_slurm, timeout=300, poll=0.5)
    assert [r["state"] for r in rows] == ["COMPLETED", "COMPLETED"], rows
    d_local = run_local(s, str(tmp_path / "local"), report=lambda *a: None)
    for p in s.points:
        a, b = read_point(result_h5(d_slurm, p)), read_point(result_h5(d_local, p))
        for key in ("spikes", "syn_events", "ep_events", "n_synapses", "n_neurons"):
            assert a["summary"][key] == b["summary"][key], (p.tag, key)
        assert a["summary"]["spikes"] > 0 and a["summary"]["syn_events"] > 0
        pa = a["provenance"]
        assert pa["launcher"] == "slurm" and pa["slurm_job_id"] == jobs[p.tag]["job_id"]
        assert int(pa["slurm_ntasks"]) == p.ranks == pa["n_ranks"] and pa["cpus_per_task"] == "1"
        assert b["provenance"]["launcher"] == "local"
    tab = analyze(s, d_slurm, plots=False)["table"]
    assert list(tab["columns"]["ranks"]) == [1, 2]


def test_cancelled_job_leaves_no_complete_file(slurm, tmp_path):
    s = load(write_study(tmp_path, name="killed", ranks=(1,), t_sim=200000.0, n_rec=2000))
    d, jobs = submit(s, str(tmp_path / "k"))
    p = s.points[0]
    jid = jobs[p.tag]["job_id"]
    log = os.path.join(d, "logs", f"{p.tag}.{jid}.out")
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:            # until the worker is inside the timed part
        if os.path.exists(log) and "simulating" in open(log).read():
            break
        assert job_state(jid)[0] in ("PENDING", "RUNNING", "CONFIGURING"), open(log).read()
        time.sleep(0.3)
    else:
        pytest.fail("the job never reached the simulation")
    subprocess.run(["scancel", jid], check=True, timeout=30)
    rows = wait(s, d, timeout=120, poll=0.5)
    assert rows[0]["state"] in ("CANCELLED", "GONE")
    assert point_files(d) == [] and not os.path.exists(result_h5(d, p))
    with pytest.raises(StudyError, match="p000_r1"):
        analyze(s, d, plots=False)


def test_impossible_request_is_refused_at_once(slurm, tmp_path):
    s = load(write_study(tmp_path, name="too-big", ranks=(4096,), n_rec=5000))
    with pytest.raises(StudyError, match="sbatch refused point p000_r4096"):
        submit(s, str(tmp_path / "big"))
    assert read_jobs(str(tmp_path / "big")) == {}
