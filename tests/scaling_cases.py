"""Shared helpers for the scaling-study tests (tests/unit/test_scaling_*.py, tests/slurm)."""
import os
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STUDIES = os.path.join(ROOT, "launch", "studies")

TINY = """
[study]
name = "{name}"
kind = "{kind}"
ranks = {ranks}
t_sim = {t_sim}
warmup = 20.0
seed = 3

[network]
n_rec = {n_rec}
n_in = 40
k_rec = 20
k_in = 10
n_out = 3
k_out = 20
feedback_outdegree = {fb}
rate = 50.0
delay = {delay}

[slurm]
time = "00:05:00"
launcher = "{launcher}"
"""


def write_study(tmp_path, name="tiny", kind="strong", ranks=(1, 2), t_sim=40.0, n_rec=200, fb=0, delay=1.0,
                launcher="srun", extra=""):
    p = tmp_path / f"{name}.toml"
    p.write_text(textwrap.dedent(TINY.format(name=name, kind=kind, ranks=list(ranks), t_sim=t_sim, n_rec=n_rec,
                                             fb=fb, delay=delay, launcher=launcher)) + extra)
    return str(p)
