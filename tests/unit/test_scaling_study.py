"""Study files: every bad key or value is named, defaults and resolved points are right."""
import os

import pytest

from eprop_dist.scaling import StudyError, load, validate
from scaling_cases import STUDIES, write_study

GOOD = {"study": {"name": "s", "kind": "strong", "ranks": [1, 2]}}


def _with(sec, key, value):
    raw = {s: dict(v) for s, v in GOOD.items()}
    raw.setdefault(sec, {})[key] = value
    return raw


@pytest.mark.parametrize("sec,key,value,fragment", [
    ("study", "name", "has space", "[study] name = 'has space' is invalid"),
    ("study", "kind", "medium", "[study] kind = 'medium' is invalid"),
    ("study", "ranks", [], "[study] ranks = [] is invalid"),
    ("study", "ranks", [1, 1], "[study] ranks = [1, 1] is invalid"),
    ("study", "ranks", [0, 2], "[study] ranks = [0, 2] is invalid"),
    ("study", "nodes", [1, "x"], "[study] nodes = [1, 'x'] is invalid"),
    ("study", "scale", -1.0, "[study] scale = -1.0 is invalid"),
    ("study", "t_sim", 0, "[study] t_sim = 0 is invalid"),
    ("study", "warmup", -5.0, "[study] warmup = -5.0 is invalid"),
    ("study", "seed", 1.5, "[study] seed = 1.5 is invalid"),
    ("study", "colour", 1, "[study] unknown key 'colour'"),
    ("network", "n_rec", 0, "[network] n_rec = 0 is invalid"),
    ("network", "n_rec", True, "[network] n_rec = True is invalid"),
    ("network", "k_rec", -1, "[network] k_rec = -1 is invalid"),
    ("network", "rate", "fast", "[network] rate = 'fast' is invalid"),
    ("network", "delay", 0.0, "[network] delay = 0.0 is invalid"),
    ("network", "synapse", "stdp", "[network] synapse = 'stdp' is invalid"),
    ("network", "exchange", "bcast", "[network] exchange = 'bcast' is invalid"),
    ("network", "feedback_outdegree", -2, "[network] feedback_outdegree = -2 is invalid"),
    ("network", "neurons", 5, "[network] unknown key 'neurons'"),
    ("slurm", "time", "soon", "[slurm] time = 'soon' is invalid"),
    ("slurm", "mem", "lots", "[slurm] mem = 'lots' is invalid"),
    ("slurm", "cpus_per_task", 0, "[slurm] cpus_per_task = 0 is invalid"),
    ("slurm", "launcher", "aprun", "[slurm] launcher = 'aprun' is invalid"),
    ("slurm", "srun_mpi", "pmi 2", "[slurm] srun_mpi = 'pmi 2' is invalid"),
    ("slurm", "extra_sbatch", ["qos=x"], "[slurm] extra_sbatch = ['qos=x'] is invalid"),
    ("slurm", "extra_sbatch", ["--qos=a\nrm -rf /"], "[slurm] extra_sbatch"),
    ("slurm", "partition", "a\nb", "[slurm] partition = 'a\\nb' is invalid"),
    ("slurm", "env", {"1BAD": "x"}, "[slurm] env = {'1BAD': 'x'} is invalid"),
    ("slurm", "modules", "GCC", "[slurm] modules = 'GCC' is invalid"),
    ("slurm", "queue", "x", "[slurm] unknown key 'queue'"),
])
def test_bad_value_named(sec, key, value, fragment):
    with pytest.raises(StudyError) as e:
        validate(_with(sec, key, value))
    assert fragment in str(e.value)


def test_every_problem_named_at_once():
    raw = {"study": {"kind": "strong", "ranks": [1], "t_sim": -1}, "network": {"n_rec": "many"},
           "slurmm": {}}
    with pytest.raises(StudyError) as e:
        validate(raw)
    msg = str(e.value)
    for frag in ("unknown section [slurmm]", "[study] name is required", "[study] t_sim = -1 is invalid",
                 "[network] n_rec = 'many' is invalid"):
        assert frag in msg


