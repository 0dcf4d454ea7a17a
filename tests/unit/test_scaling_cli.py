"""`eprop-dist scaling ...` / `eprop-dist slurm ...`: bad input is named before any work, exit code 2."""
import os
import subprocess
import sys

from scaling_cases import ROOT, write_study


def _cli(*args, env=None):
    e = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "eprop_dist", *args], capture_output=True, text=True, cwd=ROOT,
                          env=e, stdin=subprocess.DEVNULL, timeout=120)


def test_validate_names_bad_keys(tmp_path):
    p = write_study(tmp_path, extra="nodez = 3\n")
    r = _cli("scaling", "validate", p)
    assert r.returncode == 2 and "[slurm] unknown key 'nodez'" in r.stderr
    r = _cli("scaling", "validate", write_study(tmp_path, name="ok", ranks=(1, 2, 4)))
    assert r.returncode == 0 and "3 point(s)" in r.stdout and "p002_r4: 4 rank(s)" in r.stdout


def test_submit_without_slurm_is_a_clear_error(tmp_path):
    p = write_study(tmp_path)
    r = _cli("slurm", "submit", p, "--out", str(tmp_path / "o"), env={"PATH": os.path.dirname(sys.executable)})
    assert r.returncode == 2 and "'sbatch' not found" in r.stderr
    assert not os.path.exists(tmp_path / "o")              # checked before any work


def test_analyze_of_a_folder_that_is_no_study(tmp_path):
    r = _cli("scaling", "analyze", str(tmp_path))
    assert r.returncode == 2 and "is not a study folder (no study.toml)" in r.stderr


def test_run_local_then_analyze(tmp_path):
    p = write_study(tmp_path, ranks=(1,), t_sim=20.0)
    r = _cli("scaling", "run", p, "--local", "--out", str(tmp_path / "o"), "--no-plots")
    assert r.returncode == 0, r.stderr
    assert "| 1 | 1 | 243 |" in r.stdout and os.path.isfile(tmp_path / "o" / "scaling.h5")
    r = _cli("slurm", "collect", str(tmp_path / "o"))
    assert r.returncode == 0 and "| 1 | 1 | 243 |" in r.stdout
