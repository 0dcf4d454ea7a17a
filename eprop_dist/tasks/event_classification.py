"""The N-MNIST pipeline of SPEC 7.4 (NEST's ``eprop_supervised_classification_neuromorphic_mnist.py``),
shared by the ``nmnist`` task (real data) and the ``digits`` stand-in.

A data set is an object with ``n_in`` (active input pixels), ``len(ds)``, ``ds.sample(i) -> (inputs, times)``
(input-neuron index and step in ``[0, seq]`` of every event) and ``ds.labels``.  Per phase the group of
``batch_size`` samples is ``take(order, range(cur, cur + B), mode="wrap")`` from a seeded permutation; sample
``g``'s events are at ``n P + g seq + time + 1``; targets are one-hot from ``n P + g seq + 2``; the learning
window covers the last ``learning_window`` steps of each sample; accuracy = argmax of the mean readout there.
"""
from __future__ import annotations

import time

import numpy as np

from .common import Net, PhaseRates, connect_eprop, connect_readout_side, run_pipeline


def build(k, cfg, train, test, task_name, info=None, parrot_flush=False):
    t0 = time.perf_counter()
    bss = cfg.family == "bsshslm_2020"
    seq, B, lw = cfg.seq, cfg.batch_size, cfg.learning_window
    P = seq * B
    n_in, n_rec, n_out = train.n_in, cfg.n_rec, 10
    np.random.seed(cfg.seed)
    rng = np.random
    k.set(resolution=1.0, rng_seed=int(cfg.seed) + 1)
    if bss:     # Bellec et al. 2020 variant: per-sample update interval, reset, softmax + cross-entropy
        k.set(eprop_update_interval=float(seq), eprop_learning_window=float(lw), eprop_reset_neurons_on_update=True)
    gen = k.Create("spike_generator", n_in)
    # parrot_flush: the input parrots send flush events every sample, so a rarely firing pixel does not pin
    # the recurrent neurons' e-prop histories back to its last spike (memory; a flush changes no number in
    # exact arithmetic, SPEC 3.5, but splits gradient sums: last-digit differences).  NEST's N-MNIST
    # example sets none, so nmnist keeps NEST's network; the digits stand-in flushes.
    par = k.Create("parrot_neuron", n_in, {"flush_event_send_interval": float(seq)} if parrot_flush else {})
    tau_out = (20.0 if bss else 100.0) if cfg.tau_m_readout is None else float(cfg.tau_m_readout)
    if bss:
        kappa, sf = float(np.exp(-1.0 / tau_out)), 1.0
        p_rec = {"C_m": 1.0, "c_reg": 300.0 if cfg.c_reg is None else float(cfg.c_reg), "E_L": 0.0,
                 "f_target": 10.0, "flush_event_send_interval": float(seq), "I_e": 0.0,
                 "regular_spike_arrival": True, "surrogate_gradient_function": "piecewise_linear",
                 "surrogate_gradient_height": 0.3 / 0.6, "surrogate_gradient_width": 0.6, "t_ref": 0.0,
                 "tau_m": 30.0, "V_m": 0.0, "V_th": 0.6}
        p_out = {"C_m": 1.0, "E_L": 0.0, "I_e": 0.0, "loss": "cross_entropy", "regular_spike_arrival": False,
                 "tau_m": tau_out, "V_m": 0.0}
        out_model, syn_model = "eprop_readout_bsshslm_2020", "eprop_synapse_bsshslm_2020"
        ls_model = "eprop_learning_signal_connection_bsshslm_2020"
    else:
        kappa = 0.99 if cfg.tau_m_readout is None else float(np.exp(-1.0 / tau_out))
        sf = 1.0 - kappa
        p_rec = {"C_m": 1.0, "c_reg": 2.0 / seq / sf**2 if cfg.c_reg is None else float(cfg.c_reg), "E_L": 0.0,
                 "eprop_isi_trace_cutoff": 100.0, "f_target": 10.0, "flush_event_send_interval": float(seq),
                 "I_e": 0.0, "kappa": kappa, "kappa_reg": kappa, "surrogate_gradient_function": "piecewise_linear",
                 "surrogate_gradient_height": 0.5, "surrogate_gradient_width": 1.0 / 1.7, "t_ref": 0.0,
                 "tau_m": 30.0, "V_m": 0.0, "V_th": 0.6}
        p_out = {"C_m": 1.0, "E_L": 0.0, "eprop_isi_trace_cutoff": 100.0, "I_e": 0.0, "tau_m": tau_out, "V_m": 0.0}
        out_model, syn_model, ls_model = "eprop_readout", "eprop_synapse", "eprop_learning_signal_connection"
    model = cfg.neuron_model
    if "psc_delta" in model:
        p_rec.update({"V_reset": -0.5})
    if "adapt" in model:
        p_rec.update({"adapt_beta": 0.0, "adapt_tau": 2000.0, "adaptation": 0.0})
    rec = k.Create(model, n_rec, p_rec)
    out = k.Create(out_model, n_out, p_out)
    tgen = k.Create("step_rate_generator", n_out)
    lwgen = None if bss else k.Create("step_rate_generator")
    mm = k.Create("multimeter", 1, {"interval": 1.0, "record_from": ["readout_signal", "target_signal"]})
    sr = k.Create("spike_recorder")
    force = k.Create("spike_generator")
    nest_w = cfg.weights == "nest_example"
    if nest_w:     # SPEC 7.4: float64, masks drawn after all four matrices
        W_in = rng.randn(n_in, n_rec).T / np.sqrt(n_in) * cfg.input_weight_scale
        W_rec = rng.randn(n_rec, n_rec).T / np.sqrt(n_rec)
        np.fill_diagonal(W_rec, 0.0)
    lim = np.sqrt(3.0 / max(1.0, (n_rec + n_out) / 2.0))
    W_out = rng.uniform(-lim, lim, (n_rec, n_out)).T * sf
    Bfb = rng.randn(n_rec, n_out) * ((1.0 / sf) if cfg.feedback_scale is None else cfg.feedback_scale)
    if nest_w:
        W_in = W_in * rng.choice([0, 1], (n_rec, n_in), p=[1 - cfg.p_in, cfg.p_in])
        W_rec = W_rec * rng.choice([0, 1], (n_rec, n_rec), p=[1 - cfg.p_rec, cfg.p_rec])
        rng.choice([0, 1], (n_out, n_rec), p=[0.0, 1.0])
    else:
        W_in = W_rec = None
    if bss:
        eta = cfg.eta if cfg.eta is not None else 5e-3
        opt = {"type": cfg.optimizer or "adam", "batch_size": int(cfg.optimizer_batch_size), "eta": eta,
               "Wmin": -100.0, "Wmax": 100.0}
        if opt["type"] == "adam":
            opt.update({"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8})
        k.SetDefaults(syn_model, {"optimizer": opt, "average_gradient": True})
    else:
        eta = cfg.eta if cfg.eta is not None else 5e-3 * sf**2
        opt = {"type": cfg.optimizer or "gradient_descent", "batch_size": int(cfg.optimizer_batch_size), "eta": eta,
               "Wmin": -100.0, "Wmax": 100.0, "optimize_each_step": bool(cfg.optimize_each_step)}
        k.SetDefaults(syn_model, {"optimizer": opt})
    k.Connect(gen, par, "one_to_one", {"synapse_model": "static_synapse", "weight": 1.0, "delay": 1.0})
    syn = {"synapse_model": syn_model, "delay": 1.0}
    if bss:
        syn["tau_m_readout"] = tau_out
    connect_eprop(k, par, rec, cfg.p_in, cfg.input_weight_scale / np.sqrt(n_in), syn, dense_W=W_in)
    connect_eprop(k, rec, rec, cfg.p_rec, 1.0 / np.sqrt(n_rec), syn, autapses=False, dense_W=W_rec)
    k.Connect(rec, out, "all_to_all", dict(syn, weight=W_out))
    if cfg.p_in_out > 0:          # optional direct input -> readout projection (not in NEST's example)
        connect_eprop(k, par, out, cfg.p_in_out, sf / np.sqrt(n_in), syn)
    k.Connect(out, rec, "all_to_all", {"synapse_model": ls_model, "delay": 1.0, "weight": Bfb})
    connect_readout_side(k, par, rec, out, tgen, lwgen, mm, sr, force, cfg, softmax=bss)
    offset = 4 if bss else 2
    order = {"train": rng.permutation(len(train)), "test": rng.permutation(len(test))}
    cur = {"train": 0, "test": 0}
    sets = {"train": train, "test": test}

    t_rates = PhaseRates(tgen)
    lw_rates = PhaseRates(lwgen) if lwgen is not None else None

    def load_phase(n, label):
        which = "train" if label == "training" else "test"
        ds, N = sets[which], len(sets[which])
        idx = np.take(order[which], range(cur[which], cur[which] + B), mode="wrap")
        cur[which] = (cur[which] + B) % N
        ins, ts = [], []
        for g, i in enumerate(idx):
            a, t = ds.sample(int(i))
            ins.append(a)
            ts.append(t + n * P + g * seq + 1)
        ins = np.concatenate(ins)
        ts = np.concatenate(ts).astype(float)
        o = np.lexsort((ts, ins))
        ins, ts = ins[o], ts[o]
        per = np.split(ts, np.searchsorted(ins, np.arange(1, n_in)))
        gen.set([{"spike_times": t} for t in per])
        labels = np.asarray(ds.labels)[idx]
        onehot = np.zeros((n_out, B))
        onehot[labels, np.arange(B)] = 1.0
        tt = np.arange(0.0, P, seq) + n * P + offset
        t_rates.set(n * P, [tt] * n_out, list(onehot))
        if lwgen is not None:
            lw_t = (np.arange(0.0, P, seq)[:, None] + np.array([0.0, seq - lw])).ravel() + n * P + 2
            lw_rates.set(n * P, [lw_t], [np.tile([0.0, 1.0], B)])
        return labels

    inf = {"task": task_name, "n_in": n_in, "n_train": len(train), "n_test": len(test),
           "_t_build": time.perf_counter() - t0}
    inf.update(info or {})
    return Net(k=k, cfg=cfg, seq=seq, batch=B, lw=lw, offset=offset, loss="ce" if bss else "mse", classify=True,
               nodes={"rec": rec, "out": out, "mm": mm, "sr": sr, "force": force}, syn_model=syn_model,
               eta_train=eta, load_phase=load_phase, populations={"in": par, "rec": rec, "out": out}, info=inf)


def run(cfg, kernel, train, test, task_name, report=None, progress=None, info=None, parrot_flush=False):
    return run_pipeline(build(kernel, cfg, train, test, task_name, info, parrot_flush=parrot_flush), report=report,
                        progress=progress)
