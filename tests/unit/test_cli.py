"""The eprop-dist command: subcommands, the old shortcuts, config files, and errors that leave nothing
behind (the task runs themselves: test_tasks.py)."""
import os

import numpy as np
import pytest

from eprop_dist.cli import build_parser, main
from eprop_dist.io import read_results


def test_subcommands_and_tasks():
    p = build_parser()
    a = p.parse_args(["train"])
    assert a.task == "sine_waves" and a.out == "results" and not a.overwrite and not a.quiet
    a = p.parse_args(["train", "nmnist", "--family", "eprop_plus", "--set", "seq=10", "--set", "n_rec=3"])
    assert a.task == "nmnist" and a.set == ["seq=10", "n_rec=3"]
    with pytest.raises(SystemExit):
        p.parse_args(["train", "mnist"])
    with pytest.raises(SystemExit):
        p.parse_args(["train", "--family", "tf"])
    assert p.parse_args(["plot", "d"]).run_dir == "d"


def test_shortcuts_write_results(tmp_path, capsys):
    assert main(["train", "--n-iter", "2", "--seq", "200", "--set", "n_rec=10", "--set", "n_in=10",
                 "--out", str(tmp_path)]) == 0
    cap = capsys.readouterr()
    assert "phase    1/2" in cap.err and "phase    2/2" in cap.err
    r = read_results(tmp_path / "results.h5")
    assert r["loss"].shape == (2,) and np.all(np.isfinite(r["loss"])) and np.all(r["loss"] > 0)
    assert r["config"]["n_iter"] == 2 and r["config"]["seq"] == 200
    assert r["provenance"]["ranks"] == 1 and r["provenance"]["version"]
    assert r["spikes"]["rec"]["times"].size > 0
    assert {"kernel_update", "kernel_deliver", "kernel_eprop", "training", "build", "total"} <= set(r["timers"])
    assert f"{r['loss'][1]:.6f}" in cap.err


def test_config_file_and_errors(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('n_iter = 1\nseq = 200\nn_rec = 10\nneuron_model = "eprop_iaf_adapt"\n')
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    assert read_results(tmp_path / "o" / "results.h5")["config"]["neuron_model"] == "eprop_iaf_adapt"
    bad = tmp_path / "bad.toml"
    bad.write_text("n_iter = 1\nlearning_rate = 3\n")
    assert main(["train", "--config", str(bad), "--out", str(tmp_path / "x")]) == 2
    assert "unknown config key 'learning_rate'" in capsys.readouterr().err
    bad.write_text("n_iter = [1\n")
    assert main(["train", "--config", str(bad), "--out", str(tmp_path / "x")]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    assert main(["train", "--config", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "x")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["train", "--n-iter", "1", "--seq", "200", "--neuron-model", "lif", "--out", str(tmp_path / "x")]) == 2
    assert "config key 'neuron_model' = 'lif'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_unwritable_output_leaves_nothing(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["train", "--n-iter", "1", "--seq", "200", "--out", str(blocker / "sub")]) == 2
    assert "is not writable" in capsys.readouterr().err
    assert os.listdir(tmp_path) == ["file"]