@pytest.mark.parametrize("sec,key,value,fragment", [
    ("study", "t_sim", 10.5, "[study] t_sim = 10.5 ms is not a multiple of the window [network] delay = 1.0 ms"),
    ("study", "nodes", [1], "[study] nodes has 1 entries but ranks has 2"),
    ("study", "nodes", [2, 1], "[study] nodes[0] = 2 exceeds ranks[0] = 1"),
    ("network", "k_rec", 20000, "[network] k_rec = 20000 exceeds the 9999 possible recurrent sources"),
    ("network", "k_out", 20000, "[network] k_out = 20000 exceeds n_rec = 10000"),
    ("network", "cutoff", 2.5, "[network] cutoff = 2.5 ms is not a multiple of resolution = 1.0 ms"),
    ("network", "rate", 3.0, "[network] rate = 3.0 Hz"),
])
def test_cross_checks_named(sec, key, value, fragment):
    with pytest.raises(StudyError) as e:
        validate(_with(sec, key, value))
    assert fragment in str(e.value)


def test_tasks_per_node_too_small_named():
    raw = _with("study", "nodes", [1, 1])
    raw["slurm"] = {"tasks_per_node": 1}
    with pytest.raises(StudyError, match=r"nodes\[1\] = 1 x \[slurm\] tasks_per_node = 1 < ranks\[1\] = 2"):
        validate(raw)


def test_file_errors(tmp_path):
    with pytest.raises(StudyError, match="not found"):
        load(str(tmp_path / "nope.toml"))
    bad = tmp_path / "bad.toml"
    bad.write_text("[study\nname=")
    with pytest.raises(StudyError, match="is not valid TOML"):
        load(str(bad))


def test_strong_and_weak_points(tmp_path):
    s = load(write_study(tmp_path, kind="strong", ranks=(1, 2, 4), n_rec=300))
    assert [p.ranks for p in s.points] == [1, 2, 4]
    assert {p.network["n_rec"] for p in s.points} == {300}
    assert [p.tag for p in s.points] == ["p000_r1", "p001_r2", "p002_r4"]
    w = load(write_study(tmp_path, name="w", kind="weak", ranks=(1, 2, 4), n_rec=300))
    assert [p.network["n_rec"] for p in w.points] == [300, 600, 1200]
    assert [p.network["n_in"] for p in w.points] == [40, 80, 160]
    assert all(p.network["k_rec"] == 20 for p in w.points)       # degrees do not scale
    assert w.points[0].network["exchange"] == "alltoall"          # defaults filled in


def test_nodes_from_tasks_per_node(tmp_path):
    s = load(write_study(tmp_path, ranks=(1, 4, 6), extra="tasks_per_node = 4\n"))
    assert [p.nodes for p in s.points] == [1, 1, 2]


def test_jureca_configuration_expressible():
    s = load(os.path.join(STUDIES, "jureca_weak.toml"))
    assert s.study["kind"] == "weak"
    for p in s.points:
        units = p.ranks / 128
        n = p.network
        assert n["n_rec"] == 128000 * units and n["n_in"] == 1000 * units
        assert (n["k_rec"], n["k_in"], n["n_out"], n["k_out"], n["feedback_outdegree"]) == (10000, 100, 10, 1000, 100)
        assert n["rate"] == 5.0 and p.t_sim == 6000.0
        assert p.nodes == p.ranks // 128


def test_readme_study_snippet_is_valid():
    import re
    import tomllib
    from scaling_cases import ROOT
    text = open(os.path.join(ROOT, "README.md")).read().split("### Scaling studies", 1)[1]
    snippet = re.findall(r"```toml\n(.*?)```", text, re.S)[0]
    st, net, sl = validate(tomllib.loads(snippet))
    assert st["name"] == "example-strong" and net["n_rec"] == 10000 and sl["srun_mpi"] == "pmi2"
    for name in ("ci_strong", "ci_weak", "example_strong", "jureca_weak"):
        assert load(os.path.join(STUDIES, name + ".toml")).points
