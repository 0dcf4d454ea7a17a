"""Sine-wave pattern generation with e-prop+ (SPEC 7.1, NEST's eprop_supervised_regression_sine-waves.py).

100 input spike generators -> 100 parrots -> 100 recurrent e-prop+ neurons -> 1 readout; the readout
learns a superposition of four sines (periods 1000, 500, 333, 200 ms) repeated every 1000-ms sequence.
Same node creation order and numpy random calls as the NEST example, so a run is directly comparable.
"""
from __future__ import annotations

import time

import numpy as np

from ..api import Kernel

DEFAULTS = {
    "n_iter": 5, "seq": 1000, "n_in": 100, "n_rec": 100, "n_out": 1, "seed": 1,
    "neuron_model": "eprop_iaf", "eta": None, "optimize_each_step": False, "input_rate_prob": 0.05,
}


def superimposed_sines(steps, periods):
    amps = np.random.uniform(low=0.5, high=2.0, size=len(periods))
    phases = np.random.uniform(low=0.0, high=2.0 * np.pi, size=len(periods))
    s = sum(a * np.sin(np.linspace(p, p + 2.0 * np.pi * (steps // T), steps)) for a, p, T in zip(amps, phases, periods))
    s -= s[0]
    s /= max(np.abs(s).max(), 1e-6)
    return s


def build(kernel: Kernel, cfg: dict):
    """Create and connect the network in `kernel`; returns the handles."""
    c = dict(DEFAULTS)
    c.update(cfg)
    np.random.seed(c["seed"])
    seq, n_iter = c["seq"], c["n_iter"]
    n_in, n_rec, n_out = c["n_in"], c["n_rec"], c["n_out"]
    task = n_iter * seq
    k = kernel
    k.set(resolution=1.0)
    gen_spk_in = k.Create("spike_generator", n_in)
    nrns_in = k.Create("parrot_neuron", n_in)
    kappa = 0.97
    sf = 1.0 - kappa
    params_rec = {"C_m": 1.0, "c_reg": 300.0 / seq, "E_L": 0.0, "eprop_isi_trace_cutoff": 100.0,
                  "f_target": 10.0, "flush_event_send_interval": 1.0 * seq, "I_e": 0.0, "kappa": kappa,
                  "kappa_reg": kappa, "surrogate_gradient_function": "piecewise_linear",
                  "surrogate_gradient_height": 10.0, "surrogate_gradient_width": 1.0 / 33.3, "t_ref": 0.0,
                  "tau_m": 30.0, "V_m": 0.0, "V_th": 0.03}
    model = c["neuron_model"]
    if "psc_delta" in model:
        params_rec.update({"V_reset": -0.5, "c_reg": 2.0 / seq / sf**2, "V_th": 0.5})
    elif model == "eprop_iaf_adapt":
        params_rec.update({"adapt_beta": 0.0, "adapt_tau": 2000.0, "adaptation": 0.0})
    nrns_rec = k.Create(model, n_rec, params_rec)
    nrns_out = k.Create("eprop_readout", n_out, {"C_m": 1.0, "E_L": 0.0, "eprop_isi_trace_cutoff": 100.0,
                                                 "I_e": 0.0, "tau_m": 30.0, "V_m": 0.0})
    gen_rate_target = k.Create("step_rate_generator", n_out)
    gen_learning_window = k.Create("step_rate_generator")
    mm_out = k.Create("multimeter", 1, {"interval": 1.0, "record_from": ["readout_signal", "target_signal"],
                                        "start": 2.0, "stop": 2.0 + task})
    sr = k.Create("spike_recorder")
    w_in = np.array(np.random.randn(n_in, n_rec).T / np.sqrt(n_in), dtype=np.float32)
    w_rec = np.array(np.random.randn(n_rec, n_rec).T / np.sqrt(n_rec), dtype=np.float32)
    np.fill_diagonal(w_rec, 0.0)
    w_out = np.array(np.random.randn(n_rec, n_out).T / np.sqrt(n_rec), dtype=np.float32) * sf
    w_fb = np.array(np.random.randn(n_rec, n_out) / np.sqrt(n_rec), dtype=np.float32)
    if model in ("eprop_iaf", "eprop_iaf_adapt"):
        w_in *= sf
        w_rec *= sf
        w_fb *= sf
    else:
        w_fb /= sf
    eta = c["eta"] if c["eta"] is not None else 1e-4 * sf**2
    k.SetDefaults("eprop_synapse", {"optimizer": {"type": "gradient_descent", "batch_size": 1, "eta": eta,
                                                  "optimize_each_step": bool(c["optimize_each_step"]),
                                                  "Wmin": -100.0, "Wmax": 100.0}})
    k.Connect(gen_spk_in, nrns_in, "one_to_one", {"synapse_model": "static_synapse", "weight": 1.0, "delay": 1.0})
    eprop = {"synapse_model": "eprop_synapse", "delay": 1.0}
    k.Connect(nrns_in, nrns_rec, {"rule": "all_to_all", "allow_autapses": False}, dict(eprop, weight=w_in))
    k.Connect(nrns_rec, nrns_rec, {"rule": "all_to_all", "allow_autapses": False}, dict(eprop, weight=w_rec))
    k.Connect(nrns_rec, nrns_out, "all_to_all", dict(eprop, weight=w_out))
    k.Connect(nrns_out, nrns_rec, "all_to_all", {"synapse_model": "eprop_learning_signal_connection",
                                                 "delay": 1.0, "weight": w_fb})
    k.Connect(gen_rate_target, nrns_out, "one_to_one", {"synapse_model": "rate_connection_delayed",
                                                         "delay": 1.0, "receptor_type": 2})
    k.Connect(gen_learning_window, nrns_out, "all_to_all", {"synapse_model": "rate_connection_delayed",
                                                            "delay": 1.0, "receptor_type": 1})
    k.Connect(mm_out, nrns_out)
    k.Connect(nrns_rec, sr)
    bools = (np.random.rand(seq, n_in) < c["input_rate_prob"]).swapaxes(0, 1)
    starts = np.arange(0.0, task, seq) + 1
    gen_spk_in.set([{"spike_times": np.hstack([np.arange(0.0, seq)[b] + s for s in starts]).astype(np.float32)}
                    for b in bools])
    target = superimposed_sines(seq, [1000, 500, 333, 200])
    gen_rate_target.set({"amplitude_times": np.arange(0.0, task) + 2, "amplitude_values": np.tile(target, n_iter)})
    gen_learning_window.set({"amplitude_times": [2.0], "amplitude_values": [1.0]})
    return {"cfg": c, "mm_out": mm_out, "sr": sr, "rec": nrns_rec, "out": nrns_out, "task": task}


def loss_per_iteration(h):
    """0.5 * sum_t (y - y*)^2 per completed iteration (the NEST example's loss)."""
    c = h["cfg"]
    ev = h["mm_out"].get("events")
    y, ys = ev["readout_signal"], ev["target_signal"]
    n_done = y.size // (c["n_out"] * c["seq"])
    n = n_done * c["n_out"] * c["seq"]
    y = y[:n].reshape(n_done, c["seq"], c["n_out"])
    ys = ys[:n].reshape(n_done, c["seq"], c["n_out"])
    return 0.5 * np.sum((y - ys) ** 2, axis=(1, 2)) / c["n_out"]


def run(cfg: dict, kernel: Kernel | None = None, report=print):
    """Train; report the loss of each iteration as soon as it is complete.  Returns results dict."""
    k = kernel or Kernel()
    t0 = time.perf_counter()
    h = build(k, cfg)
    c = h["cfg"]
    t_build = time.perf_counter() - t0
    k.Simulate(2.0)
    reported = 0
    losses = np.zeros(0)
    t1 = time.perf_counter()
    for _ in range(c["n_iter"]):
        k.Simulate(float(c["seq"]))
        losses = loss_per_iteration(h)
        while reported < losses.size:
            report(f"iteration {reported + 1:4d}/{c['n_iter']}  loss {losses[reported]:.6f}")
            reported += 1
    k.Simulate(3.0)
    losses = loss_per_iteration(h)
    while reported < losses.size:
        report(f"iteration {reported + 1:4d}/{c['n_iter']}  loss {losses[reported]:.6f}")
        reported += 1
    t_sim = time.perf_counter() - t1
    spikes = h["sr"].get("events")
    return {"loss": losses, "spikes": spikes, "t_build": t_build, "t_sim": t_sim,
            "steps": c["n_iter"] * c["seq"] + 5, "timers": dict(k.timers), "config": c}
