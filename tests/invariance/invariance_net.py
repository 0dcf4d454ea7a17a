"""A randomised network for rank- and window-invariance checks (run under mpiexec or serially).

    python tests/invariance/invariance_net.py OUT.npz [--delay D] [--comm-window W] [--steps N] [--parts MS,MS,..]

Sparse fixed in-degree e-prop connectivity, mixed recurrent models, three readouts, Poisson and
spike-generator inputs, two e-prop synapse models (gradient descent per spike, Adam each step).
Delays: inputs and readout path `delay`, recurrent `delay + 1`, learning signals `delay + 2` (all
`delay` with --uniform), so the learning-signal shift d_ro + d_or differs from NEST's 2.
Rank 0 writes spikes, weight-recorder events, readout signals and final weights to OUT.npz.
"""
import argparse
import sys

import numpy as np

import eprop_dist


def build(k, delay=1, steps=400, uniform=False):
    rng = np.random.default_rng(42)          # only for the spike-generator times (global data)
    n_in, n_pois = 12, 8
    gens = k.Create("spike_generator", n_in)
    pois = k.Create("poisson_generator", 2, {"rate": 40.0})
    par = k.Create("parrot_neuron", n_in + n_pois, {"flush_event_send_interval": 50.0})
    common = {"C_m": 1.0, "E_L": 0.0, "V_m": 0.0, "tau_m": 20.0, "t_ref": 1.0, "c_reg": 0.5,
              "eprop_isi_trace_cutoff": 30.0, "flush_event_send_interval": 40.0,
              "surrogate_gradient_height": 1.0, "surrogate_gradient_width": 0.2}
    pops = [k.Create("eprop_iaf", 10, dict(common, V_th=0.1)),
            k.Create("eprop_iaf_adapt", 8, dict(common, V_th=0.1, adapt_beta=0.1, adapt_tau=100.0,
                                                surrogate_gradient_function="exponential")),
            k.Create("eprop_iaf_psc_delta", 7, dict(common, V_th=0.3, V_reset=-0.1,
                                                    surrogate_gradient_function="arctan_derivative")),
            k.Create("eprop_iaf_psc_delta_adapt", 6, dict(common, V_th=0.3, V_reset=-0.1, t_ref=0.0,
                                                          surrogate_gradient_function="fast_sigmoid_derivative"))]
    rec = pops[0] + pops[1] + pops[2] + pops[3]
    out = k.Create("eprop_readout", 3, {"C_m": 1.0, "E_L": 0.0, "V_m": 0.0, "tau_m": 15.0,
                                        "eprop_isi_trace_cutoff": 30.0})
    tg = k.Create("step_rate_generator", 3)
    lw = k.Create("step_rate_generator")
    mm = k.Create("multimeter", 1, {"record_from": ["readout_signal", "target_signal", "V_m"]})
    sr = k.Create("spike_recorder")
    wr = k.Create("weight_recorder")
    k.CopyModel("eprop_synapse", "eprop_synapse_adam",
                {"optimizer": {"type": "adam", "eta": 5e-3, "optimize_each_step": True, "batch_size": 2,
                               "Wmin": -1.0, "Wmax": 1.0}, "weight_recorder": wr})
    k.SetDefaults("eprop_synapse", {"optimizer": {"type": "gradient_descent", "eta": 2e-2,
                                                  "optimize_each_step": False, "Wmin": -1.0, "Wmax": 1.0},
                                    "weight_recorder": wr})
    gens.set([{"spike_times": np.unique(rng.integers(1, steps - 20, 12)).astype(float)} for _ in range(n_in)])
    d = float(delay)
    k.Connect(gens, par[:n_in], "one_to_one", {"delay": d})
    k.Connect(pois, par[n_in:], "all_to_all", {"delay": d})
    k.Connect(par, rec, {"rule": "fixed_indegree", "indegree": 6},
              {"synapse_model": "eprop_synapse", "weight": eprop_dist.normal(0.15, 0.1), "delay": d})
    k.Connect(rec, rec, {"rule": "fixed_indegree", "indegree": 5, "allow_autapses": False},
              {"synapse_model": "eprop_synapse_adam", "weight": eprop_dist.uniform(-0.1, 0.2),
               "delay": d if uniform else d + 1})
    k.Connect(rec, out, {"rule": "pairwise_bernoulli", "p": 0.6},
              {"synapse_model": "eprop_synapse_adam", "weight": eprop_dist.normal(0.0, 0.1), "delay": d})
    k.Connect(out, rec, "all_to_all", {"synapse_model": "eprop_learning_signal_connection",
                                       "weight": eprop_dist.normal(0.0, 0.5), "delay": d if uniform else d + 2})
    t = np.arange(1.0, steps + 1)
    for i, g in enumerate(tg):
        g.set({"amplitude_times": t, "amplitude_values": 0.2 * np.sin(t / (7.0 + 3 * i))})
    lw.set({"amplitude_times": [1.0, steps / 2], "amplitude_values": [1.0, 0.5]})
    k.Connect(tg, out, "one_to_one", {"synapse_model": "rate_connection_delayed", "receptor_type": 2})
    k.Connect(lw, out, "all_to_all", {"synapse_model": "rate_connection_delayed", "receptor_type": 1})
    k.Connect(mm, out)
    k.Connect(par + rec, sr)
    return dict(sr=sr, mm=mm, wr=wr, rec=rec, out=out, par=par)


