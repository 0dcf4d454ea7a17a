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
    """(Issue 9's test_train_writes_results.)  The command trains: the loss written to results.h5 falls
    (12 sequences of 200 ms, 30 neurons: 28.5 -> 12.3), and the log shows every phase's loss."""
    assert main(["train", "--n-iter", "12", "--seq", "200", "--eta", "1e-4", "--set", "n_rec=30",
                 "--set", "n_in=30", "--out", str(tmp_path)]) == 0
    cap = capsys.readouterr()
    assert "phase    1/12" in cap.err and "phase   12/12" in cap.err
    r = read_results(tmp_path / "results.h5")
    assert r["loss"].shape == (12,) and np.all(np.isfinite(r["loss"])) and np.all(r["loss"] > 0)
    assert r["loss"][-1] < 0.6 * r["loss"][0] and np.mean(r["loss"][-3:]) < np.mean(r["loss"][:3]), r["loss"]
    assert r["config"]["n_iter"] == 12 and r["config"]["seq"] == 200 and r["config"]["eta"] == 1e-4
    assert r["provenance"]["ranks"] == 1 and r["provenance"]["version"]
    assert r["spikes"]["rec"]["times"].size > 0
    assert {"kernel_update", "kernel_deliver", "kernel_eprop", "training", "build", "total"} <= set(r["timers"])
    assert all(f"loss {x:.6f}" in cap.err for x in r["loss"])


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


# ---- issue 9: bad inputs end with a message naming the file or key, exit code 2, nothing written ----
def _refused(args, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["train", *args, "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert not out.exists() and "Traceback" not in err
    return err


def test_config_folder_missing_binary_and_empty_name(tmp_path, capsys):
    (tmp_path / "folder.toml").mkdir()
    assert "config file" in _refused(["--config", str(tmp_path / "folder.toml")], tmp_path, capsys)
    assert "is a directory" in _refused(["--config", str(tmp_path / "folder.toml")], tmp_path, capsys)
    assert "not found" in _refused(["--config", str(tmp_path / "nope.toml")], tmp_path, capsys)
    binary = tmp_path / "weights.npy"
    binary.write_bytes(b"\x93NUMPY\x01\x00v\x00{'descr': '<f8'}\xff\xfe\x00\x81")
    assert f"config file {binary} is not a TOML text file" in _refused(["--config", str(binary)], tmp_path, capsys)
    text = tmp_path / "notes.txt"
    text.write_text("learning rate: 0.1\n")
    assert f"config file {text} is not valid TOML" in _refused(["--config", str(text)], tmp_path, capsys)
    assert "--config: empty file name" in _refused(["--config", ""], tmp_path, capsys)
    table = tmp_path / "t.toml"
    table.write_text("[net]\nn_rec = 3\n")
    assert "table [net] is not supported" in _refused(["--config", str(table)], tmp_path, capsys)


@pytest.mark.parametrize("seed,msg", [(2**32, "less than or equal to 4294967295"), (-1, "greater than or equal to 0"),
                                      (10**20, "less than or equal to 4294967295"), (1.5, "valid integer")])
def test_seed_outside_the_rng_range_is_refused(seed, msg, tmp_path, capsys):
    """The task seeds numpy's legacy generator (0 .. 2**32 - 1, NEST's examples) and the core with seed + 1."""
    for args in (["--set", f"seed={seed}"], ["--seed", str(seed)] if isinstance(seed, int) else ["--set", f"seed={seed}"]):
        err = _refused(args, tmp_path, capsys)
        assert f"config key 'seed' = {seed!r}" in err and msg in err


def test_seed_at_the_top_of_the_range_runs(tmp_path):
    assert main(["train", "--n-iter", "1", "--seq", "200", "--set", "n_rec=4", "--set", "n_in=4",
                 "--seed", str(2**32 - 1), "--out", str(tmp_path), "--quiet"]) == 0
    assert read_results(tmp_path / "results.h5")["config"]["seed"] == 2**32 - 1


@pytest.mark.parametrize("task,sets,keys", [
    ("sine_waves", ["n_iter=1000000000"], "lower 'n_iter' or 'seq'"),
    ("sine_waves", ["n_iter=100000000", "seq=100000"], "lower 'n_iter' or 'seq'"),
    ("evidence_accumulation", ["n_iter_train=100000000"], "lower 'n_iter_train' or 'batch_size'"),
    ("digits", ["batch_size=1000000000"], "lower 'n_iter_train' or 'batch_size' or 'seq'"),
])
def test_recording_that_cannot_fit_is_refused_up_front(task, sets, keys, tmp_path, capsys):
    import time
    t0 = time.perf_counter()
    err = _refused([task] + [x for s in sets for x in ("--set", s)], tmp_path, capsys)
    assert time.perf_counter() - t0 < 30          # refused before any build (it used to run, then MemoryError)
    assert "readout samples" in err and "GiB" in err and keys in err and "memory of this machine" in err


def test_memory_estimate_counts_the_samples_the_run_keeps():
    """The estimate counts what the compact multimeter store holds at the end of a small run (a row per
    sampled step of every phase, its bytes per row as the store lays them out)."""
    from eprop_dist import config as C, mm_store
    from eprop_dist.api import Kernel
    from eprop_dist.tasks import sine_waves
    assert C.RAW_PEAK_BYTES == 3 * 20 * mm_store.RAW_CAP
    cfg = C.resolve("sine_waves", None, {}, {"n_iter": 3, "seq": 200, "n_rec": 4, "n_in": 4})
    n, phases, P, n_out, _ = C.recorded_samples(cfg)
    assert (phases, P, n_out) == (4, 200, 1) and n == phases * P * n_out * 2
    k = Kernel()
    sine_waves.run(cfg, k)
    sim = k._sim
    sim.mm_store.drain(sim.core)
    tabs = [t for t in sim.mm_store.tables.values() if t.fields.size == 2]
    assert len(tabs) == 1
    tab = tabs[0]
    assert phases * P - 2 * P < tab.n <= phases * P          # the final phase is simulated only to its evaluation
    per_row = tab.nbytes() / (len(tab.t) * mm_store.CHUNK)
    assert per_row == C.ROW_BYTES + n_out * (C.SENDER_BYTES + 2 * C.VALUE_BYTES)
    need = C.recording_bytes(phases, P, n_out)
    assert C.check_memory(cfg, available=10**12) == need
    with pytest.raises(C.ConfigError, match=r"lower 'n_iter' or 'seq'"):
        C.check_memory(cfg, available=need - 1)
