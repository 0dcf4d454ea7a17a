"""analyze on known point files: the expected speed-up table, markdown, HDF5 table, plots; incomplete
and foreign files are refused."""
import os

import h5py
import numpy as np
import pytest

from eprop_dist.scaling import StudyError, load
from eprop_dist.scaling.analyze import PLOTS, analyze
from eprop_dist.scaling.folder import prepare, result_h5
from eprop_dist.scaling.results import read_point, read_table, write_point
from scaling_cases import write_study

PH = ("update", "deliver", "eprop", "communicate", "record")


def _rows(ranks, t_sim_s):
    return [{"rank": r, "host": f"n{r // 2}", "t_build": 1.0, "t_sim": t_sim_s * (1.0 if r == 0 else 0.9),
             "timers": {p: 0.1 * (i + 1) for i, p in enumerate(PH)}, "peak_rss_MiB": 100.0 + r,
             "rss_after_build_MiB": 90.0, "n_syn": 1000, "syn_bytes": 81000, "neuron_bytes": 4000,
             "other_bytes": 10, "n_local_neurons": 10, "spikes": 50, "syn_events": 5000, "ep_events": 4000}
            for r in range(ranks)]


def _fill(study, d, times):
    for p, t in zip(study.points, times):
        # t_sim = 40 ms: a wall time of t * 0.04 s is t s per biological s
        write_point(result_h5(d, p), p, {"n_ranks": p.ranks, "hosts": ["n0"]}, _rows(p.ranks, t * 0.04),
                    n_nodes=243, D=1)


def test_strong_speedup_table(tmp_path):
    s = load(write_study(tmp_path, kind="strong", ranks=(1, 2, 4)))
    d = prepare(s, str(tmp_path / "s"))
    _fill(s, d, (10.0, 5.5, 3.125))
    res = analyze(s, d)
    c = res["table"]["columns"]
    np.testing.assert_allclose(c["sim_s_per_bio_s"], [10.0, 5.5, 3.125])
    np.testing.assert_allclose(c["speedup"], [1.0, 10 / 5.5, 3.2])
    np.testing.assert_allclose(c["efficiency"], [1.0, 10 / 11, 0.8])
    np.testing.assert_allclose(c["ideal_s_per_bio_s"], [10.0, 5.0, 2.5])
    assert list(c["spikes"]) == [50, 100, 200] and list(c["n_synapses"]) == [1000, 2000, 4000]
    np.testing.assert_allclose(c["peak_rss_MiB_max"], [100, 101, 103])
    md = open(os.path.join(d, "scaling.md")).read()
    assert "| 2 | 1 | 243 | 2000 | 5.500 | 5.000 | 1.82 | 91% |" in md
    assert "| 4 | 1 | 243 | 4000 | 3.125 | 2.500 | 3.20 | 80% |" in md
    back = read_table(os.path.join(d, "scaling.h5"))
    np.testing.assert_allclose(back["columns"]["speedup"], c["speedup"])
    with h5py.File(os.path.join(d, "scaling.h5")) as f:
        assert [x.decode() for x in f["sources"][()]] == [p.tag + ".h5" for p in s.points]
    for name in PLOTS:
        path = os.path.join(d, "plots", name)
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n" and os.path.getsize(path) > 5000


def test_weak_efficiency_table(tmp_path):
    s = load(write_study(tmp_path, name="w", kind="weak", ranks=(1, 2, 4)))
    d = prepare(s, str(tmp_path / "w"))
    _fill(s, d, (2.0, 2.5, 4.0))
    c = analyze(s, d, plots=False)["table"]["columns"]
    np.testing.assert_allclose(c["efficiency"], [1.0, 0.8, 0.5])
    np.testing.assert_allclose(c["speedup"], [1.0, 1.6, 2.0])
    np.testing.assert_allclose(c["ideal_s_per_bio_s"], [2.0, 2.0, 2.0])
    assert not os.path.exists(os.path.join(d, "plots"))


def test_missing_and_incomplete_points_refused(tmp_path):
    s = load(write_study(tmp_path, ranks=(1, 2)))
    d = prepare(s, str(tmp_path / "s"))
    _fill(s, d, (10.0, 5.0))
    with h5py.File(result_h5(d, s.points[1]), "r+") as f:
        f.attrs["complete"] = 0                       # as if the writer had died before the last step
    with pytest.raises(StudyError, match="is incomplete"):
        read_point(result_h5(d, s.points[1]))
    with pytest.raises(StudyError, match="1 point.s. have no complete result: p001_r2"):
        analyze(s, d, plots=False)
    os.unlink(result_h5(d, s.points[1]))
    open(result_h5(d, s.points[1]) + ".tmp.123", "w").write("partial")   # a killed writer's leftover
    with pytest.raises(StudyError, match="p001_r2"):
        analyze(s, d, plots=False)
    tab = analyze(s, d, plots=False, allow_missing=True)["table"]
    assert list(tab["columns"]["ranks"]) == [1]


def test_writer_failure_leaves_no_file(tmp_path, monkeypatch):
    s = load(write_study(tmp_path, ranks=(1,)))
    d = prepare(s, str(tmp_path / "s"))
    rows = _rows(1, 0.4)
    del rows[0]["rss_after_build_MiB"]                # the writer fails half-way (file already open)
    with pytest.raises(KeyError):
        write_point(result_h5(d, s.points[0]), s.points[0], {}, rows, n_nodes=1, D=1)
    assert os.listdir(os.path.join(d, "results")) == []


def test_foreign_file_refused(tmp_path):
    p = tmp_path / "x.h5"
    with h5py.File(p, "w") as f:
        f.attrs["format"] = "something else"
    with pytest.raises(StudyError, match="not a scaling point file"):
        read_point(str(p))
