#!/usr/bin/env python3
"""The sparse e-prop+ scale test of issue 8, written once in PyNEST terms for NEST and eprop-dist.

    python benchmarks/scale_test_net.py --simulator nest  --n-rec 4000 [--synapse eprop|static]
    python benchmarks/scale_test_net.py --simulator eprop --n-rec 4000 [--synapse eprop|static]
    mpiexec -n 2 python -m mpi4py benchmarks/scale_test_net.py --simulator eprop --n-rec 4000

Network (resolution 1 ms): one ``poisson_generator`` at 50 Hz into 100 ``parrot_neuron``s; N
``eprop_iaf`` (C_m 1, E_L 0, V_th 0.03, tau_m 30, t_ref 0, piecewise-linear surrogate of height 10
and width 1/33.3, c_reg 300/1000, f_target 10 Hz, kappa 0.97, cutoff 100 ms, flush interval 1000 ms),
``fixed_indegree`` 100 from the parrots and 100 recurrent without autapses, weights
N(0,1)/sqrt(100)*(1-kappa); all recurrent neurons onto one ``eprop_readout`` (tau_m 30, weights
N(0,1)/sqrt(N)*(1-kappa)) with learning-signal connections back (same scale); a spike recorder on
the recurrent neurons; a sum of four sines as the target; the learning window always open.
``eprop_synapse`` with gradient descent, eta 1e-4*(1-kappa)^2, optimize_each_step False; with
``--synapse static`` the three e-prop projections use ``static_synapse`` instead.  1005 ms simulated.

Each rank prints one line ``SCALE_RESULT {json}``: firing rate of the recurrent population (Hz),
spike count, build and simulation seconds, peak RSS of the process.  Random connectivity and
weights come from each simulator's own generator, so the two simulators build different
realisations of the same random network: compare firing rates, not spikes.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def rank_of_process():
    """MPI rank from the launcher's environment (no MPI call needed here)."""
    for k in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"):
        if k in os.environ:
            return int(os.environ[k])
    return 0


ADAPT = {"adapt_beta": 0.002, "adapt_tau": 200.0}   # --neuron eprop_iaf_adapt (eprop-dist only)


