"""One study point: build the benchmark network, run warm-up + timed part, write one HDF5 file.

Run under MPI (``mpiexec -n R python -m mpi4py -m eprop_dist scaling worker POINT.json --out F.h5``
or ``srun --mpi=pmi2 ...``).  The communicator size must equal the point's rank count and, under
Slurm, the step's task count (``srun --mpi=none`` silently gives every process size 1).
Rank 0 writes the file under a temporary name and renames it when complete, so a job that fails or
is killed never leaves a file that looks complete.
"""
from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import time

import numpy as np

from .results import write_point
from .study import Point, StudyError

PHASES = ("update", "deliver", "eprop", "communicate", "record")


def read_point_file(path: str) -> Point:
    try:
        with open(path) as f:
            d = json.load(f)
    except FileNotFoundError:
        raise StudyError(f"point file {path} not found") from None
    except json.JSONDecodeError as e:
        raise StudyError(f"point file {path} is not valid JSON: {e}") from None
    return Point.from_dict(d)


def build_network(nest, k, net: dict, seed: int):
    """The benchmark network of benchmarks/scaling.py, generalised (see study.py's [network]).
    Returns (n_nodes, spike recorder)."""
    dt = float(net["resolution"])
    k.set(resolution=dt, rng_seed=int(seed), exchange=net["exchange"])
    n_in, n_rec, n_out = net["n_in"], net["n_rec"], net["n_out"]
    interval = 1000.0 / net["rate"]
    isteps = int(round(interval / dt))
    ias = {"C_m": 1.0, "E_L": 0.0, "V_m": 0.0, "V_th": 0.5, "tau_m": 20.0, "ignore_and_spike": True,
           "ignore_and_spike_interval": interval, "eprop_isi_trace_cutoff": float(net["cutoff"]),
           "flush_event_send_interval": interval, "c_reg": 0.1}
    inp = k.Create("eprop_iaf", n_in, ias)
    inp.set(ignore_and_spike_offset=((np.arange(n_in) % isteps + 1) * dt).astype(float))
    rec = k.Create("eprop_iaf", n_rec, ias)
    rec.set(ignore_and_spike_offset=(((np.arange(n_rec) * 37) % isteps + 1) * dt).astype(float))
    out = k.Create("eprop_readout", n_out, {"C_m": 1.0, "E_L": 0.0, "tau_m": 20.0,
                                            "eprop_isi_trace_cutoff": float(net["cutoff"])})
    lw = k.Create("step_rate_generator", 1, {"amplitude_times": [dt], "amplitude_values": [1.0]})
    sr = k.Create("spike_recorder", 1)
    d = float(net["delay"])
    if net["synapse"] == "eprop":
        k.SetDefaults("eprop_synapse", {"optimizer": {"type": "gradient_descent", "eta": 1e-4,
                                                      "optimize_each_step": False}})
        syn = {"synapse_model": "eprop_synapse", "delay": d}
    else:
        syn = {"synapse_model": "static_synapse", "delay": d}
    w = nest.normal(0.0, 0.05)
    if net["k_in"]:
        k.Connect(inp, rec, {"rule": "fixed_indegree", "indegree": net["k_in"]}, dict(syn, weight=w))
    if net["k_rec"]:
        k.Connect(rec, rec, {"rule": "fixed_indegree", "indegree": net["k_rec"], "allow_autapses": False},
                  dict(syn, weight=w))
    k.Connect(rec, out, {"rule": "fixed_indegree", "indegree": net["k_out"]}, dict(syn, weight=w))
    ls = {"synapse_model": "eprop_learning_signal_connection", "weight": nest.normal(0.0, 0.1), "delay": d}
    if net["feedback_outdegree"]:
        # fixed out-degree per readout: targets drawn from a generator keyed by the study seed only
        # (every rank draws the same), without multapses
        rng = np.random.default_rng([int(seed), 11])
        rec_g = np.asarray(rec.tolist())
        out_g = np.asarray(out.tolist())
        tg = np.concatenate([np.sort(rng.choice(rec_g, net["feedback_outdegree"], replace=False))
                             for _ in out_g])
        src = np.repeat(out_g, net["feedback_outdegree"])
        k.Connect(src.tolist(), tg.tolist(), "one_to_one", ls)
    else:
        k.Connect(out, rec, "all_to_all", ls)
    k.Connect(lw, out, "all_to_all", {"synapse_model": "rate_connection_delayed", "receptor_type": 1})
    k.Connect(inp, sr)
    k.Connect(rec, sr)
    return n_in + n_rec + n_out, sr


def core_bytes(core):
    """Bytes held by the core, split into synapse state, neuron/history state and the rest
    (by kernel: Core.kernels)."""
    syn_kernels = ("syn", "bsshslm_syn", "optimizer")
    neuron_kernels = ("rec", "out", "parrots", "history")
    syn = neur = other = 0
    for kname, obj in core.kernels.items():
        for name in dir(obj):
            if name.startswith("__"):
                continue
            try:
                a = np.asarray(getattr(obj, name))
            except (TypeError, ValueError):
                continue
            if a.dtype == object or a.ndim == 0:
                continue
            if kname in syn_kernels or (kname == "delivery" and name.startswith(("static_", "ls_"))):
                syn += a.nbytes
            elif kname in neuron_kernels or (kname == "delivery" and name == "input_ring"):
                neur += a.nbytes
            else:
                other += a.nbytes
    return syn, neur, other


