"""Results on disk: one HDF5 file per run, written atomically (temporary name, then rename), so a
crash never leaves a file that looks complete (DESIGN 7).

Layout of ``results.h5``: attrs ``config`` (JSON), ``provenance`` (JSON: version, git hash, ranks,
host, python, numpy); datasets ``loss`` (per iteration); ``spikes/<population>/{timestamps,node_ids}``
(SONATA layout, ms and node ids); group ``timers`` (seconds per phase, attrs).
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


def provenance(n_ranks=1, seeds=None):
    from .. import __version__
    try:
        git = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=os.path.dirname(__file__)).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        git = None
    return {"version": __version__, "git_hash": git, "ranks": n_ranks, "host": socket.gethostname(),
            "python": sys.version.split()[0], "numpy": np.__version__, "platform": platform.platform(),
            "seeds": seeds}


def write_results(path, *, config, loss, spikes=None, timers=None, n_ranks=1, extra=None):
    """Write results.h5 atomically.  Raises EpropError (nothing left behind) on any I/O failure."""
    import h5py
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(d, f".{os.path.basename(path)}.tmp{os.getpid()}")
    try:
        os.makedirs(d, exist_ok=True)
        with h5py.File(tmp, "w") as f:
            f.attrs["config"] = json.dumps(config, default=_jsonable)
            f.attrs["provenance"] = json.dumps(provenance(n_ranks, config.get("seed")), default=_jsonable)
            f.create_dataset("loss", data=np.asarray(loss, dtype=float))
            if spikes is not None:
                for pop, ev in spikes.items():
                    g = f.create_group(f"spikes/{pop}")
                    g.create_dataset("timestamps", data=np.asarray(ev["times"], dtype=float))
                    g.create_dataset("node_ids", data=np.asarray(ev["senders"], dtype=np.int64))
                    g.attrs["units"] = "ms"
            if timers:
                g = f.create_group("timers")
                for k, v in timers.items():
                    g.attrs[k] = float(v)
            for k, v in (extra or {}).items():
                f.create_dataset(k, data=np.asarray(v))
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise EpropError(f"could not write results to {path}: {e}") from e
    return path


def read_results(path):
    import h5py
    with h5py.File(path, "r") as f:
        out = {"config": json.loads(f.attrs["config"]), "provenance": json.loads(f.attrs["provenance"]),
               "loss": f["loss"][()]}
        if "spikes" in f:
            out["spikes"] = {p: {"times": f[f"spikes/{p}/timestamps"][()], "senders": f[f"spikes/{p}/node_ids"][()]}
                             for p in f["spikes"]}
        if "timers" in f:
            out["timers"] = dict(f["timers"].attrs)
    return out


def _jsonable(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)
