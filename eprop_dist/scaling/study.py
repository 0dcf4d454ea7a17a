"""Scaling-study files (TOML): schema, validation and the resolved points.

A study names the benchmark network (scaled by one size factor), the kind of sweep, the rank and
node counts, the biological time, and the Slurm resources::

    [study]
    name = "strong-1e4"
    kind = "strong"            # strong: fixed size, ranks vary; weak: size = scale * ranks
    ranks = [1, 2, 4]
    nodes = [1, 1, 1]          # optional, one per rank count (default: ceil(ranks / tasks_per_node))
    scale = 1.0                # size factor (strong: of the whole network; weak: per rank)
    t_sim = 100.0              # timed biological ms
    warmup = 100.0             # untimed biological ms before the timed part
    seed = 1

    [network]                  # one size unit (scale = 1); n_rec and n_in scale, degrees do not
    n_rec = 10000
    n_in = 1000
    k_rec = 80
    k_in = 20
    n_out = 10
    k_out = 100
    feedback_outdegree = 0     # learning-signal connections per readout; 0 = all to all
    rate = 10.0                # Hz, fixed activity (ignore_and_spike)
    delay = 1.0                # ms, all spike / readout / learning-signal delays (window D)
    synapse = "eprop"          # eprop (e-prop+ synapses) | static
    cutoff = 100.0             # eprop_isi_trace_cutoff (ms)
    resolution = 1.0           # ms
    exchange = "alltoall"      # alltoall | allgather

    [slurm]
    partition = "batch"
    account = "proj"
    time = "00:30:00"
    tasks_per_node = 4
    cpus_per_task = 1
    mem = "8G"                 # per node (--mem)
    constraint = ""
    extra_sbatch = ["--qos=normal"]
    launcher = "srun"          # srun (--mpi=pmi2 by default) | mpiexec
    srun_mpi = "pmi2"
    venv = "/path/to/venv"     # activated in the batch script
    modules = ["GCC", "ParaStationMPI"]
    env = { OMP_NUM_THREADS = "1" }
    python = "python3"         # default: the interpreter that submits

Everything is checked before any work: every unknown key and every bad value is named in one error.
"""
from __future__ import annotations

import math
import os
import re
import sys
import tomllib
from dataclasses import dataclass

from ..errors import EpropError


class StudyError(EpropError, ValueError):
    """A study file is invalid; the message names every bad key or value."""


