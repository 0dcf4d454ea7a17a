"""Results on disk: one HDF5 file per run, written atomically (temporary name in the same folder, then
rename), so a crash never leaves a file that looks complete (DESIGN 7).  Under MPI only rank 0 writes
(every rank holds the same gathered record).

Layout of ``results.h5`` (every dataset has a ``units`` attribute):

=====================================  ==========================================================
attrs ``config``, ``provenance``       JSON: resolved configuration; version, git hash, ranks, host,
                                       Python, numpy, the learning rate actually used (``eta_train``)
``loss``                               loss of every evaluated phase, in phase order
``phases/{index,label,eta,loss,        per phase: label (training, validation, early-stopping,
accuracy,error}``                      test), learning rate set for it, loss, accuracy/error (NaN for
                                       regression)
``traces/<name>/{readout_signal,       readout and target signals (sample, step, readout) of the first
target_signal,time}``                  phase and the last phase of each label; attrs phase, label
``weights/{initial,final}/<proj>/      every e-prop connection: source and target gid, weight;
{source,target,weight}``               <proj> is in_rec, rec_rec, rec_out
``spikes/<population>/{timestamps,     SONATA spike layout (libsonata reads it): ms, node ids 0-based
node_ids}``                            within the population, attribute ``sorting`` = by_time
``timers``                             attrs: seconds per pipeline phase and per simulation phase
=====================================  ==========================================================
"""
from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys

import numpy as np

from ..errors import EpropError

SONATA_SORTING = {"none": 0, "by_id": 1, "by_time": 2}


def provenance(n_ranks=1, seeds=None, **extra):
    from .. import __version__
    try:
        git = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=os.path.dirname(__file__)).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        git = None
    d = {"version": __version__, "git_hash": git, "ranks": n_ranks, "host": socket.gethostname(),
         "python": sys.version.split()[0], "numpy": np.__version__, "platform": platform.platform(),
         "seeds": seeds}
    d.update(extra)
    return d


def check_writable(folder, overwrite=False):
    """Before any work: the run folder can be created and written, and holds no earlier run (unless
    `overwrite`).  Raises EpropError naming the folder; leaves nothing behind."""
    folder = os.path.abspath(os.fspath(folder))
    target = os.path.join(folder, "results.h5")
    if os.path.exists(target) and not overwrite:
        raise EpropError(f"output folder {folder} already holds a run (results.h5); choose another --out or "
                         "pass --overwrite")
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise EpropError(f"output folder {folder} exists and is not a folder")
    made = []
    try:
        p = folder
        while not os.path.exists(p):
            made.append(p)
            p = os.path.dirname(p)
        os.makedirs(folder, exist_ok=True)
        probe = os.path.join(folder, f".eprop-dist-write-test{os.getpid()}")
        with open(probe, "wb") as f:
            f.write(b"x")
        os.unlink(probe)
    except OSError as e:
        for d in made:          # deepest first: remove what we created
            try:
                os.rmdir(d)
            except OSError:
                pass
        raise EpropError(f"output folder {folder} is not writable: {e}") from None
    for d in made:              # created only to test; the run creates it again when it writes
        try:
            os.rmdir(d)
        except OSError:
            pass
    return folder


def _ds(g, name, data, units, **attrs):
    d = g.create_dataset(name, data=data)
    d.attrs["units"] = units
    for k, v in attrs.items():
        d.attrs[k] = v
    return d


def write_results(path, *, config, loss, spikes=None, timers=None, n_ranks=1, extra=None, record=None,
                  prov_extra=None):
    """Write results.h5 atomically.  Raises EpropError (nothing left behind) on any I/O failure.

    `record` is the dict returned by tasks.common.run_pipeline (phases, traces, weights, spikes)."""
    import h5py
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(d, f".{os.path.basename(path)}.tmp{os.getpid()}")
    try:
        os.makedirs(d, exist_ok=True)
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = "eprop-dist results 2"
            f.attrs["config"] = json.dumps(config, default=_jsonable)
            f.attrs["provenance"] = json.dumps(provenance(n_ranks, config.get("seed"), **(prov_extra or {})),
                                               default=_jsonable)
            _ds(f, "loss", np.asarray(loss, dtype=float), "1", description="loss per evaluated phase")
            if record is not None:
                _write_record(f, record)
            if spikes:
                _write_spikes(f, spikes)
            g = f.create_group("timers")
            g.attrs["units"] = "s"
            for k, v in (timers or {}).items():
                g.attrs[k] = float(v)
            for k, v in (extra or {}).items():
                _ds(f, k, np.asarray(v), "1")
        os.replace(tmp, path)
    except (OSError, ValueError, TypeError) as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise EpropError(f"could not write results to {path}: {e}") from e
    return path