def run(delay=1, comm_window=None, steps=400, comm=None, chunks=1, uniform=False, exchange="allgather",
        fast_path=True, parts=None):
    """Build and simulate `steps` ms in `chunks` equal Simulate calls, or in the Simulate calls
    `parts` (ms each, any multiples of the resolution; their sum is the time simulated)."""
    k = eprop_dist.Kernel(comm=comm)
    # read_scope global: compare the whole network's results on every rank
    k.set(exchange=exchange, read_scope="global", eprop_fast_path=fast_path)
    if comm_window is not None:
        k.set(comm_window=comm_window)
    h = build(k, delay, steps, uniform)
    for ms in (parts if parts is not None else [steps // chunks] * chunks):
        k.Simulate(float(ms))
    sp = h["sr"].get("events")
    mm = h["mm"].get("events")
    wr = h["wr"].get("events")
    c = k.GetConnections(synapse_model=None).get()
    return k, {"spk_t": sp["times"], "spk_s": sp["senders"], "mm_t": mm["times"], "mm_s": mm["senders"],
               "y": mm["readout_signal"], "ys": mm["target_signal"], "vout": mm["V_m"],
               "wr_t": wr["times"], "wr_s": wr["senders"], "wr_g": wr["targets"], "wr_w": wr["weights"],
               "c_s": c["source"], "c_t": c["target"], "c_w": c["weight"]}


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--delay", type=int, default=1)
    p.add_argument("--comm-window", type=int, default=None)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--uniform", action="store_true", help="every spike connection has the same delay")
    p.add_argument("--parts", default=None, help="comma-separated Simulate times in ms (default: one of --steps)")
    a = p.parse_args(argv)
    parts = [float(x) for x in a.parts.split(",")] if a.parts else None
    k, res = run(a.delay, a.comm_window, a.steps, uniform=a.uniform, parts=parts)
    if k._sim.comm.rank == 0:
        np.savez(a.out, **res, n_ranks=k._sim.comm.size, D=k._sim.D)
    return 0


if __name__ == "__main__":
    sys.exit(main())


def truncate(res, t_max):
    """The events of a result dict up to time t_max (ms): runs with different windows collect the
    last window at different times (NEST: the last slice is collected by the next Simulate)."""
    out = dict(res)
    for prefix, tkey in (("spk_", "spk_t"), ("mm_", "mm_t"), ("wr_", "wr_t")):
        keep = np.asarray(res[tkey]) <= t_max
        for key in res:
            if key.startswith(prefix) or (prefix == "mm_" and key in ("y", "ys", "vout")):
                out[key] = np.asarray(res[key])[keep]
    return out
