#!/usr/bin/env python3
"""Single-process performance benchmark of the eprop-dist core.

Two networks, each built through the NEST-style API (``import eprop_dist as nest``):

* ``sine``   SPEC 7.1, e-prop+ sine-wave regression: 100 spike generators -> 100 parrots -> 100 eprop_iaf
             -> 1 eprop_readout, all-to-all eprop_synapse (delay 1), 1000-step sequences, input spike
             probability 0.05 per step, gradient descent with optimize_each_step False.
* ``nmnist`` SPEC 7.4, N-MNIST-sized sparse classification network: 1196 inputs (spike_generator ->
             parrot) with synthetic Poisson-like event streams at N-MNIST event rates, 150 eprop_iaf,
             10 eprop_readout, masks 25 % in->rec, 1 % rec->rec, 100 % rec->out, dense feedback B,
             300-step samples with the learning window open in the last 10 steps.

Each network runs twice, each time in a fresh subprocess (so ``ru_maxrss`` peaks are separate):

* ``eprop``  as specified;
* ``static`` every ``eprop_synapse`` replaced by ``static_synapse`` with the same weights (learning-signal
             and rate connections stay; neurons without incoming e-prop synapses keep no e-prop history).

Reported per run: build time (Python network description, core build), wall clock of Simulate only,
simulated steps/s, synaptic events/s (core counters ``n_syn_events`` + ``n_ep_events``, cross-checked
against recorded spikes x out-degree from GetConnections), peak RSS, and the per-phase timers of
``nest.timers()``.  Per network: the e-prop/static ratios of wall time and of time per synaptic event.

Usage::

    python benchmarks/bench_core.py [--quick] [--out FILE.json] [--sine-iter N] [--nmnist-samples N]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

TIMER_KEYS = ("build", "update", "deliver", "eprop", "communicate", "record")

# SPEC 7.4: inclusive ranges of blocklisted N-MNIST pixels (34x34x2 = 2312 pixels, 1116 blocked)
NMNIST_BLOCKLIST = (
    "0-62,64-151,159-180,196-212,232-245,267-278,301-312,335-345,370-379,404-413,438-442,444-447,471-481,"
    "506-514,539-549,573-582,608-617,641-650,675-684,709-718,743-752,776-786,810-820,843-854,877-889,"
    "910-923,943-958,976-993,1009-1028,1042-1064,1074-1218,1220-1275,1277-1288,1290-1305,1316-1335,"
    "1353-1368,1388-1391,1393-1401,1424-1433,1457,1459,1461-1467,1492-1501,1526-1533,1560-1568,1593-1598,"
    "1600-1602,1627-1636,1662-1670,1696-1704,1730-1738,1763-1772,1797-1806,1831-1839,1866-1873,1899-1907,"
    "1933-1941,1966-1975,2000-2010,2033-2043,2067-2079,2100-2109,2111-2113,2133-2149,2165-2182,2198-2219,"
    "2230-2256,2259,2261-2311")


def nmnist_active_pixels():
    blocked = set()
    for part in NMNIST_BLOCKLIST.split(","):
        a, _, b = part.partition("-")
        blocked.update(range(int(a), int(b or a) + 1))
    return np.array(sorted(set(range(2312)) - blocked))


# =============================================================================================
# machine description
# =============================================================================================
def machine_info():
    cpu, n_log = "unknown", os.cpu_count()
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and cpu == "unknown":
                    cpu = line.split(":", 1)[1].strip()
                if line.startswith("flags") and not flags:
                    flags = line.split(":", 1)[1]
    except OSError:
        pass
    try:
        n_aff = len(os.sched_getaffinity(0))
    except AttributeError:
        n_aff = n_log
    mem_gib = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    mem_gib = round(int(line.split()[1]) / 2**20, 1)
                    break
    except OSError:
        pass
    try:
        import Cython
        cython_v = Cython.__version__
    except ImportError:
        cython_v = None
    return {"platform": platform.platform(), "machine": platform.machine(), "cpu_model": cpu,
            "logical_cpus": n_log, "cpus_available": n_aff, "avx2": " avx2" in flags,
            "avx512f": " avx512f" in flags, "mem_total_gib": mem_gib,
            "python": platform.python_version(), "python_impl": platform.python_implementation(),
            "numpy": np.__version__, "cython": cython_v}


def git_rev():
    try:
        rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "csrc", "eprop_dist"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + ("+dirty(csrc/eprop_dist)" if dirty else "")
    except Exception:
        return None


def rss_mib():
    """Current resident set size (MiB) from /proc/self/status."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0   # Linux: KiB