def build(nest, n_rec, synapse, seed, neuron="eprop_iaf"):
    kappa = 0.97
    sf = 1.0 - kappa
    nest.ResetKernel()
    nest.set(resolution=1.0, rng_seed=seed)
    gen = nest.Create("poisson_generator", 1, {"rate": 50.0})
    parrots = nest.Create("parrot_neuron", 100)
    rec = nest.Create(neuron, n_rec, {**(ADAPT if neuron == "eprop_iaf_adapt" else {}),
        "C_m": 1.0, "E_L": 0.0, "V_m": 0.0, "V_th": 0.03, "tau_m": 30.0, "t_ref": 0.0, "I_e": 0.0,
        "surrogate_gradient_function": "piecewise_linear", "surrogate_gradient_height": 10.0,
        "surrogate_gradient_width": 1.0 / 33.3, "c_reg": 300.0 / 1000.0, "f_target": 10.0,
        "kappa": kappa, "kappa_reg": kappa, "eprop_isi_trace_cutoff": 100.0,
        "flush_event_send_interval": 1000.0})
    out = nest.Create("eprop_readout", 1, {"C_m": 1.0, "E_L": 0.0, "V_m": 0.0, "tau_m": 30.0, "I_e": 0.0,
                                           "eprop_isi_trace_cutoff": 100.0})
    target = nest.Create("step_rate_generator")
    window = nest.Create("step_rate_generator")
    sr = nest.Create("spike_recorder")

    nest.SetDefaults("eprop_synapse", {"optimizer": {"type": "gradient_descent", "batch_size": 1,
                                                     "eta": 1e-4 * sf ** 2, "optimize_each_step": False,
                                                     "Wmin": -100.0, "Wmax": 100.0}})
    model = "eprop_synapse" if synapse == "eprop" else "static_synapse"
    w_in = nest.random.normal(mean=0.0, std=sf / np.sqrt(100.0))
    w_out = nest.random.normal(mean=0.0, std=sf / np.sqrt(n_rec))
    nest.Connect(gen, parrots, "all_to_all", {"synapse_model": "static_synapse", "delay": 1.0})
    nest.Connect(parrots, rec, {"rule": "fixed_indegree", "indegree": 100},
                 {"synapse_model": model, "delay": 1.0, "weight": w_in})
    nest.Connect(rec, rec, {"rule": "fixed_indegree", "indegree": 100, "allow_autapses": False},
                 {"synapse_model": model, "delay": 1.0, "weight": w_in})
    nest.Connect(rec, out, "all_to_all", {"synapse_model": model, "delay": 1.0, "weight": w_out})
    nest.Connect(out, rec, "all_to_all", {"synapse_model": "eprop_learning_signal_connection", "delay": 1.0,
                                          "weight": w_in})
    t = np.arange(1.0, 1006.0)
    y = sum(a * np.sin(2.0 * np.pi * t / p + ph) for a, p, ph in
            ((1.0, 1000.0, 0.3), (0.7, 500.0, 1.1), (0.5, 333.0, 2.0), (0.3, 200.0, 0.5)))
    target.set({"amplitude_times": t, "amplitude_values": y})
    window.set({"amplitude_times": [1.0], "amplitude_values": [1.0]})
    nest.Connect(target, out, "all_to_all", {"synapse_model": "rate_connection_delayed", "delay": 1.0,
                                             "receptor_type": 2})
    nest.Connect(window, out, "all_to_all", {"synapse_model": "rate_connection_delayed", "delay": 1.0,
                                             "receptor_type": 1})
    nest.Connect(rec, sr)
    return rec, sr


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--simulator", choices=("nest", "eprop"), required=True,
                   help="'nest' imports NEST, 'eprop' imports eprop_dist as nest")
    p.add_argument("--n-rec", type=int, default=4000)
    p.add_argument("--synapse", choices=("eprop", "static"), default="eprop")
    p.add_argument("--t-sim", type=float, default=1005.0, help="simulated ms")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--neuron", choices=("eprop_iaf", "eprop_iaf_adapt"), default="eprop_iaf",
                   help=f"recurrent model (eprop_iaf_adapt adds {ADAPT}; a variant of the issue's network)")
    a = p.parse_args(argv)
    if a.n_rec < 101:
        p.error(f"--n-rec must be > 100 (fixed in-degree 100 without autapses), got {a.n_rec}")
    if not a.t_sim > 0:
        p.error(f"--t-sim must be > 0 ms, got {a.t_sim}")
    if a.simulator == "nest":
        try:
            import nest
        except ImportError as e:
            sys.exit(f"scale_test_net: NEST is not installed ({e}); install it with: pip install '.[nest]'")
        nest.verbosity = nest.VerbosityLevel.ERROR
    else:
        import eprop_dist as nest
    t0 = time.perf_counter()
    rec, sr = build(nest, a.n_rec, a.synapse, a.seed, a.neuron)
    nest.Simulate(1.0)           # connection set-up happens at the first Simulate in both simulators
    t1 = time.perf_counter()
    nest.Simulate(a.t_sim - 1.0)
    t2 = time.perf_counter()
    # the whole network's spikes on every rank (reads are rank-local, as in NEST)
    ev = nest.gather_events(sr) if a.simulator == "eprop" else sr.get("events")
    times, senders = np.asarray(ev["times"], float), np.asarray(ev["senders"], np.int64)
    order = np.lexsort((senders, times))
    digest = hashlib.sha256(times[order].tobytes() + senders[order].tobytes()).hexdigest()[:16]
    n_spk = int(times.size)
    res = {"simulator": a.simulator, "synapse": a.synapse, "neuron": a.neuron, "n_rec": a.n_rec, "t_sim_ms": a.t_sim,
           "rank": rank_of_process(), "n_spikes": n_spk, "spikes_sha256": digest, "rate_hz": n_spk / a.n_rec / (a.t_sim / 1000.0),
           "build_s": t1 - t0, "sim_s": t2 - t1,
           "peak_rss_MiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}
    # one write per line: the ranks share stdout, and print() writes the text and the newline apart
    sys.stdout.write("SCALE_RESULT " + json.dumps(res) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
