"""Batch scripts of a multi-node study, parsed back as Slurm reads them."""
import json
import os
import shlex
import subprocess

import pytest

from eprop_dist.scaling import load
from eprop_dist.scaling.slurm import batch_script, parse_batch_script, submit
from scaling_cases import write_study

EXTRA = """partition = "dc-cpu"
account = "proj1"
tasks_per_node = 4
cpus_per_task = 2
mem = "64G"
constraint = "largemem"
extra_sbatch = ["--hint=nomultithread", "--qos=normal"]
venv = "/p/my venv/it's here"
modules = ["Stages/2024", "GCC"]
env = { OMP_NUM_THREADS = "2", WEIRD = "a b;$(rm -rf /)" }
"""


@pytest.fixture
def multinode(tmp_path):
    return load(write_study(tmp_path, ranks=(4, 8, 12), extra=EXTRA))


def test_sbatch_options_and_srun_line(multinode, tmp_path):
    d = str(tmp_path / "study dir")
    for p, nodes in zip(multinode.points, (1, 2, 3)):
        text = batch_script(multinode, d, p)
        assert text.startswith("#!/bin/bash\n")          # --wrap would run under dash
        got = parse_batch_script(text)
        o = got["sbatch"]
        assert o["--nodes"] == str(nodes) and o["--ntasks"] == str(p.ranks)
        assert o["--ntasks-per-node"] == "4" and o["--cpus-per-task"] == "2"
        assert o["--partition"] == "dc-cpu" and o["--account"] == "proj1"
        assert o["--mem"] == "64G" and o["--constraint"] == "largemem" and o["--time"] == "00:05:00"
        assert o["--hint"] == "nomultithread" and o["--qos"] == "normal"
        assert o["--output"] == f"logs/{p.tag}.%j.out"
        argv = got["launch"]
        assert argv[:5] == ["srun", "--mpi=pmi2", f"--nodes={nodes}", f"--ntasks={p.ranks}", "--cpus-per-task=2"]
        i = argv.index("worker")
        assert argv[i + 1] == f"points/{p.tag}.json" and argv[i + 2:] == ["--out", f"results/{p.tag}.h5"]
        assert argv[argv.index("-m") + 1] == "mpi4py"     # an error on one rank aborts the job


def test_values_quoted_for_the_shell(multinode, tmp_path):
    d = str(tmp_path / "study dir")
    text = batch_script(multinode, d, multinode.points[1])
    lines = text.splitlines()
    act = next(ln for ln in lines if ln.startswith(". "))
    assert shlex.split(act)[1] == "/p/my venv/it's here/bin/activate"
    assert shlex.split(next(ln for ln in lines if ln.startswith("export WEIRD=")))[1] == "WEIRD=a b;$(rm -rf /)"
    assert [shlex.split(ln)[2] for ln in lines if ln.startswith("module load")] == ["Stages/2024", "GCC"]
    assert shlex.split(next(ln for ln in lines if ln.startswith("cd ")))[1] == d
    # the script is valid bash, and its environment lines do what they say (run them without the launcher)
    assert subprocess.run(["bash", "-n"], input=text, text=True).returncode == 0
    env_lines = [ln for ln in lines if ln.startswith("export WEIRD=") or ln.startswith("export OMP")]
    out = subprocess.run(["bash", "-c", "\n".join(env_lines) + '\nprintf "%s|%s" "$WEIRD" "$OMP_NUM_THREADS"'],
                         capture_output=True, text=True).stdout
    assert out == "a b;$(rm -rf /)|2"


def test_mpiexec_launcher(tmp_path):
    s = load(write_study(tmp_path, ranks=(2,), launcher="mpiexec"))
    argv = parse_batch_script(batch_script(s, str(tmp_path), s.points[0]))["launch"]
    assert argv[:3] == ["mpiexec", "-n", "2"]


def test_dry_run_writes_scripts_and_points(multinode, tmp_path):
    d, jobs = submit(multinode, str(tmp_path / "out"), dry_run=True)
    assert jobs == {}
    for p in multinode.points:
        assert os.path.isfile(os.path.join(d, "scripts", p.tag + ".sbatch"))
        with open(os.path.join(d, "points", p.tag + ".json")) as f:
            back = json.load(f)
        assert back["ranks"] == p.ranks and back["network"] == p.network
    with open(os.path.join(d, "study.toml")) as f, open(multinode.path) as g:
        assert f.read() == g.read()