# =============================================================================================
# network builders (run inside the worker subprocess)
# =============================================================================================
def build_sine(nest, n_iter, syn_model):
    """SPEC 7.1 (eprop_supervised_regression_sine-waves.py), model eprop_iaf, gradient descent."""
    np.random.seed(1)
    nest.ResetKernel()
    nest.set(resolution=1.0, rng_seed=1, total_num_virtual_procs=1)
    seq = 1000
    task = n_iter * seq
    sim = task + 5
    n_in, n_rec, n_out = 100, 100, 1
    kappa = 0.97
    sf = 1.0 - kappa
    gen_spk = nest.Create("spike_generator", n_in)
    nrns_in = nest.Create("parrot_neuron", n_in)
    params_rec = {"C_m": 1.0, "c_reg": 300.0 / seq, "E_L": 0.0, "eprop_isi_trace_cutoff": 100,
                  "f_target": 10.0, "flush_event_send_interval": float(seq), "I_e": 0.0, "kappa": kappa,
                  "kappa_reg": kappa, "surrogate_gradient_function": "piecewise_linear",
                  "surrogate_gradient_height": 10.0, "surrogate_gradient_width": 1.0 / 33.3, "t_ref": 0.0,
                  "tau_m": 30.0, "V_m": 0.0, "V_th": 0.03}
    nrns_rec = nest.Create("eprop_iaf", n_rec, params_rec)
    nrns_out = nest.Create("eprop_readout", n_out, {"C_m": 1.0, "E_L": 0.0, "eprop_isi_trace_cutoff": 100,
                                                    "I_e": 0.0, "tau_m": 30.0, "V_m": 0.0})
    gen_rate_target = nest.Create("step_rate_generator", n_out)
    gen_learning_window = nest.Create("step_rate_generator")
    mm_out = nest.Create("multimeter", 1, {"interval": 1.0, "record_from": ["readout_signal", "target_signal"],
                                           "start": 2.0, "stop": float(task + 2)})
    sr = nest.Create("spike_recorder")
    gen_force = nest.Create("spike_generator")     # "force final update" generator of the examples

    W_in = (np.random.randn(n_in, n_rec).T / np.sqrt(n_in)).astype(np.float32)
    W_rec = (np.random.randn(n_rec, n_rec).T / np.sqrt(n_rec)).astype(np.float32)
    np.fill_diagonal(W_rec, 0.0)
    W_out = (np.random.randn(n_rec, n_out).T / np.sqrt(n_rec)).astype(np.float32) * sf
    B = (np.random.randn(n_rec, n_out) / np.sqrt(n_rec)).astype(np.float32)
    W_in *= sf
    W_rec *= sf
    B *= sf

    nest.SetDefaults("eprop_synapse", {"optimizer": {"type": "gradient_descent", "batch_size": 1,
                                                     "eta": 1e-4 * sf ** 2, "optimize_each_step": False,
                                                     "Wmin": -100.0, "Wmax": 100.0}})
    nest.Connect(gen_spk, nrns_in, "one_to_one", {"synapse_model": "static_synapse", "weight": 1.0, "delay": 1.0})
    nest.Connect(nrns_in, nrns_rec, {"rule": "all_to_all", "allow_autapses": False},
                 {"synapse_model": syn_model, "weight": W_in, "delay": 1.0})
    nest.Connect(nrns_rec, nrns_rec, {"rule": "all_to_all", "allow_autapses": False},
                 {"synapse_model": syn_model, "weight": W_rec, "delay": 1.0})
    nest.Connect(nrns_rec, nrns_out, {"rule": "all_to_all"}, {"synapse_model": syn_model, "weight": W_out, "delay": 1.0})
    nest.Connect(nrns_out, nrns_rec, {"rule": "all_to_all"},
                 {"synapse_model": "eprop_learning_signal_connection", "weight": B, "delay": 1.0})
    nest.Connect(gen_rate_target, nrns_out, "one_to_one",
                 {"synapse_model": "rate_connection_delayed", "delay": 1.0, "receptor_type": 2})
    nest.Connect(gen_learning_window, nrns_out, "all_to_all",
                 {"synapse_model": "rate_connection_delayed", "delay": 1.0, "receptor_type": 1})
    nest.Connect(mm_out, nrns_out)
    nest.Connect(nrns_in + nrns_rec, sr)
    nest.Connect(gen_force, nrns_in + nrns_rec, "all_to_all",
                 {"synapse_model": "static_synapse", "weight": 1000.0, "delay": 1.0})

    input_spike_bools = (np.random.rand(seq, n_in) < 0.05).swapaxes(0, 1)
    starts = np.arange(0.0, task, seq) + 1
    params_gen = []
    for b in input_spike_bools:
        t = np.arange(0.0, seq, 1.0)[b]
        params_gen.append({"spike_times": np.hstack([t + s for s in starts]).astype(np.float32)})
    gen_spk.set(params_gen)

    def gen_sines(n, periods):
        amps = np.random.uniform(0.5, 2.0, len(periods))
        phases = np.random.uniform(0, 2 * np.pi, len(periods))
        s = sum(a * np.sin(np.linspace(p, p + 2 * np.pi * (n // T), n)) for a, p, T in zip(amps, phases, periods))
        s -= s[0]
        s /= max(np.max(np.abs(s)), 1e-6)
        return s

    target = gen_sines(seq, [1000, 500, 333, 200])
    gen_rate_target.set({"amplitude_times": np.arange(0.0, task, 1.0) + 2,
                         "amplitude_values": np.tile(target, n_iter)})
    gen_learning_window.set({"amplitude_times": [2.0], "amplitude_values": [1.0]})
    gen_force.set({"spike_times": [float(task + 1)]})

    def evaluate():
        ev = mm_out.get("events")
        y = ev["readout_signal"].reshape(n_out, n_iter, 1, seq)
        ys = ev["target_signal"].reshape(n_out, n_iter, 1, seq)
        loss = 0.5 * np.mean(np.sum((y - ys) ** 2, axis=3), axis=(0, 2))
        return {"loss_first_iter": float(loss[0]), "loss_last_iter": float(loss[-1])}

    info = {"n_in": n_in, "n_rec": n_rec, "n_out": n_out, "sequence_steps": seq, "n_iter": n_iter,
            "flush_event_send_interval_rec": float(seq),
            "n_input_spikes_generated": int(sum(p["spike_times"].size for p in params_gen))}
    return dict(sim_steps=sim, nodes=dict(par=nrns_in, rec=nrns_rec, out=nrns_out), sr=sr,
                evaluate=evaluate, info=info)


def build_nmnist(nest, n_samples, syn_model, events_per_input):
    """SPEC 7.4 (eprop_supervised_classification_neuromorphic_mnist.py) with synthetic inputs."""
    np.random.seed(1)
    nest.ResetKernel()
    nest.set(resolution=1.0, rng_seed=1)
    seq = 300
    learning_window = 10
    task = n_samples * seq
    sim = task + 5
    active = nmnist_active_pixels()
    n_in, n_rec, n_out = active.size, 150, 10
    assert n_in == 1196, n_in
    kappa = 0.99
    sf = 1.0 - kappa
    gen_spk = nest.Create("spike_generator", n_in)
    nrns_in = nest.Create("parrot_neuron", n_in)
    params_rec = {"C_m": 1.0, "c_reg": 2.0 / seq / sf ** 2, "E_L": 0.0, "eprop_isi_trace_cutoff": 100,
                  "f_target": 10.0, "flush_event_send_interval": float(seq), "I_e": 0.0, "kappa": kappa,
                  "kappa_reg": kappa, "surrogate_gradient_function": "piecewise_linear",
                  "surrogate_gradient_height": 0.5, "surrogate_gradient_width": 1.0 / 1.7, "t_ref": 0.0,
                  "tau_m": 30.0, "V_m": 0.0, "V_th": 0.6}
    nrns_rec = nest.Create("eprop_iaf", n_rec, params_rec)
    nrns_out = nest.Create("eprop_readout", n_out, {"C_m": 1.0, "E_L": 0.0, "eprop_isi_trace_cutoff": 100,
                                                    "I_e": 0.0, "tau_m": 100.0, "V_m": 0.0})
    gen_rate_target = nest.Create("step_rate_generator", n_out)
    gen_learning_window = nest.Create("step_rate_generator")
    mm_out = nest.Create("multimeter", 1, {"interval": 1.0, "record_from": ["readout_signal", "target_signal"],
                                           "start": 2.0, "stop": float(task + 2)})
    sr = nest.Create("spike_recorder")
    gen_force = nest.Create("spike_generator")

    # weights (float64) and masks in SPEC 7.4's RNG order
    W_in = np.random.randn(n_in, n_rec).T / np.sqrt(n_in)
    W_rec = np.random.randn(n_rec, n_rec).T / np.sqrt(n_rec)
    np.fill_diagonal(W_rec, 0.0)
    lim = np.sqrt(3.0 / max(1.0, (n_rec + n_out) / 2.0))
    W_out = np.random.uniform(-lim, lim, (n_rec, n_out)).T * sf
    B = np.random.randn(n_rec, n_out) / sf
    W_in = W_in * np.random.choice([0, 1], (n_rec, n_in), p=[0.75, 0.25])
    W_rec = W_rec * np.random.choice([0, 1], (n_rec, n_rec), p=[0.99, 0.01])
    W_out = W_out * np.random.choice([0, 1], (n_out, n_rec), p=[0.0, 1.0])

    nest.SetDefaults("eprop_synapse", {"optimizer": {"type": "gradient_descent", "batch_size": 1,
                                                     "eta": 5e-3 * sf ** 2, "optimize_each_step": False,
                                                     "Wmin": -100.0, "Wmax": 100.0}})
    nest.Connect(gen_spk, nrns_in, "one_to_one", {"synapse_model": "static_synapse", "weight": 1.0, "delay": 1.0})
    n_conn = {}
    for name, pre, post, W in (("in_rec", nrns_in, nrns_rec, W_in), ("rec_rec", nrns_rec, nrns_rec, W_rec),
                               ("rec_out", nrns_rec, nrns_out, W_out)):
        tgt, src = np.where(W != 0)            # np.where order on the (n_post, n_pre) mask, as the example
        nest.Connect(pre.gids[src], post.gids[tgt], "one_to_one",
                     {"synapse_model": syn_model, "weight": W[tgt, src], "delay": 1.0})
        n_conn[name] = int(src.size)
    nest.Connect(nrns_out, nrns_rec, {"rule": "all_to_all"},
                 {"synapse_model": "eprop_learning_signal_connection", "weight": B, "delay": 1.0})
    nest.Connect(gen_rate_target, nrns_out, "one_to_one",
                 {"synapse_model": "rate_connection_delayed", "delay": 1.0, "receptor_type": 2})
    nest.Connect(gen_learning_window, nrns_out, "all_to_all",
                 {"synapse_model": "rate_connection_delayed", "delay": 1.0, "receptor_type": 1})
    nest.Connect(mm_out, nrns_out)
    nest.Connect(nrns_in + nrns_rec, sr)
    nest.Connect(gen_force, nrns_in + nrns_rec, "all_to_all",
                 {"synapse_model": "static_synapse", "weight": 1000.0, "delay": 1.0})

    # synthetic N-MNIST-like input: per input a fixed mean event count (gamma-distributed across pixels,
    # mean `events_per_input`, i.e. ~4500 events per 300-step sample over the 1196 active pixels), Poisson
    # counts per sample, event times uniform over the sample, rounded to steps (duplicates = multiplicity)
    rng = np.random.default_rng(12345)
    lam = rng.gamma(2.0, events_per_input / 2.0, n_in)
    labels = rng.integers(0, n_out, n_samples)
    counts = rng.poisson(lam[:, None], (n_in, n_samples))
    params_gen = []
    for i in range(n_in):
        ts = []
        for g in range(n_samples):
            t = np.sort(rng.integers(0, seq, counts[i, g]))
            ts.append(g * seq + t + 1.0)
        params_gen.append({"spike_times": np.concatenate(ts) if ts else np.zeros(0)})
    gen_spk.set(params_gen)

    for k in range(n_out):
        gen_rate_target[k].set({"amplitude_times": np.arange(0.0, task, seq) + 2,
                                "amplitude_values": (labels == k).astype(float)})
    lw_t = np.concatenate([[0.0 + g * seq + 2, seq - learning_window + g * seq + 2.0] for g in range(n_samples)])
    lw_v = np.tile([0.0, 1.0], n_samples)
    gen_learning_window.set({"amplitude_times": lw_t, "amplitude_values": lw_v})
    gen_force.set({"spike_times": [float(task + 1)]})

    def evaluate():
        ev = mm_out.get("events")
        order = np.lexsort((ev["senders"], ev["times"]))
        y = ev["readout_signal"][order].reshape(n_samples, seq, n_out)[:, -learning_window:, :]
        ys = ev["target_signal"][order].reshape(n_samples, seq, n_out)[:, -learning_window:, :]
        loss = 0.5 * np.mean(np.sum((y - ys) ** 2, axis=1), axis=1)
        return {"loss_first_sample": float(loss[0]), "loss_last_sample": float(loss[-1])}

    info = {"n_in": n_in, "n_rec": n_rec, "n_out": n_out, "sequence_steps": seq, "n_samples": n_samples,
            "flush_event_send_interval_rec": float(seq),
            "connections": n_conn, "events_per_input_per_sample": events_per_input,
            "n_input_spikes_generated": int(counts.sum()),
            "input_events_per_sample_mean": float(counts.sum() / n_samples)}
    return dict(sim_steps=sim, nodes=dict(par=nrns_in, rec=nrns_rec, out=nrns_out), sr=sr,
                evaluate=evaluate, info=info)


# =============================================================================================
# worker: one network, one synapse variant, in this (fresh) process
# =============================================================================================
def worker(net, variant, args):
    rss0 = rss_mib()
    t_imp = time.perf_counter()
    import eprop_dist as nest
    t_imp = time.perf_counter() - t_imp
    rss_import = rss_mib()
    syn_model = "eprop_synapse" if variant == "eprop" else "static_synapse"

    t0 = time.perf_counter()
    if net == "sine":
        net_d = build_sine(nest, args.sine_iter, syn_model)
    else:
        net_d = build_nmnist(nest, args.nmnist_samples, syn_model, args.nmnist_rate)
    if args.parrot_flush is not None:      # SPEC 3.5: parrots may send flush events (default +inf: never)
        net_d["nodes"]["par"].set({"flush_event_send_interval": float(args.parrot_flush)})
    t_describe = time.perf_counter() - t0

    # core build (triggered by the first GetConnections) and out-degrees
    t0 = time.perf_counter()
    conns = nest.GetConnections()
    t_build_call = time.perf_counter() - t0
    c = conns.get(["source", "synapse_model"])
    src = np.asarray(c["source"])
    is_ep = np.asarray(c["synapse_model"]) != "static_synapse"
    n_nodes = int(nest.kernel().n_nodes)
    outdeg_ep = np.bincount(src[is_ep], minlength=n_nodes + 1)
    outdeg_st = np.bincount(src[~is_ep], minlength=n_nodes + 1)
    n_syn_total = {"eprop": int(is_ep.sum()), "static": int((~is_ep).sum())}
    rss_built = rss_mib()

    core = nest.kernel()._sim.core
    ev0 = (int(core.delivery.n_syn_events), int(core.delivery.n_ep_events))
    steps = net_d["sim_steps"]
    t0 = time.perf_counter()
    nest.Simulate(float(steps))
    t_sim = time.perf_counter() - t0
    ev_st = int(core.delivery.n_syn_events) - ev0[0]
    ev_ep = int(core.delivery.n_ep_events) - ev0[1]
    rss_sim = rss_mib()
    hist = {"capacity_steps": int(core.history.capacity),
            "neurons_with_history": int(np.asarray(core.history.has_history).sum())}
    timers = {k: float(v) for k, v in nest.timers().items()}

    # cross-check: recorded spikes x out-degree
    t0 = time.perf_counter()
    spk = net_d["sr"].get("events")
    senders = np.asarray(spk["senders"], dtype=np.int64)
    t_rec_read = time.perf_counter() - t0
    nd = net_d["nodes"]
    n_spk = {k: int(np.isin(senders, nd[k].gids).sum()) for k in ("par", "rec")}
    xc_ep = int(outdeg_ep[senders].sum())
    xc_st = int(outdeg_st[senders].sum())
    quality = net_d["evaluate"]()

    res = {
        "network": net, "variant": variant, "synapse_model": syn_model, **net_d["info"],
        "synapses": n_syn_total,
        "sim_steps": steps,
        "time_import_s": t_imp, "time_describe_s": t_describe, "time_build_s": t_build_call,
        "time_simulate_s": t_sim,
        "steps_per_s": steps / t_sim,
        "syn_events": {"total": ev_st + ev_ep, "eprop": ev_ep, "static": ev_st},
        "syn_events_per_s": (ev_st + ev_ep) / t_sim,
        "ns_per_syn_event": 1e9 * t_sim / max(1, ev_st + ev_ep),
        "ns_per_eprop_event_in_eprop_timer": (1e9 * timers.get("eprop", 0.0) / ev_ep) if ev_ep else None,
        "spikes": {"parrot": n_spk["par"], "rec": n_spk["rec"],
                   "rec_rate_hz": n_spk["rec"] / len(nd["rec"]) / (steps * 1e-3)},
        "crosscheck_spikes_x_outdegree": {"eprop": xc_ep, "static_from_neurons": xc_st,
                                          "eprop_matches_core_counter": xc_ep == ev_ep,
                                          "note": "excludes generator->parrot / force spikes, which the "
                                                  "core counts as static events"},
        "timers_s": timers,
        "eprop_history": hist,
        "time_read_spike_recorder_s": t_rec_read,
        "rss_mib": {"start": rss0, "after_import": rss_import, "after_build": rss_built,
                    "after_simulate": rss_sim, "peak": peak_rss_mib()},
        "quality": quality,
    }
    return res


# =============================================================================================
# driver
# =============================================================================================
def run_worker(net, variant, args):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", net, variant,
           "--sine-iter", str(args.sine_iter), "--nmnist-samples", str(args.nmnist_samples),
           "--nmnist-rate", str(args.nmnist_rate)]
    if args.parrot_flush is not None:
        cmd += ["--parrot-flush", str(args.parrot_flush)]
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.stderr.write(p.stdout + p.stderr)
        return {"network": net, "variant": variant, "error": (p.stderr or p.stdout).strip().splitlines()[-1:]}
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def fmt_table(runs, ratios):
    hdr = ["network", "variant", "steps", "describe s", "build s", "sim s", "(min-max)", "steps/s", "syn events",
           "events/s", "ns/event", "rec Hz", "peak MiB", "update", "deliver", "eprop", "comm", "record"]
    rows = []
    for r in runs:
        if "error" in r:
            rows.append([r["network"], r["variant"], "ERROR"] + [""] * (len(hdr) - 3))
            continue
        t = r["timers_s"]
        rp = r.get("repeats", {})
        spread = f"{rp['time_simulate_s_min']:.2f}-{rp['time_simulate_s_max']:.2f}" if rp else ""
        rows.append([r["network"], r["variant"], str(r["sim_steps"]), f"{r['time_describe_s']:.2f}",
                     f"{t.get('build', 0.0):.3f}", f"{r['time_simulate_s']:.3f}", spread,
                     f"{r['steps_per_s']:.0f}", f"{r['syn_events']['total']:.3g}", f"{r['syn_events_per_s']:.3g}",
                     f"{r['ns_per_syn_event']:.1f}", f"{r['spikes']['rec_rate_hz']:.1f}",
                     f"{r['rss_mib']['peak']:.0f}"] + [f"{t.get(k, 0.0):.3f}" for k in TIMER_KEYS[1:]])
    w = [max(len(h), *(len(x[i]) for x in rows)) for i, h in enumerate(hdr)]
    out = ["  ".join(h.rjust(w[i]) for i, h in enumerate(hdr)), "  ".join("-" * x for x in w)]
    out += ["  ".join(x[i].rjust(w[i]) for i in range(len(hdr))) for x in rows]
    out.append("(timers: nest.timers() seconds; 'describe' = Create/Connect/set in Python, 'build' = core build)")
    out.append("")
    out.append("e-prop / static (same network, same weights, separate fresh processes):")
    for net, rr in ratios.items():
        out.append(f"  {net:7s} wall-time ratio {rr['wall_time_ratio']:.1f}x, time-per-synaptic-event ratio "
                   f"{rr['time_per_event_ratio']:.1f}x, update-phase ratio {rr['update_time_ratio']:.2f}x, "
                   f"rec-spike ratio {rr['rec_spikes_ratio']:.2f}")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="short runs (sine 3 iterations, nmnist 5 samples)")
    ap.add_argument("--out", help="write the JSON result to this file")
    ap.add_argument("--sine-iter", type=int, default=None, help="sine-wave iterations of 1000 steps (default 20)")
    ap.add_argument("--nmnist-samples", type=int, default=None, help="N-MNIST samples of 300 steps (default 20)")
    ap.add_argument("--nmnist-rate", type=float, default=3.75,
                    help="mean events per active input per sample (default 3.75 ~ 4500 events/sample)")
    ap.add_argument("--networks", default="sine,nmnist")
    ap.add_argument("--parrot-flush", type=float, default=None, metavar="MS",
                    help="flush_event_send_interval of the parrots (default: model default +inf, as SPEC 7.x; "
                         "the recurrent neurons use one sequence/sample length as in the examples)")
    ap.add_argument("--repeat", type=int, default=None,
                    help="fresh-process repetitions per run, median reported (default 3, --quick 1)")
    ap.add_argument("--worker", nargs=2, metavar=("NET", "VARIANT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.sine_iter is None:
        args.sine_iter = 3 if args.quick else 20
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    if args.nmnist_samples is None:
        args.nmnist_samples = 5 if args.quick else 20

    if args.worker:
        res = worker(args.worker[0], args.worker[1], args)
        print("RESULT " + json.dumps(res))
        return

    argv = [os.path.relpath(os.path.abspath(__file__), os.getcwd())] + sys.argv[1:]
    command = "PYTHONPATH=" + shlex.quote(ROOT) + " " + shlex.quote(os.path.basename(sys.executable)) + " " + \
        " ".join(shlex.quote(a) for a in argv)
    t_all = time.perf_counter()
    load0 = os.getloadavg()
    nets = [n.strip() for n in args.networks.split(",") if n.strip()]
    all_runs = {(n, v): [] for n in nets for v in ("eprop", "static")}
    for rep in range(args.repeat):
        for net in nets:
            for variant in ("eprop", "static"):        # interleaved, each in a fresh process
                print(f"[{rep + 1}/{args.repeat}] running {net}/{variant} ...", file=sys.stderr, flush=True)
                all_runs[(net, variant)].append(run_worker(net, variant, args))
    runs = []
    for (net, variant), rs in all_runs.items():
        ok = [r for r in rs if "error" not in r]
        if not ok:
            runs.append(rs[0])
            continue
        ok.sort(key=lambda r: r["time_simulate_s"])
        med = dict(ok[(len(ok) - 1) // 2])                   # median (lower median for even counts)
        sims = [r["time_simulate_s"] for r in ok]
        med["repeats"] = {"n": len(ok), "time_simulate_s_all": [r["time_simulate_s"] for r in rs if "error" not in r],
                          "time_simulate_s_min": min(sims), "time_simulate_s_max": max(sims),
                          "peak_rss_mib_max": max(r["rss_mib"]["peak"] for r in ok),
                          "reported": "median run by Simulate wall time"}
        runs.append(med)
    ratios = {}
    for net in nets:
        e = next((r for r in runs if r["network"] == net and r["variant"] == "eprop" and "error" not in r), None)
        s = next((r for r in runs if r["network"] == net and r["variant"] == "static" and "error" not in r), None)
        if e and s:
            ratios[net] = {"wall_time_ratio": e["time_simulate_s"] / s["time_simulate_s"],
                           "time_per_event_ratio": e["ns_per_syn_event"] / s["ns_per_syn_event"],
                           "update_time_ratio": e["timers_s"]["update"] / max(1e-12, s["timers_s"]["update"]),
                           "syn_events_ratio": e["syn_events"]["total"] / max(1, s["syn_events"]["total"]),
                           "rec_spikes_ratio": e["spikes"]["rec"] / max(1, s["spikes"]["rec"])}
    result = {"benchmark": "bench_core", "command": command, "args": {k: v for k, v in vars(args).items()
                                                                      if k != "worker"},
              "machine": machine_info(), "git": git_rev(),
              "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "total_wall_s": time.perf_counter() - t_all,
              "loadavg_before": load0, "loadavg_after": os.getloadavg(),
              "runs": runs, "eprop_over_static": ratios}
    m = result["machine"]
    print(f"machine: {m['cpu_model']}, {m['cpus_available']}/{m['logical_cpus']} CPUs, {m['platform']}, "
          f"Python {m['python']}, numpy {m['numpy']}, git {result['git']}")
    print(fmt_table(runs, ratios))
    print()
    print(json.dumps(result, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
        print(f"wrote {args.out}", file=sys.stderr)
    print(f"\nreproduce with:\n  cd {shlex.quote(os.getcwd())} && {command}")


if __name__ == "__main__":
    main()