def _write_record(f, r):
    import h5py
    ph = r["phases"]
    g = f.create_group("phases")
    _ds(g, "index", np.array([p["phase"] for p in ph], dtype=np.int64), "1")
    _ds(g, "label", np.array([p["label"] for p in ph], dtype=h5py.string_dtype()), "1")
    _ds(g, "eta", np.array([p["eta"] for p in ph], dtype=float), "1", description="learning rate set for the phase")
    _ds(g, "loss", np.array([p["loss"] for p in ph], dtype=float), "1")
    nan = float("nan")
    _ds(g, "accuracy", np.array([nan if p["accuracy"] is None else p["accuracy"] for p in ph]), "1")
    _ds(g, "error", np.array([nan if p["error"] is None else p["error"] for p in ph]), "1")
    g = f.create_group("traces")
    for name, (m, label, y, ys) in r["traces"].items():
        t = g.create_group(name)
        t.attrs["phase"] = int(m)
        t.attrs["label"] = label
        _ds(t, "readout_signal", y, "1", dims="sample, step, readout")
        _ds(t, "target_signal", ys, "1", dims="sample, step, readout")
        _ds(t, "time", np.arange(1, y.shape[1] + 1, dtype=float), "ms", description="step within a sample")
    for when in ("initial", "final") if r["weights_initial"] else ():
        g = f.create_group(f"weights/{when}")
        for proj, w in r[f"weights_{when}"].items():
            p = g.create_group(proj)
            _ds(p, "source", np.asarray(w["source"], np.int64), "1", description="source gid")
            _ds(p, "target", np.asarray(w["target"], np.int64), "1", description="target gid")
            _ds(p, "weight", np.asarray(w["weight"], float), "pA")
            for k in ("source_population", "target_population", "source_first_gid", "target_first_gid"):
                p.attrs[k] = w[k]


def _write_spikes(f, spikes):
    import h5py
    sort_t = h5py.enum_dtype(SONATA_SORTING, basetype="u1")
    for pop, ev in spikes.items():
        g = f.create_group(f"spikes/{pop}")
        t = np.asarray(ev["times"], dtype=float)
        ids = np.asarray(ev["senders"], dtype=np.int64) - int(ev.get("first_gid", 1))
        o = np.lexsort((ids, t))
        g.attrs.create("sorting", SONATA_SORTING["by_time"], dtype=sort_t)
        _ds(g, "timestamps", t[o], "ms")
        _ds(g, "node_ids", ids[o].astype(np.uint64), "1", description="0-based within the population")
        if "n_nodes" in ev:
            g.attrs["n_nodes"] = int(ev["n_nodes"])
            g.attrs["first_gid"] = int(ev["first_gid"])


def read_results(path):
    """The results file as plain Python/numpy objects."""
    import h5py
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise EpropError(f"cannot read results {path}: {e}") from None
    with f:
        out = {"config": json.loads(f.attrs["config"]), "provenance": json.loads(f.attrs["provenance"]),
               "loss": f["loss"][()]}
        if "phases" in f:
            out["phases"] = {k: (f["phases"][k].asstr()[()] if k == "label" else f["phases"][k][()])
                             for k in f["phases"]}
        if "traces" in f:
            out["traces"] = {n: {k: g[k][()] for k in g} | {"phase": int(g.attrs["phase"]),
                                                           "label": str(g.attrs["label"])}
                             for n, g in f["traces"].items()}
        if "weights" in f:
            out["weights"] = {when: {p: {k: g[k][()] for k in g} for p, g in f["weights"][when].items()}
                              for when in f["weights"]}
        if "spikes" in f:
            out["spikes"] = {p: {"times": f[f"spikes/{p}/timestamps"][()], "node_ids": f[f"spikes/{p}/node_ids"][()],
                                 "senders": f[f"spikes/{p}/node_ids"][()].astype(np.int64)
                                 + int(f[f"spikes/{p}"].attrs.get("first_gid", 0))}
                             for p in f["spikes"]}
        if "timers" in f:
            out["timers"] = {k: v for k, v in f["timers"].attrs.items() if k != "units"}
    return out


def _jsonable(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)
