"""Run a dense case description (the keyword arguments of ``reference.run_eprop_plus``) through the
NEST-style API and the compiled core, returning the same dict layout as the reference.

Node creation order is NEST's (SPEC 6): spike generators, parrots, recurrent, readouts, target
generators, learning-window generator, recorders, then the force-update generator.
"""
from __future__ import annotations

import numpy as np

import eprop_dist
from eprop_dist import Kernel

REC_FIELDS = ("V_m", "surrogate_gradient", "learning_signal")
OUT_FIELDS = ("V_m", "readout_signal", "target_signal", "error_signal")


def _per_node(params, n):
    """Split a dict of scalars / (n,) arrays into n per-node dicts."""
    out = [dict() for _ in range(n)]
    for k, v in params.items():
        if isinstance(v, str) or np.ndim(v) == 0:
            for d in out:
                d[k] = v
        else:
            for i, d in enumerate(out):
                d[k] = v[i].item() if hasattr(v[i], "item") else v[i]
    return out


def _create_rec(k, models, per):
    """Recurrent population(s) in runs of equal model, gids contiguous; per-node parameter dicts."""
    n_rec = len(per)
    if isinstance(models, str):
        models = [models] * n_rec
    parts, i = [], 0
    while i < n_rec:
        j = i
        while j < n_rec and models[j] == models[i]:
            j += 1
        pop = k.Create(models[i], j - i)
        valid = k.models[models[i]].params
        pop.set([{kk: vv for kk, vv in d.items() if kk in valid} for d in per[i:j]])
        parts.append(pop)
        i = j
    rec = parts[0]
    for p in parts[1:]:
        rec = rec + p
    return rec


def _connect_dense(k, pre, post, W, syn):
    """One synapse per non-zero W[post, pre] (no autapses), source-major like NEST's np.where."""
    src, tgt = np.nonzero(W.T != 0)
    keep = pre.gids[src] != post.gids[tgt]
    k.Connect(pre.gids[src][keep], post.gids[tgt][keep], "one_to_one", dict(syn, weight=W.T[src, tgt][keep]))


def _collect(h, n_steps, extra_steps, rec_fields, out_fields):
    """Recorded signals as (n_steps, n) tables, spikes, and weight events with stamp < n_steps."""
    res = {}
    if h["mm_rec"] is not None:
        t = _table(h["mm_rec"].get("events"), rec_fields, h["rec"].gids, n_steps + extra_steps)
        res.update({f: v[:n_steps] for f, v in t.items()})
    if h["out"] is not None:
        o = _table(h["mm_out"].get("events"), out_fields, h["out"].gids, n_steps + extra_steps)
        res["V_m_out"] = o["V_m"][:n_steps]
        for f in out_fields[1:]:
            res[f if f != "eprop_history_duration" else "eprop_history_duration_out"] = o[f][:n_steps]
    sp = h["sr"].get("events")
    spikes = np.zeros((n_steps + extra_steps, len(h["rec"])), dtype=int)
    np.add.at(spikes, (np.rint(sp["times"]).astype(int) - 1, np.searchsorted(h["rec"].gids, sp["senders"])), 1)
    res["spikes"] = spikes[:n_steps]
    wr = h["wr"].get("events")
    st = np.rint(wr["times"]).astype(int)
    keep = st < n_steps
    res["weight_events"] = {"stamp": st[keep], "sender": wr["senders"][keep], "target": wr["targets"][keep],
                            "weight": wr["weights"][keep]}
    return res


