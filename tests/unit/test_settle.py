"""Internal flushes of the e-prop+ fast path (kernel setting eprop_settle_windows, _settle in
csrc/eprop_dist/_eprop_synapse.pyx): a synapse whose cutoff window is over runs it at a window start
and gives up its update-history key.  The numbers are those of the run without settling, bit for bit
(same floating-point operations), and a source that falls silent no longer pins its targets' history
ring (the control run without settling shows that the memory test can fail)."""
import numpy as np
import pytest

import eprop_dist
from api_cases import build_case, random_case, _collect, REC_FIELDS, OUT_FIELDS



def run(case, settle, **kw):
    k = eprop_dist.Kernel()
    k.set(eprop_settle_windows=settle)
    k, h = build_case(case, kernel=k, **kw)
    n = int(case["n_steps"])
    k.Simulate(n + 1.0)
    res = _collect(h, n, 1, REC_FIELDS, OUT_FIELDS)
    c = k.GetConnections(synapse_model="eprop_synapse").get()
    res["final_weights"] = np.asarray(c["weight"])
    return k, res


def assert_identical(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if key == "weight_events":
            for f in a[key]:
                np.testing.assert_array_equal(b[key][f], a[key][f], err_msg=f)
        else:
            np.testing.assert_array_equal(b[key], a[key], err_msg=key)


@pytest.mark.parametrize("seed,cutoff,flush,opt", [(1, 12.0, np.inf, "gradient_descent"), (2, 2.0, 25.0, "adam"),
                                                   (3, 0.0, np.inf, "gradient_descent"), (4, 30.0, 25.0, "adam"),
                                                   (5, 1.0, 25.0, "gradient_descent")])
def test_settle_changes_no_number(seed, cutoff, flush, opt):
    """Recurrent neurons not recorded (their history is fast-only, so they are settled too); all four
    models (adaptive targets stay on the step path and are never settled), flushes on and off."""
    case = random_case(seed, optimizer=opt, each_step=False, cutoff=cutoff, flush=flush, n_steps=400)
    k_on, on = run(case, True, record_rec=False)
    k_off, off = run(case, False, record_rec=False)
    syn_on, syn_off = k_on._sim.core.syn, k_off._sim.core.syn
    assert syn_off.n_settled == 0
    assert syn_on.n_settled > 100, f"settled only {syn_on.n_settled} windows"
    assert np.asarray(k_on._sim.core.history.fast_only)[:k_on._sim.core.n_rec].sum() >= 3   # non-adaptive ones
    assert syn_on.n_fast_events > 0 or cutoff == 0.0     # cutoff 0: no entry is ever evaluated
    assert_identical(off, on)


def test_settle_is_off_where_signals_are_recorded():
    """learning_signal recorded: the recurrent neurons keep NEST's erasure, so nothing onto them is
    settled (the readouts have no cutoff here: nothing to settle either); the numbers are the same."""
    case = random_case(6, optimizer="gradient_descent", each_step=False, cutoff=10.0, n_steps=300)
    k, on = run(case, True)
    assert np.asarray(k._sim.core.history.fast_only)[:k._sim.core.n_rec].sum() == 0
    assert k._sim.core.syn.n_settled == 0
    assert k._sim.core.syn.n_fast_events > 0
    assert_identical(run(case, False)[1], on)


def silent_sources(settle, steps=3000, active=200, cutoff=20.0, delay=1.0, comm_window=None, comm=None):
    """Inputs and recurrent neurons fire for `active` steps, then fall silent; no flush events, no
    recordable that needs NEST's erasure (so every target is fast-only)."""
    k = eprop_dist.Kernel(comm=comm)
    k.set(eprop_settle_windows=settle)
    if comm_window is not None:
        k.set(comm_window=comm_window)
    rng = np.random.default_rng(0)
    n_in, n_rec = 20, 10
    gens = k.Create("spike_generator", n_in)
    par = k.Create("parrot_neuron", n_in)
    rec = k.Create("eprop_iaf", n_rec, {"C_m": 1.0, "E_L": 0.0, "V_m": 0.0, "V_th": 0.05, "tau_m": 20.0,
                                        "eprop_isi_trace_cutoff": cutoff})
    out = k.Create("eprop_readout", 1, {"eprop_isi_trace_cutoff": cutoff})
    mm = k.Create("multimeter", 1, {"record_from": ["V_m"], "interval": 10.0})
    sr = k.Create("spike_recorder")
    gens.set([{"spike_times": np.unique(rng.integers(1, active, 15)).astype(float)} for _ in range(n_in)])
    wr = k.Create("weight_recorder")
    k.SetDefaults("eprop_synapse", {"optimizer": {"type": "gradient_descent", "eta": 1e-3,
                                                  "optimize_each_step": False}, "weight_recorder": wr})
    k.Connect(gens, par, "one_to_one", {"delay": delay})
    k.Connect(par, rec, "all_to_all", {"synapse_model": "eprop_synapse", "weight": 0.05, "delay": delay})
    k.Connect(rec, rec, {"rule": "all_to_all", "allow_autapses": False}, {"synapse_model": "eprop_synapse",
                                                                          "weight": 0.01, "delay": delay})
    k.Connect(rec, out, "all_to_all", {"synapse_model": "eprop_synapse", "weight": 0.1, "delay": delay})
    k.Connect(mm, rec + out)
    k.Connect(rec, sr)
    # a late spike of every input: the synapses' settled windows meet a real event again
    late = k.Create("spike_generator", 1, {"spike_times": [float(steps - 50)]})
    k.Connect(late, par, "all_to_all", {"weight": 1.0, "delay": delay})
    k.Simulate(float(steps))
    c = k.GetConnections(synapse_model="eprop_synapse").get()
    sp, m, w = sr.get("events"), mm.get("events"), wr.get("events")
    return k, {"w": np.asarray(c["weight"]), "spk_t": sp["times"], "spk_s": sp["senders"], "mm_t": m["times"],
               "mm_v": m["V_m"], "wr_t": w["times"], "wr_s": w["senders"], "wr_g": w["targets"],
               "wr_w": w["weights"]}


def truncate(r, t_max):
    """Events up to t_max: runs with different windows collect the last window at different times."""
    out = {}
    for key, v in r.items():
        if key != "w":
            v = np.asarray(v)[np.asarray(r[key.split("_")[0] + "_t"]) <= t_max]
        out[key] = v
    return out


def test_settle_bounds_history_of_silent_sources():
    k_on, on = silent_sources(True)
    k_off, off = silent_sources(False)
    assert np.all(np.asarray(k_on._sim.core.history.fast_only) == 1)
    assert k_on._sim.core.syn.n_settled > 200
    for key in on:
        np.testing.assert_array_equal(on[key], off[key], err_msg=key)
    assert k_off._sim.core.history.capacity >= 2048      # the control: a silent source pins the ring
    assert k_on._sim.core.history.capacity <= 128        # cutoff 20 + window + shift, a power of two
    assert np.asarray(k_on._sim.core.history.n_entries).max() <= 64


@pytest.mark.parametrize("settle", [True, False])
def test_settle_window_invariant(settle):
    """Delays of 3 steps (learning-signal shift 2 -> 4): windows D = 1..3 settle at different window
    starts; the results are bit-identical across D and to the run without settling."""
    runs = {D: silent_sources(settle, steps=900, active=300, delay=3.0, comm_window=D) for D in (1, 2, 3)}
    if settle:
        assert min(k._sim.core.syn.n_settled for k, _ in runs.values()) > 200
    ref = truncate(silent_sources(False, steps=900, active=300, delay=3.0, comm_window=3)[1], 890.0)
    for D, (_, r) in runs.items():
        r = truncate(r, 890.0)
        assert r["wr_w"].size > 1000
        for key in r:
            if key == "w":                      # final weights: the last window's spikes depend on D
                continue
            np.testing.assert_array_equal(r[key], ref[key], err_msg=f"D={D} {key}")