def _git_revision():
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        p = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if p.returncode == 0:
            rev = p.stdout.strip()
            d = subprocess.run(["git", "-C", here, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
            return rev + ("+dirty" if d.returncode == 0 and d.stdout.strip() else "")
    except (OSError, subprocess.TimeoutExpired):
        pass
    return "unknown"


def _local_spikes(core):
    n = int(core.recording.n_spikes)
    return int(np.asarray(core.recording.spike_multiplicity)[:n].sum()) if n else 0


def _events(core):
    """Synaptic events (static + e-prop synapses) delivered on this rank so far."""
    return int(core.delivery.n_syn_events) + int(core.delivery.n_ep_events)


def run_point(point: Point, out: str, comm=None, progress=print):
    """Run one point on the current communicator and write `out` (rank 0).  Returns the summary."""
    import eprop_dist as nest
    from ..comm import as_comm, mpi_library_version
    comm = as_comm(comm)
    err = None
    if comm.size != point.ranks:
        err = StudyError(f"point {point.tag}: the communicator has {comm.size} rank(s) but the point needs "
                         f"{point.ranks} (under srun use --mpi=pmi2; --mpi=none gives every process size 1)")
    # the job's task count (exported by the batch script: inside mpiexec's own srun step SLURM_NTASKS
    # counts its proxies), else the srun step's
    ntasks = os.environ.get("EPROP_SLURM_NTASKS") or (
        os.environ.get("SLURM_NTASKS") if os.environ.get("SLURM_STEP_ID") is not None else None)
    if err is None and ntasks and int(ntasks) != comm.size:
        err = StudyError(f"point {point.tag}: Slurm has {ntasks} task(s) but the communicator has "
                         f"{comm.size} rank(s)")
    if err is None:      # the output must be writable before any work (every rank sees the same folder)
        d = os.path.dirname(os.path.abspath(out))
        try:
            os.makedirs(d, exist_ok=True)
        except OSError as e:
            err = StudyError(f"point {point.tag}: cannot create the output folder {d}: {e.strerror}")
        else:
            if not os.access(d, os.W_OK):
                err = StudyError(f"point {point.tag}: the output folder {d} is not writable")
    if err is not None:
        raise err        # the same on every rank (each checks its own view): no collective needed
    k = nest.Kernel(comm=comm)
    net = point.network
    t0 = time.perf_counter()
    n_nodes, _ = build_network(nest, k, net, point.seed)
    k._ensure_built()
    sim = k._sim
    comm = sim.comm
    core = sim.core
    comm.barrier()
    t_build_local = time.perf_counter() - t0
    rss_build = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    if comm.rank == 0:
        progress(f"{point.tag}: built {n_nodes} neurons on {comm.size} rank(s) in {t_build_local:.2f} s; "
                 f"warm-up {point.warmup} ms", flush=True)
    if point.warmup > 0:
        k.Simulate(float(point.warmup))
    comm.barrier()
    before = dict(sim.timers)
    spk0, syn0, ep0 = _local_spikes(core), _events(core), int(core.delivery.n_ep_events)
    if comm.rank == 0:
        progress(f"{point.tag}: simulating {point.t_sim} ms", flush=True)
    t1 = time.perf_counter()
    k.Simulate(float(point.t_sim))
    comm.barrier()
    t_sim_local = time.perf_counter() - t1
    syn_b, neur_b, other_b = core_bytes(core)
    n_syn = int(np.asarray(core.syn.weight).size + np.asarray(core.delivery.static_weight).size
                + np.asarray(core.delivery.ls_weight).size)
    row = {"rank": comm.rank, "host": socket.gethostname(), "t_build": t_build_local, "t_sim": t_sim_local,
           "timers": {p: sim.timers[p] - before.get(p, 0.0) for p in PHASES},
           "peak_rss_MiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
           "rss_after_build_MiB": rss_build,
           "n_syn": n_syn, "syn_bytes": syn_b, "neuron_bytes": neur_b, "other_bytes": other_b,
           "n_local_neurons": int(core.n_rec + core.n_out + core.n_par),
           "spikes": _local_spikes(core) - spk0, "syn_events": _events(core) - syn0,
           "ep_events": int(core.delivery.n_ep_events) - ep0, "pid": os.getpid()}
    rows = comm.allgather(row)
    summary = None
    if comm.rank == 0:
        env = os.environ
        prov = {"package_version": nest.__version__, "git_revision": _git_revision(),
                "mpi_library": mpi_library_version(), "n_ranks": comm.size,
                "hosts": sorted({r["host"] for r in rows}),
                "slurm_job_id": env.get("SLURM_JOB_ID", ""), "slurm_step_id": env.get("SLURM_STEP_ID", ""),
                "slurm_ntasks": env.get("EPROP_SLURM_NTASKS", env.get("SLURM_NTASKS", "")),
                "cpus_per_task": env.get("SLURM_CPUS_PER_TASK", "") or "1",
                "launcher": "slurm" if env.get("SLURM_JOB_ID") else "local",
                "python": f"{os.sys.version.split()[0]}", "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                     time.gmtime())}
        summary = write_point(out, point, prov, rows, n_nodes=n_nodes, D=int(sim.D))
        progress(f"{point.tag}: {summary['sim_s_per_bio_s']:.3f} s per biological s, {summary['spikes']} spikes, "
                 f"{summary['syn_events']} synaptic events; wrote {out}", flush=True)
    comm.barrier()
    return summary


def main(args) -> int:
    point = read_point_file(args.point)
    run_point(point, os.path.abspath(args.out))
    return 0