def build_case(case, comm=None, kernel=None, record_rec=True, comm_window=None, flush_interval=None,
               fast_path=None, static_out=False):
    """Build the network of `case` in a (new) Kernel.  Returns (kernel, handles).
    fast_path: None = the kernel default (fast path on), False = the step-by-step reference path."""
    k = kernel or Kernel(comm=comm)
    k.set(resolution=float(case.get("dt", 1.0)), rng_seed=1)
    if fast_path is not None:
        k.set(eprop_fast_path=fast_path)
    if comm_window is not None:
        k.set(comm_window=comm_window)
    W_in, W_rec, W_out, B = (np.asarray(case[x], dtype=float) for x in ("W_in", "W_rec", "W_out", "B"))
    n_rec, n_in = W_in.shape
    n_out = W_out.shape[0]
    gen = k.Create("spike_generator", n_in)
    par = k.Create("parrot_neuron", n_in)
    per = _per_node(case["rec_params"], n_rec)
    if flush_interval is not None:
        for d in per:
            d["flush_event_send_interval"] = flush_interval
    rec = _create_rec(k, case["rec_models"], per)
    out = k.Create("eprop_readout", n_out, case["out_params"]) if n_out else None
    tgen = k.Create("step_rate_generator", n_out) if n_out else None
    lwgen = k.Create("step_rate_generator") if n_out else None
    mm_rec = k.Create("multimeter", 1, {"record_from": list(REC_FIELDS), "interval": 1.0}) if record_rec else None
    mm_out = k.Create("multimeter", 1, {"record_from": list(OUT_FIELDS), "interval": 1.0}) if n_out else None
    sr = k.Create("spike_recorder")
    wr = k.Create("weight_recorder")
    force = k.Create("spike_generator") if case.get("extra_rec_spike_times") is not None else None

    k.SetDefaults("eprop_synapse", {"optimizer": dict(case["optimizer"]), "weight_recorder": wr})
    gen_times = [{"spike_times": np.asarray(t, dtype=float)} for t in case["input_spike_times"]]
    gen.set(gen_times)
    k.Connect(gen, par, "one_to_one", {"synapse_model": "static_synapse", "weight": 1.0, "delay": 1.0})
    syn = {"synapse_model": "eprop_synapse", "delay": 1.0}
    _connect_dense(k, par, rec, W_in, syn)
    _connect_dense(k, rec, rec, W_rec, syn)
    if n_out:
        # static_out: the readouts' input synapses static (no e-prop window onto a readout)
        _connect_dense(k, rec, out, W_out, {"synapse_model": "static_synapse", "delay": 1.0} if static_out else syn)
        k.Connect(out, rec, "all_to_all", {"synapse_model": "eprop_learning_signal_connection",
                                          "weight": B, "delay": 1.0})
        for q in range(n_out):
            tgen[q].set({"amplitude_times": np.asarray(case["target_times"][q], float),
                         "amplitude_values": np.asarray(case["target_values"][q], float)})
        lwgen.set({"amplitude_times": np.asarray(case["lw_times"], float),
                   "amplitude_values": np.asarray(case["lw_values"], float)})
        k.Connect(tgen, out, "one_to_one", {"synapse_model": "rate_connection_delayed", "delay": 1.0,
                                             "receptor_type": 2})
        k.Connect(lwgen, out, "all_to_all", {"synapse_model": "rate_connection_delayed", "delay": 1.0,
                                              "receptor_type": 1})
        k.Connect(mm_out, out)
    if record_rec:
        k.Connect(mm_rec, rec)
    k.Connect(rec, sr)
    if force is not None:
        force.set({"spike_times": np.asarray(case["extra_rec_spike_times"], float)})
        k.Connect(force, par + rec, "all_to_all", {"synapse_model": "static_synapse", "weight": 1000.0,
                                                  "delay": 1.0})
    h = dict(gen=gen, par=par, rec=rec, out=out, mm_rec=mm_rec, mm_out=mm_out, sr=sr, wr=wr)
    return k, h


def _table(ev, fields, senders, n_steps):
    """Multimeter events -> {field: (n_steps, n_senders)} (NaN where not collected)."""
    out = {}
    t_idx = np.rint(ev["times"]).astype(int) - 1
    s_idx = np.searchsorted(senders, ev["senders"])
    for f in fields:
        a = np.full((n_steps, senders.size), np.nan)
        a[t_idx, s_idx] = ev[f]
        out[f] = a
    return out


def run_core(case, comm=None, extra_steps=1, **kw):
    """Simulate `case` for n_steps (+ extra_steps so every iteration's samples are collected)."""
    k, h = build_case(case, comm=comm, **kw)
    n_steps = int(case["n_steps"])
    k.Simulate((n_steps + extra_steps) * float(case.get("dt", 1.0)))
    res = _collect(h, n_steps, extra_steps, REC_FIELDS, OUT_FIELDS)
    res["kernel"] = k
    res["handles"] = h
    return res


