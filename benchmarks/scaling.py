"""Strong/weak scaling driver for the e-prop+ benchmark network (issue 3).

The network, scaled by N (recurrent neurons):
  N/10 input eprop_iaf neurons and N recurrent eprop_iaf neurons in ignore_and_spike mode (10 Hz,
  offsets spread over the 100-ms interval), e-prop synapses with fixed in-degree 100 per recurrent
  neuron (20 from the inputs, 80 recurrent), 10 eprop_readout neurons with fixed in-degree 100 from
  the recurrent population, learning-signal connections readout -> recurrent (all to all), a
  learning-window generator.  Gradient descent, one update per presynaptic spike; cutoff 100 ms,
  flush interval 100 ms.  All spike, readout and learning-signal delays are `--delay` steps, so the
  communication window is D = delay.  `--warmup` ms (default 100: every neuron has spiked once) run
  untimed before the timed `--t-sim` ms.

Driver (spawns one mpiexec job per configuration and prints a table + JSON):
    python benchmarks/scaling.py --sizes 10000 100000 --ranks 1 2 --delays 1 5 [--t-sim 200]
           [--exchange allgather alltoall] [--out benchmarks/scaling_results.json] [--mpiexec CMD]
Scaling studies (TOML study files, Slurm or local mpiexec, one HDF5 file per point, merged tables and
plots) are `eprop-dist slurm ...` / `eprop-dist scaling ...` (eprop_dist/scaling, README "Scaling
studies"); this script stays the quick in-allocation driver.  A 1-rank point runs once (serial, no
exchange) whatever --exchange lists.

Worker (one configuration; run under mpiexec):
    mpiexec -n R python -m mpi4py benchmarks/scaling.py --worker --n N --delay D --t-sim T --exchange X
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build_network(nest, k, n_rec, delay):
    n_in, n_out = max(1, n_rec // 10), 10
    k_in, k_rec = 20, 80
    d = float(delay)
    ias = {"C_m": 1.0, "E_L": 0.0, "V_m": 0.0, "V_th": 0.5, "tau_m": 20.0, "ignore_and_spike": True,
           "ignore_and_spike_interval": 100.0, "eprop_isi_trace_cutoff": 100.0,
           "flush_event_send_interval": 100.0, "c_reg": 0.1}
    inp = k.Create("eprop_iaf", n_in, ias)
    inp.set(ignore_and_spike_offset=(np.arange(n_in) % 100 + 1).astype(float))
    rec = k.Create("eprop_iaf", n_rec, ias)
    rec.set(ignore_and_spike_offset=((np.arange(n_rec) * 37) % 100 + 1).astype(float))
    out = k.Create("eprop_readout", n_out, {"C_m": 1.0, "E_L": 0.0, "tau_m": 20.0, "eprop_isi_trace_cutoff": 100.0})
    lw = k.Create("step_rate_generator", 1, {"amplitude_times": [1.0], "amplitude_values": [1.0]})
    k.SetDefaults("eprop_synapse", {"optimizer": {"type": "gradient_descent", "eta": 1e-4,
                                                  "optimize_each_step": False}})
    syn = {"synapse_model": "eprop_synapse", "delay": d}
    k.Connect(inp, rec, {"rule": "fixed_indegree", "indegree": k_in}, dict(syn, weight=nest.normal(0.0, 0.05)))
    k.Connect(rec, rec, {"rule": "fixed_indegree", "indegree": k_rec, "allow_autapses": False},
              dict(syn, weight=nest.normal(0.0, 0.05)))
    k.Connect(rec, out, {"rule": "fixed_indegree", "indegree": 100}, dict(syn, weight=nest.normal(0.0, 0.05)))
    k.Connect(out, rec, "all_to_all", {"synapse_model": "eprop_learning_signal_connection",
                                       "weight": nest.normal(0.0, 0.1), "delay": d})
    k.Connect(lw, out, "all_to_all", {"synapse_model": "rate_connection_delayed", "receptor_type": 1})
    return n_in + n_rec + n_out


def worker(a):
    import eprop_dist as nest
    from eprop_dist.scaling.worker import core_bytes
    k = nest.Kernel()
    k.set(exchange=a.exchange)
    t0 = time.perf_counter()
    n_nodes = build_network(nest, k, a.n, a.delay)
    k._ensure_built()
    sim = k._sim
    comm = sim.comm
    comm.barrier()
    t_build = comm.allreduce_max(time.perf_counter() - t0)
    # warm-up: every neuron has spiked once (offsets 1-100 ms), so the timed part is the steady state
    # in which each spike closes a full gradient window
    k.Simulate(float(a.warmup // a.delay * a.delay))
    comm.barrier()
    before = dict(sim.timers)
    t1 = time.perf_counter()
    k.Simulate(float(a.t_sim))
    comm.barrier()
    t_sim = time.perf_counter() - t1
    core = sim.core
    syn_b, neur_b, other_b = core_bytes(core)
    n_syn = int(np.asarray(core.syn.weight).size + np.asarray(core.delivery.static_weight).size
                + np.asarray(core.delivery.ls_weight).size)
    row = {"rank": comm.rank, "t_sim": t_sim,
           "timers": {p: v - before.get(p, 0.0) for p, v in sim.timers.items() if p != "build"},
           "peak_rss_MiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
           "n_syn": n_syn, "n_ep": int(np.asarray(core.syn.weight).size), "syn_bytes": syn_b, "neuron_bytes": neur_b,
           "other_bytes": other_b, "n_local_neurons": int(core.n_rec + core.n_out + core.n_par),
           "ep_events": int(core.delivery.n_ep_events), "hist_C": int(core.history.capacity)}
    rows = comm.allgather(row)
    if comm.rank == 0:
        tot_syn = sum(r["n_syn"] for r in rows)
        res = {"N": a.n, "n_nodes": n_nodes, "ranks": comm.size, "delay": a.delay, "D": sim.D,
               "warmup_ms": a.warmup,
               "exchange": a.exchange if comm.size > 1 else "serial", "t_bio_ms": a.t_sim, "build_s": t_build,
               "sim_s": max(r["t_sim"] for r in rows),
               "sim_s_per_bio_s": max(r["t_sim"] for r in rows) * 1000.0 / a.t_sim,
               "phases_max": {p: max(r["timers"][p] for r in rows) for p in rows[0]["timers"]},
               "peak_rss_MiB_per_rank": [r["peak_rss_MiB"] for r in rows],
               "synapses": tot_syn,
               "bytes_per_synapse": sum(r["syn_bytes"] for r in rows) / max(1, tot_syn),
               "bytes_per_neuron": sum(r["neuron_bytes"] for r in rows) / n_nodes,
               "ep_events": sum(r["ep_events"] for r in rows),
               "history_capacity": max(r["hist_C"] for r in rows)}
        print("RESULT " + json.dumps(res), flush=True)


def machine():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0]}


def driver(a):
    from eprop_dist.mpirun import mpiexec_argv
    if a.mpiexec:
        os.environ["EPROP_MPIEXEC"] = a.mpiexec   # mpiexec_argv splits it and adds what its MPI needs
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    results = []
    for n in a.sizes:
        for d in a.delays:
            for x in a.exchange:
                for r in a.ranks:
                    if r == 1 and x != a.exchange[0]:
                        continue        # one serial point: a 1-rank run never exchanges
                    t_sim = a.t_sim if a.t_sim else (200 if n <= 100000 else 50)
                    t_sim = (t_sim // d) * d
                    cmd = mpiexec_argv(r) + [sys.executable, "-m", "mpi4py", os.path.abspath(__file__),
                                     "--worker", "--n", str(n), "--delay", str(d), "--t-sim", str(t_sim),
                                     "--exchange", x, "--warmup", str(a.warmup)]
                    p = subprocess.run(cmd, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL,
                                       timeout=a.timeout)
                    line = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
                    if p.returncode != 0 or not line:
                        print(f"FAILED N={n} d={d} ranks={r} {x}: rc={p.returncode}\n{p.stderr[-2000:]}", file=sys.stderr)
                        results.append({"N": n, "delay": d, "ranks": r, "exchange": x, "failed": p.stderr[-500:]})
                        continue
                    res = json.loads(line[0][7:])
                    results.append(res)
                    ph = res["phases_max"]
                    print(f"N={n:>8} delay={d} ranks={r} {x:9s} build {res['build_s']:7.2f} s  "
                          f"sim {res['sim_s_per_bio_s']:8.2f} s/bio-s  update {ph['update']:.2f} deliver "
                          f"{ph['deliver']:.2f} eprop {ph['eprop']:.2f} comm {ph['communicate']:.2f}  "
                          f"RSS/rank {max(res['peak_rss_MiB_per_rank']):7.0f} MiB  "
                          f"{res['bytes_per_synapse']:.0f} B/syn  {res['bytes_per_neuron']:.0f} B/neuron", flush=True)
    out = {"machine": machine(), "command": " ".join([sys.executable] + sys.argv), "results": results}
    if a.out:
        with open(a.out, "w") as f:
            json.dump(out, f, indent=1)
    print(json.dumps(out["machine"]))
    print("reproduce: " + out["command"])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--worker", action="store_true")
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--delay", type=int, default=1)
    p.add_argument("--t-sim", type=int, default=0, help="timed biological ms (default 200, 50 for N > 1e5)")
    p.add_argument("--warmup", type=int, default=100, help="untimed biological ms before the timed part")
    p.add_argument("--exchange", nargs="+", default=["alltoall"])
    p.add_argument("--sizes", type=int, nargs="+", default=[10000, 100000])
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    p.add_argument("--delays", type=int, nargs="+", default=[1, 5])
    p.add_argument("--out", default="")
    p.add_argument("--mpiexec", default="", help="launcher command (default: $EPROP_MPIEXEC, else the mpiexec of "
                   "mpi4py's MPI: next to python, else on PATH; Open MPI gets --oversubscribe)")
    p.add_argument("--timeout", type=int, default=3600)
    a = p.parse_args()
    if a.worker:
        a.exchange = a.exchange[0]
        a.t_sim = a.t_sim or 200
        worker(a)
    else:
        driver(a)


if __name__ == "__main__":
    main()