def _int_pos(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def _int_nonneg(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _num_pos(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def _num_nonneg(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0


def _str(v):
    return isinstance(v, str)


def _line(v):           # a value written into a batch script: one line, no NUL
    return isinstance(v, str) and "\n" not in v and "\r" not in v and "\0" not in v


def _name(v):
    return isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", v) is not None


def _time(v):           # Slurm time formats: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS
    return isinstance(v, str) and re.fullmatch(r"(\d+-)?\d+(:\d{1,2}){0,2}", v) is not None


def _mem(v):
    return isinstance(v, str) and re.fullmatch(r"\d+[KMGT]?", v) is not None


def _ranks(v):
    return isinstance(v, list) and len(v) >= 1 and all(_int_pos(x) for x in v) and len(set(v)) == len(v)


def _str_list(v):
    return isinstance(v, list) and all(_line(x) for x in v)


def _sbatch_list(v):
    return isinstance(v, list) and all(_line(x) and x.startswith("--") and "=" in x for x in v)


def _env(v):
    return isinstance(v, dict) and all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k) and _line(x)
                                       for k, x in v.items())


# section -> key -> (default, check, description); default None = required
SCHEMA = {
    "study": {
        "name": (None, _name, "a name of letters, digits, '_', '.', '-' (at most 64)"),
        "kind": (None, lambda v: v in ("strong", "weak"), "'strong' or 'weak'"),
        "ranks": (None, _ranks, "a list of distinct positive integers"),
        "nodes": ([], lambda v: isinstance(v, list) and all(_int_pos(x) for x in v),
                  "a list of positive integers, one per rank count"),
        "scale": (1.0, _num_pos, "a positive number"),
        "t_sim": (100.0, _num_pos, "a positive number of ms"),
        "warmup": (100.0, _num_nonneg, "a number of ms >= 0"),
        "seed": (1, _int_nonneg, "an integer >= 0"),
    },
    "network": {
        "n_rec": (10000, _int_pos, "a positive integer"),
        "n_in": (1000, _int_pos, "a positive integer"),
        "k_rec": (80, _int_nonneg, "an integer >= 0"),
        "k_in": (20, _int_nonneg, "an integer >= 0"),
        "n_out": (10, _int_pos, "a positive integer"),
        "k_out": (100, _int_pos, "a positive integer"),
        "feedback_outdegree": (0, _int_nonneg, "an integer >= 0 (0: all to all)"),
        "rate": (10.0, _num_pos, "a positive number of Hz"),
        "delay": (1.0, _num_pos, "a positive number of ms"),
        "synapse": ("eprop", lambda v: v in ("eprop", "static"), "'eprop' or 'static'"),
        "cutoff": (100.0, _num_pos, "a positive number of ms"),
        "resolution": (1.0, _num_pos, "a positive number of ms"),
        "exchange": ("alltoall", lambda v: v in ("alltoall", "allgather"), "'alltoall' or 'allgather'"),
    },
    "slurm": {
        "partition": ("", _line, "a string"),
        "account": ("", _line, "a string"),
        "time": ("00:30:00", _time, "a Slurm time such as '30', '00:30:00' or '1-00:00:00'"),
        "tasks_per_node": (0, _int_nonneg, "an integer >= 0 (0: all ranks of a point on one node)"),
        "cpus_per_task": (1, _int_pos, "a positive integer"),
        "mem": ("", lambda v: v == "" or _mem(v), "a Slurm memory size such as '8G' or '4000M'"),
        "constraint": ("", _line, "a string"),
        "extra_sbatch": ([], _sbatch_list, "a list of '--option=value' strings"),
        "launcher": ("srun", lambda v: v in ("srun", "mpiexec"), "'srun' or 'mpiexec'"),
        "srun_mpi": ("pmi2", lambda v: isinstance(v, str) and re.fullmatch(r"[a-z0-9_]+", v) is not None,
                     "an srun --mpi plugin name such as 'pmi2'"),
        "mpiexec": ("mpiexec", _line, "a command name or path"),
        "venv": ("", _line, "a path"),
        "modules": ([], _str_list, "a list of module names"),
        "env": ({}, _env, "a table of NAME = \"value\""),
        "python": ("", _line, "a python interpreter (default: the one that submits)"),
    },
}


@dataclass
class Point:
    """One resolved point of a study: everything a worker needs (written as JSON next to the
    batch script)."""
    index: int
    ranks: int
    nodes: int
    scale: float
    network: dict
    t_sim: float
    warmup: float
    seed: int
    study: str
    kind: str

    @property
    def tag(self) -> str:
        return f"p{self.index:03d}_r{self.ranks}"

    def as_dict(self) -> dict:
        return {"index": self.index, "ranks": self.ranks, "nodes": self.nodes, "scale": self.scale,
                "network": dict(self.network), "t_sim": self.t_sim, "warmup": self.warmup, "seed": self.seed,
                "study": self.study, "kind": self.kind}

    @classmethod
    def from_dict(cls, d: dict) -> "Point":
        keys = ("index", "ranks", "nodes", "scale", "network", "t_sim", "warmup", "seed", "study", "kind")
        missing = [k for k in keys if k not in d]
        if missing:
            raise StudyError(f"point file: missing key(s) {missing}")
        return cls(**{k: d[k] for k in keys})


@dataclass
class Study:
    path: str                 # the TOML file
    study: dict
    network: dict
    slurm: dict
    points: list

    @property
    def name(self):
        return self.study["name"]


def scaled_network(net: dict, scale: float) -> dict:
    """The network of one point: n_rec and n_in scaled (rounded, at least 1), the rest as given."""
    out = dict(net)
    out["n_rec"] = max(1, int(round(net["n_rec"] * scale)))
    out["n_in"] = max(1, int(round(net["n_in"] * scale)))
    return out


def validate(raw: dict, where: str = "study") -> tuple[dict, dict, dict]:
    """Check a parsed study against SCHEMA; returns the three sections with defaults filled in.
    Raises StudyError naming every problem at once."""
    errs = []
    if not isinstance(raw, dict):
        raise StudyError(f"{where}: not a table")
    for sec in raw:
        if sec not in SCHEMA:
            errs.append(f"unknown section [{sec}] (valid: {', '.join('[' + s + ']' for s in SCHEMA)})")
    out = {}
    for sec, keys in SCHEMA.items():
        got = raw.get(sec, {})
        if not isinstance(got, dict):
            errs.append(f"[{sec}] must be a table")
            got = {}
        res = {}
        for k in got:
            if k not in keys:
                errs.append(f"[{sec}] unknown key '{k}' (valid: {', '.join(keys)})")
        for k, (default, check, desc) in keys.items():
            if k not in got:
                if default is None:
                    errs.append(f"[{sec}] {k} is required ({desc})")
                else:
                    res[k] = default.copy() if isinstance(default, (list, dict)) else default
                continue
            v = got[k]
            if not check(v):
                errs.append(f"[{sec}] {k} = {v!r} is invalid: must be {desc}")
            res[k] = v
        out[sec] = res
    st, net, sl = out["study"], out["network"], out["slurm"]
    if not errs:
        errs += _cross_checks(st, net, sl)
    if errs:
        raise StudyError(f"{where}: " + "; ".join(errs))
    return st, net, sl


def _multiple(x, dt):
    q = x / dt
    return abs(q - round(q)) <= 1e-9 * max(1.0, abs(q))


def _cross_checks(st, net, sl):
    errs = []
    ranks = st["ranks"]
    if st["nodes"] and len(st["nodes"]) != len(ranks):
        errs.append(f"[study] nodes has {len(st['nodes'])} entries but ranks has {len(ranks)}")
    for i, r in enumerate(ranks):
        n = st["nodes"][i] if st["nodes"] and i < len(st["nodes"]) else None
        if n is not None and n > r:
            errs.append(f"[study] nodes[{i}] = {n} exceeds ranks[{i}] = {r} (every node needs a rank)")
        tpn = sl["tasks_per_node"]
        if n is not None and tpn and n * tpn < r:
            errs.append(f"[study] nodes[{i}] = {n} x [slurm] tasks_per_node = {tpn} < ranks[{i}] = {r}")
    dt = net["resolution"]
    for key in ("delay", "cutoff"):
        if not _multiple(net[key], dt):
            errs.append(f"[network] {key} = {net[key]} ms is not a multiple of resolution = {dt} ms")
    d = net["delay"]
    for key in ("t_sim", "warmup"):
        if not _multiple(st[key], d):
            errs.append(f"[study] {key} = {st[key]} ms is not a multiple of the window [network] delay = {d} ms")
    if not _multiple(1000.0 / net["rate"], dt):
        errs.append(f"[network] rate = {net['rate']} Hz: its interval 1000/rate ms is not a multiple of "
                    f"resolution = {dt} ms")
    for i, r in enumerate(ranks):
        scale = st["scale"] * (r if st["kind"] == "weak" else 1)
        n = scaled_network(net, scale)
        if net["k_rec"] > n["n_rec"] - 1:
            errs.append(f"[network] k_rec = {net['k_rec']} exceeds the {n['n_rec'] - 1} possible recurrent "
                        f"sources at ranks = {r}")
        if net["k_in"] > n["n_in"]:
            errs.append(f"[network] k_in = {net['k_in']} exceeds n_in = {n['n_in']} at ranks = {r}")
        if net["k_out"] > n["n_rec"]:
            errs.append(f"[network] k_out = {net['k_out']} exceeds n_rec = {n['n_rec']} at ranks = {r}")
        if net["feedback_outdegree"] > n["n_rec"]:
            errs.append(f"[network] feedback_outdegree = {net['feedback_outdegree']} exceeds n_rec = "
                        f"{n['n_rec']} at ranks = {r}")
    return errs


def load(path: str) -> Study:
    """Read and validate a study file (TOML, never executed)."""
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise StudyError(f"study file {path} not found") from None
    except IsADirectoryError:
        raise StudyError(f"study file {path} is a folder") from None
    except tomllib.TOMLDecodeError as e:
        raise StudyError(f"study file {path} is not valid TOML: {e}") from None
    st, net, sl = validate(raw, where=f"study file {path}")
    if not sl["python"]:
        sl["python"] = sys.executable
    return Study(os.path.abspath(path), st, net, sl, resolve_points(st, net, sl))


def resolve_points(st, net, sl) -> list:
    pts = []
    for i, r in enumerate(st["ranks"]):
        if st["nodes"]:
            nodes = st["nodes"][i]
        elif sl["tasks_per_node"]:
            nodes = -(-r // sl["tasks_per_node"])
        else:
            nodes = 1
        scale = st["scale"] * (r if st["kind"] == "weak" else 1)
        pts.append(Point(index=i, ranks=r, nodes=nodes, scale=float(scale), network=scaled_network(net, scale),
                         t_sim=float(st["t_sim"]), warmup=float(st["warmup"]), seed=int(st["seed"]),
                         study=st["name"], kind=st["kind"]))
    return pts