def random_case(seed, *, n_in=20, n_rec=16, n_out=2, n_steps=300, models=None, optimizer="adam",
                each_step=True, cutoff=np.inf, flush=np.inf, density=0.6, force_final=True):
    """A randomised small e-prop+ network (dense description for reference.run_eprop_plus)."""
    rng = np.random.default_rng(seed)
    from eprop_dist.models import REC_MODELS, SURROGATES
    if models is None:
        models = [REC_MODELS[i] for i in rng.integers(0, 4, n_rec)]
    elif isinstance(models, str):
        models = [models] * n_rec
    delta = np.array(["psc_delta" in m for m in models])
    rec_params = {
        "C_m": 1.0, "E_L": rng.uniform(-1, 1, n_rec).round(3), "tau_m": rng.uniform(10, 40, n_rec),
        "t_ref": rng.integers(0, 3, n_rec).astype(float), "I_e": rng.uniform(0, 0.01, n_rec),
        "c_reg": rng.uniform(0, 1.0, n_rec), "f_target": 10.0, "kappa": rng.uniform(0.9, 0.99, n_rec),
        "kappa_reg": rng.uniform(0.9, 0.99, n_rec),
        "surrogate_gradient_function": np.array([SURROGATES[i] for i in rng.integers(0, 4, n_rec)], dtype=object),
        "surrogate_gradient_height": rng.uniform(0.3, 3.0, n_rec), "surrogate_gradient_width": rng.uniform(0.05, 0.5, n_rec),
        "eprop_isi_trace_cutoff": cutoff, "flush_event_send_interval": flush,
        "adapt_beta": rng.uniform(0, 0.5, n_rec), "adapt_tau": rng.uniform(20, 200, n_rec),
        "V_reset": -0.2, "refractory_input": rng.integers(0, 2, n_rec).astype(bool),
    }
    rec_params["V_th"] = rec_params["E_L"] + np.where(delta, 0.3, 0.1)
    rec_params["V_m"] = rec_params["E_L"] + rng.uniform(-0.05, 0.05, n_rec)
    rec_params["V_reset"] = rec_params["E_L"] - 0.2
    W_in = rng.normal(0, 0.3, (n_rec, n_in)) * (rng.random((n_rec, n_in)) < density)
    W_rec = rng.normal(0, 0.2, (n_rec, n_rec)) * (rng.random((n_rec, n_rec)) < density)
    np.fill_diagonal(W_rec, 0.0)
    W_out = rng.normal(0, 0.1, (n_out, n_rec))
    B = rng.normal(0, 0.5, (n_rec, n_out))
    times = []
    for i in range(n_in):
        t = np.sort(rng.choice(np.arange(1, n_steps - 5), size=rng.integers(3, n_steps // 10), replace=True))
        times.append(t.astype(float))        # duplicates -> multiplicity
    tt = np.arange(2, n_steps + 2, dtype=float)
    target_values = [np.sin(tt / rng.uniform(10, 40) + rng.uniform(0, 6)) * 0.1 for _ in range(n_out)]
    lw_times = np.array([2.0, n_steps / 3, 2 * n_steps / 3]).round()
    lw_values = np.array([1.0, 0.0, 1.0])
    opt = {"type": optimizer, "batch_size": int(rng.integers(1, 4)), "eta": float(rng.uniform(1e-3, 1e-2)),
           "optimize_each_step": each_step, "Wmin": -0.5, "Wmax": 0.5}
    if optimizer == "adam":
        opt.update({"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7})
    # keep weights inside the bounds as the optimizer would clip them
    W_in = np.clip(W_in, -0.5, 0.5)
    W_rec = np.clip(W_rec, -0.5, 0.5)
    W_out = np.clip(W_out, -0.5, 0.5)
    return dict(n_steps=n_steps, dt=1.0, rec_models=models, rec_params=rec_params,
                out_params={"C_m": 1.0, "E_L": 0.0, "tau_m": rng.uniform(10, 40, n_out), "V_m": 0.0,
                            "eprop_isi_trace_cutoff": cutoff},
                W_in=W_in, W_rec=W_rec, W_out=W_out, B=B, input_spike_times=times,
                target_times=[tt] * n_out, target_values=target_values, lw_times=lw_times, lw_values=lw_values,
                optimizer=opt, extra_rec_spike_times=np.array([n_steps - 3.0]) if force_final else None)


BSS_REC_FIELDS = ("V_m", "surrogate_gradient", "learning_signal", "eprop_history_duration")
BSS_OUT_FIELDS = ("V_m", "readout_signal", "readout_signal_unnorm", "target_signal", "error_signal",
                  "eprop_history_duration")


def build_bss_case(case, comm=None, record_rec=True, out_fields=None, fast_path=None, rec_fields=None):
    """Build a bsshslm dense case (keyword arguments of reference_bsshslm.run_bsshslm) in a Kernel."""
    k = Kernel(comm=comm)
    dt = float(case.get("dt", 1.0))
    k.set(resolution=dt, eprop_update_interval=float(case["update_interval"]),
          eprop_learning_window=float(case["learning_window"]),
          eprop_reset_neurons_on_update=bool(case.get("reset_on_update", True)))
    W_in, W_rec, W_out, B = (np.asarray(case[x], dtype=float) for x in ("W_in", "W_rec", "W_out", "B"))
    n_rec, n_in = W_in.shape
    n_out = W_out.shape[0]
    gen = k.Create("spike_generator", n_in)
    par = k.Create("parrot_neuron", n_in)
    rec = _create_rec(k, case["rec_models"], _per_node(case["rec_params"], n_rec))
    out = k.Create("eprop_readout_bsshslm_2020", n_out)
    out.set(_per_node(case["out_params"], n_out))
    tgen = k.Create("step_rate_generator", n_out)
    mm_rec = k.Create("multimeter", 1, {"record_from": list(BSS_REC_FIELDS if rec_fields is None else rec_fields)}) \
        if record_rec else None
    if fast_path is not None:
        k.set(eprop_fast_path=fast_path)
    mm_out = k.Create("multimeter", 1, {"record_from": list(BSS_OUT_FIELDS if out_fields is None else out_fields)})
    sr = k.Create("spike_recorder")
    wr = k.Create("weight_recorder")
    force = k.Create("spike_generator") if case.get("extra_rec_spike_times") is not None else None
    tau_ro = case.get("tau_m_readout")
    if tau_ro is None:
        tau_ro = float(np.atleast_1d(case["out_params"].get("tau_m", 10.0))[0])
    k.SetDefaults("eprop_synapse_bsshslm_2020", {"optimizer": dict(case["optimizer"]), "weight_recorder": wr,
                                                 "average_gradient": bool(case.get("average_gradient", False))})
    gen.set([{"spike_times": np.asarray(t, dtype=float)} for t in case["input_spike_times"]])
    k.Connect(gen, par, "one_to_one", {"synapse_model": "static_synapse", "weight": 1.0, "delay": 1.0})
    syn = {"synapse_model": "eprop_synapse_bsshslm_2020", "delay": 1.0, "tau_m_readout": float(tau_ro)}
    for pre, post, W in ((par, rec, W_in), (rec, rec, W_rec), (rec, out, W_out)):
        _connect_dense(k, pre, post, W, syn)
    k.Connect(out, rec, "all_to_all", {"synapse_model": "eprop_learning_signal_connection_bsshslm_2020",
                                      "weight": B, "delay": 1.0})
    losses = np.broadcast_to(np.asarray(case["out_params"].get("loss", "mean_squared_error"), dtype=object), (n_out,))
    ce = out.gids[losses == "cross_entropy"]
    if ce.size > 1:        # softmax group: the cross-entropy readouts, all to all without autapses
        k.Connect(ce, ce, {"rule": "all_to_all", "allow_autapses": False},
                  {"synapse_model": "rate_connection_delayed", "receptor_type": 1, "weight": 1.0, "delay": 1.0})
    for q in range(n_out):
        tgen[q].set({"amplitude_times": np.asarray(case["target_times"][q], float),
                     "amplitude_values": np.asarray(case["target_values"][q], float)})
    k.Connect(tgen, out, "one_to_one", {"synapse_model": "rate_connection_delayed", "delay": 1.0,
                                         "receptor_type": 2})
    k.Connect(mm_out, out)
    if record_rec:
        k.Connect(mm_rec, rec)
    k.Connect(rec, sr)
    if force is not None:
        force.set({"spike_times": np.asarray(case["extra_rec_spike_times"], float)})
        k.Connect(force, par + rec, "all_to_all", {"synapse_model": "static_synapse", "weight": 1000.0,
                                                  "delay": 1.0})
    return k, dict(gen=gen, par=par, rec=rec, out=out, mm_rec=mm_rec, mm_out=mm_out, sr=sr, wr=wr)


def run_bss_core(case, comm=None, extra_steps=1, record_rec=True, fast_path=None):
    k, h = build_bss_case(case, comm=comm, record_rec=record_rec, fast_path=fast_path)
    n_steps = int(case["n_steps"])
    k.Simulate((n_steps + extra_steps) * float(case.get("dt", 1.0)))
    res = _collect(h, n_steps, extra_steps, BSS_REC_FIELDS, BSS_OUT_FIELDS)
    res["kernel"] = k
    res["handles"] = h
    return res
