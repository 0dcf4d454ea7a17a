"""Sine-wave pattern generation (SPEC 7.1 e-prop+, 7.2 bsshslm_2020; NEST's
``eprop_supervised_regression_sine-waves[_bsshslm_2020].py``).

``n_in`` input spike generators -> parrots -> ``n_rec`` recurrent neurons -> ``n_out`` readouts; the readouts
learn a superposition of four sines (periods 1000, 500, 333, 200 ms) repeated every sequence.  With
``weights = "rules"`` (default) the input and recurrent projections are made by ``pairwise_bernoulli`` with
normal weights drawn in the core (no dense matrix, any size); ``weights = "nest_example"`` draws NEST's
dense numpy matrices in NEST's call order (to compare with the NEST script at the example size).
"""
from __future__ import annotations

import time

import numpy as np

from .common import Net, PhaseRates, connect_eprop, connect_readout_side, run_pipeline, superimposed_sines

PERIODS = (1000, 500, 333, 200)


def default_eta(cfg):
    if cfg.family == "bsshslm_2020":
        return 1e-4
    return 1e-4 * (1.0 - 0.97) ** 2


def build(k, cfg):
    t0 = time.perf_counter()
    bss = cfg.family == "bsshslm_2020"
    seq, n_in, n_rec, n_out = cfg.seq, cfg.n_in, cfg.n_rec, cfg.n_out
    model = cfg.neuron_model
    nest_rng = cfg.weights == "nest_example"
    if nest_rng:
        np.random.seed(cfg.seed)
        rng = np.random
    else:
        rng = np.random.default_rng(cfg.seed)
    k.set(resolution=1.0, rng_seed=int(cfg.seed) + 1)
    if bss:
        k.set(eprop_update_interval=float(seq), eprop_learning_window=float(seq),
              eprop_reset_neurons_on_update=True)
    gen = k.Create("spike_generator", n_in)
    par = k.Create("parrot_neuron", n_in)
    kappa = 0.97
    sf = 1.0 - kappa
    if bss:
        V_th = 0.03
        p_rec = {"C_m": 1.0, "c_reg": 300.0, "E_L": 0.0, "f_target": 10.0, "flush_event_send_interval": float(seq),
                 "I_e": 0.0, "regular_spike_arrival": False, "surrogate_gradient_function": "piecewise_linear",
                 "surrogate_gradient_height": 0.3 / V_th, "surrogate_gradient_width": 1.0 * V_th, "t_ref": 0.0,
                 "tau_m": 30.0, "V_m": 0.0, "V_th": V_th}
        if "adapt" in model:
            p_rec.update({"adapt_beta": 0.0, "adapt_tau": 2000.0, "adaptation": 0.0})
        p_out = {"C_m": 1.0, "E_L": 0.0, "I_e": 0.0, "loss": "mean_squared_error", "regular_spike_arrival": False,
                 "tau_m": 30.0, "V_m": 0.0}
        out_model, syn_model = "eprop_readout_bsshslm_2020", "eprop_synapse_bsshslm_2020"
        ls_model = "eprop_learning_signal_connection_bsshslm_2020"
    else:
        p_rec = {"C_m": 1.0, "c_reg": 300.0 / seq, "E_L": 0.0, "eprop_isi_trace_cutoff": 100.0, "f_target": 10.0,
                 "flush_event_send_interval": float(seq), "I_e": 0.0, "kappa": kappa, "kappa_reg": kappa,
                 "surrogate_gradient_function": "piecewise_linear", "surrogate_gradient_height": 10.0,
                 "surrogate_gradient_width": 1.0 / 33.3, "t_ref": 0.0, "tau_m": 30.0, "V_m": 0.0, "V_th": 0.03}
        if "psc_delta" in model:
            p_rec.update({"V_reset": -0.5, "c_reg": 2.0 / seq / sf**2, "V_th": 0.5})
        if model.endswith("adapt"):
            p_rec.update({"adapt_beta": 0.0, "adapt_tau": 2000.0, "adaptation": 0.0})
        p_out = {"C_m": 1.0, "E_L": 0.0, "eprop_isi_trace_cutoff": 100.0, "I_e": 0.0, "tau_m": 30.0, "V_m": 0.0}
        out_model, syn_model, ls_model = "eprop_readout", "eprop_synapse", "eprop_learning_signal_connection"
    rec = k.Create(model, n_rec, p_rec)
    out = k.Create(out_model, n_out, p_out)
    tgen = k.Create("step_rate_generator", n_out)
    lwgen = None if bss else k.Create("step_rate_generator")
    mm = k.Create("multimeter", 1, {"interval": 1.0, "record_from": ["readout_signal", "target_signal"]})
    sr = k.Create("spike_recorder")
    force = k.Create("spike_generator")

    # weights (NEST's scaling; the rule-based variant draws the same distributions in the core)
    scale_hidden = sf if (not bss and model in ("eprop_iaf", "eprop_iaf_adapt")) else 1.0
    if nest_rng:
        dt_w = np.float32
        W_in = np.array(rng.randn(n_in, n_rec).T / np.sqrt(n_in), dtype=dt_w)
        W_rec = np.array(rng.randn(n_rec, n_rec).T / np.sqrt(n_rec), dtype=dt_w)
        np.fill_diagonal(W_rec, 0.0)
        W_out = np.array(rng.randn(n_rec, n_out).T / np.sqrt(n_rec), dtype=dt_w)
        B = np.array(rng.randn(n_rec, n_out) / np.sqrt(n_rec), dtype=dt_w)
        W_in = W_in * dt_w(scale_hidden)
        W_rec = W_rec * dt_w(scale_hidden)
    else:
        W_in = W_rec = None
        W_out = rng.standard_normal((n_out, n_rec)) / np.sqrt(n_rec)
        B = rng.standard_normal((n_rec, n_out)) / np.sqrt(n_rec)
    if not bss:
        W_out = W_out * (np.float32(sf) if nest_rng else sf)
        if model in ("eprop_iaf", "eprop_iaf_adapt"):
            B = B * (np.float32(sf) if nest_rng else sf)
        else:
            B = B / (np.float32(sf) if nest_rng else sf)
    eta = cfg.eta if cfg.eta is not None else default_eta(cfg)
    opt = {"type": cfg.optimizer or "gradient_descent", "batch_size": 1, "eta": eta, "Wmin": -100.0, "Wmax": 100.0}
    if not bss:
        opt["optimize_each_step"] = bool(cfg.optimize_each_step)
    k.SetDefaults(syn_model, {"optimizer": opt})    # one call, as NEST's script (SPEC 3.4: the eta lag)
    k.Connect(gen, par, "one_to_one", {"synapse_model": "static_synapse", "weight": 1.0, "delay": 1.0})
    syn = {"synapse_model": syn_model, "delay": 1.0}
    if bss:
        syn["tau_m_readout"] = 30.0
    connect_eprop(k, par, rec, cfg.p_in, scale_hidden / np.sqrt(n_in), syn, dense_W=W_in)
    connect_eprop(k, rec, rec, cfg.p_rec, scale_hidden / np.sqrt(n_rec), syn, autapses=False, dense_W=W_rec)
    k.Connect(rec, out, "all_to_all", dict(syn, weight=np.asarray(W_out, float)))
    k.Connect(out, rec, "all_to_all", {"synapse_model": ls_model, "delay": 1.0, "weight": np.asarray(B, float)})
    connect_readout_side(k, par, rec, out, tgen, lwgen, mm, sr, force, cfg)
    if lwgen is not None:
        lwgen.set({"amplitude_times": [2.0], "amplitude_values": [1.0]})

    bools = (rng.rand(seq, n_in) if nest_rng else rng.random((seq, n_in))) < cfg.input_spike_prob
    if bss:
        bools[0, :] = False          # SPEC 6.2.1: no input spike in the first step of a sequence
    target = superimposed_sines(seq, PERIODS, rng)
    t_idx, i_idx = np.nonzero(bools)
    o = np.argsort(i_idx, kind="stable")
    per_in = np.split(t_idx[o].astype(float), np.searchsorted(i_idx[o], np.arange(1, n_in)))
    target_offset = 4.0 if bss else 2.0

    t_rates = PhaseRates(tgen)
    lw_rates = PhaseRates(lwgen) if lwgen is not None else None

    def load_phase(n, label):
        start = n * seq + 1.0                       # offset_gen = 1
        gen.set([{"spike_times": t + start} for t in per_in])
        t_rates.set(n * seq, [np.arange(seq, dtype=float) + n * seq + target_offset] * n_out, [target] * n_out)
        return None

    class _Sched:     # sine waves: n_iter training iterations, nothing else (SPEC 7.1)
        n_iter_train = cfg.n_iter
        n_iter_test = 0
        do_early_stopping = False
        record_weights = cfg.record_weights

    net = Net(k=k, cfg=_Sched, seq=seq, batch=1, lw=seq, offset=4 if bss else 2, loss="mse", classify=False,
              nodes={"rec": rec, "out": out, "mm": mm, "sr": sr, "force": force}, syn_model=syn_model,
              eta_train=eta, load_phase=load_phase, populations={"in": par, "rec": rec, "out": out},
              info={"task": "sine_waves", "target": target, "_t_build": time.perf_counter() - t0})
    return net


def run(cfg, kernel, report=None, progress=None):
    net = build(kernel, cfg)
    return run_pipeline(net, report=report, progress=progress)
