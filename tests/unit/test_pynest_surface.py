"""PyNEST 3.10 module-level surface (issue 12) and "nothing accepted silently" (issue 9) on one rank.

Every test checks values or the exact error class and the field named in the message."""
import json

import numpy as np
import pytest

import eprop_dist as nest


@pytest.fixture(autouse=True)
def reset():
    nest.ResetKernel()
    yield
    nest.ResetKernel()


def small_net(wr_params=None, eta=1e-3, n_in=4, n_rec=3, steps=60, wmax=100.0):
    """Inputs -> recurrent eprop_iaf -> readout, trained for `steps` ms, with a weight recorder."""
    rng = np.random.default_rng(3)
    gen = nest.Create("spike_generator", n_in)
    par = nest.Create("parrot_neuron", n_in)
    rec = nest.Create("eprop_iaf", n_rec, {"C_m": 1.0, "E_L": 0.0, "V_m": 0.0, "V_th": 0.03, "t_ref": 0.0,
                                           "tau_m": 30.0, "surrogate_gradient_height": 10.0,
                                           "surrogate_gradient_width": 0.03})
    out = nest.Create("eprop_readout", 1, {"C_m": 1.0, "E_L": 0.0, "V_m": 0.0, "tau_m": 30.0})
    tgt = nest.Create("step_rate_generator")
    lw = nest.Create("step_rate_generator")
    wr = nest.Create("weight_recorder", params=wr_params or {})
    nest.SetDefaults("eprop_synapse", {"optimizer": {"type": "gradient_descent", "eta": eta, "Wmin": -wmax,
                                                     "Wmax": wmax},
                                       "weight_recorder": wr})
    nest.Connect(gen, par, "one_to_one")
    nest.Connect(par, rec, "all_to_all", {"synapse_model": "eprop_synapse",
                                          "weight": rng.normal(0, 0.5, (n_rec, n_in))})
    nest.Connect(rec, rec, {"rule": "all_to_all", "allow_autapses": False},
                 {"synapse_model": "eprop_synapse", "weight": rng.normal(0, 0.5, (n_rec, n_rec))})
    nest.Connect(rec, out, "all_to_all", {"synapse_model": "eprop_synapse", "weight": rng.normal(0, 0.5, (1, n_rec))})
    nest.Connect(out, rec, "all_to_all", {"synapse_model": "eprop_learning_signal_connection",
                                          "weight": rng.normal(0, 0.5, (n_rec, 1))})
    t = np.arange(1.0, steps + 1)
    tgt.set({"amplitude_times": t + 1, "amplitude_values": np.sin(t / 5.0)})
    lw.set({"amplitude_times": [2.0], "amplitude_values": [1.0]})
    nest.Connect(tgt, out, "one_to_one", {"synapse_model": "rate_connection_delayed", "receptor_type": 2})
    nest.Connect(lw, out, "all_to_all", {"synapse_model": "rate_connection_delayed", "receptor_type": 1})
    gen.set([{"spike_times": np.sort(rng.choice(np.arange(1.0, steps), 12, replace=False))} for _ in range(n_in)])
    return dict(gen=gen, par=par, rec=rec, out=out, wr=wr)


# ---- verbosity, module attributes -------------------------------------------------------------
def test_verbosity_levels_and_old_form():
    nest.verbosity = nest.VerbosityLevel.WARNING
    assert nest.verbosity == nest.VerbosityLevel.WARNING == 20
    nest.set_verbosity("M_ERROR")
    assert nest.get_verbosity() is nest.VerbosityLevel.ERROR
    with pytest.raises(nest.BadProperty, match="M_LOUD"):
        nest.set_verbosity("M_LOUD")
    nest.verbosity = nest.VerbosityLevel.INFO


def test_kernel_properties_as_module_attributes():
    assert nest.resolution == 1.0 and nest.rng_seed == 1 and nest.biological_time == 0.0
    nest.resolution = 0.5
    nest.rng_seed = 7
    assert nest.GetKernelStatus("resolution") == 0.5 and nest.rng_seed == 7
    assert nest.get("resolution") == 0.5 and nest.get("resolution", "rng_seed") == [0.5, 7]
    assert nest.total_num_virtual_procs == 1 and nest.num_processes == 1
    assert "eprop_iaf" in nest.node_models and "eprop_synapse" in nest.synapse_models
    nest.CopyModel("eprop_iaf", "my_iaf")
    assert "my_iaf" in nest.node_models
    with pytest.raises(nest.BadProperty, match="biological_time is read-only"):
        nest.biological_time = 3.0
    with pytest.raises(nest.BadProperty, match="node_models is read-only"):
        nest.node_models = ()
    with pytest.raises(AttributeError, match="resolutoin"):
        nest.resolutoin = 0.1
    with pytest.raises(AttributeError):
        nest.no_such_thing  # noqa: B018


def test_biological_time_advances():
    nest.Create("eprop_iaf")
    nest.Simulate(7.0)
    assert nest.biological_time == 7.0


def test_nest_error_names_are_our_classes():
    assert nest.NESTErrors.BadProperty is nest.BadProperty
    assert nest.NESTErrors.UnknownModelName is nest.UnknownModel
    assert nest.NESTErrors.NESTError is nest.NESTError is nest.EpropError
    with pytest.raises(nest.NESTErrors.BadProperty, match="surrogate_gradient_function"):
        nest.SetDefaults("eprop_iaf", {"surrogate_gradient_function": "nope"})
    with pytest.raises(nest.NESTErrors.UnknownModelName, match="eprop_nope"):
        nest.Create("eprop_nope")


def test_rank_numprocesses_and_create_without_count():
    assert nest.Rank() == 0 and nest.NumProcesses() == 1
    mm = nest.Create("multimeter", {"record_from": ["V_m"], "interval": 2.0})
    assert len(mm) == 1 and mm.get("record_from") == ["V_m"] and mm.get("interval") == 2.0
    n = nest.GetKernelStatus("network_size")
    with pytest.raises(nest.BadProperty, match="interval"):
        nest.Create("multimeter", {"interval": -1.0})
    assert nest.GetKernelStatus("network_size") == n        # the failed Create created nothing
    with pytest.raises(nest.BadProperty, match="n must be a positive integer"):
        nest.Create("eprop_iaf", True)


# ---- kernel keys that do nothing are refused ---------------------------------------------------
def test_threads_and_virtual_processes():
    nest.set(total_num_virtual_procs=1, local_num_threads=1, print_time=False)
    assert nest.GetKernelStatus("total_num_virtual_procs") == 1
    with pytest.raises(nest.BadProperty, match="total_num_virtual_procs = 4"):
        nest.set(total_num_virtual_procs=4)
    with pytest.raises(nest.BadProperty, match="local_num_threads = 8"):
        nest.set(local_num_threads=8)
    with pytest.raises(nest.BadProperty, match="print_time must be a bool"):
        nest.set(print_time="yes")


def test_bad_key_changes_nothing():
    with pytest.raises(nest.UnknownParameter, match="rng_sed"):
        nest.set(resolution=0.5, rng_sed=3)
    assert nest.resolution == 1.0


def test_print_time_prints_progress(capsys):
    nest.set(print_time=True)
    nest.Create("eprop_iaf")
    nest.Simulate(20.0)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if "Model time" in ln]
    assert len(lines) == 10 and "100.0%" in lines[-1] and "Model time: 20.0 ms" in lines[-1]


def test_print_time_splitting_gives_the_same_results():
    res = []
    for pt in (False, True):
        nest.ResetKernel()
        nest.set(print_time=pt)
        small_net()
        nest.Simulate(60.0)
        res.append(nest.GetConnections().get("weight"))
    np.testing.assert_array_equal(res[0], res[1])


def test_resolution_change_after_create_is_refused():
    nest.Create("eprop_iaf")
    with pytest.raises(nest.BadProperty, match="resolution cannot be changed after nodes were created"):
        nest.resolution = 0.1
    nest.resolution = 1.0          # the same value is fine


# ---- Simulate arguments ----------------------------------------------------------------------
@pytest.mark.parametrize("bad,msg", [("10", "number of ms"), (float("nan"), "finite"), (float("inf"), "finite"),
                                     (-5.0, ">= 0 ms"), (True, "number of ms"), (0.5, "multiple of the resolution")])
def test_simulate_refuses_bad_times_before_building(bad, msg):
    nest.Create("eprop_iaf")
    with pytest.raises(nest.BadProperty, match=msg):
        nest.Simulate(bad)
    assert nest.kernel()._sim is None


# ---- connections: values checked, SynapseCollection --------------------------------------------
def test_connect_refuses_nan_and_transposed_weights():
    a = nest.Create("eprop_iaf", 5)
    b = nest.Create("eprop_iaf", 1)
    w = np.full((1, 5), 0.1)
    w[0, 2] = np.nan
    with pytest.raises(nest.BadProperty, match="weight must be finite"):
        nest.Connect(a, b, "all_to_all", {"synapse_model": "eprop_synapse", "weight": w})
    with pytest.raises(nest.IllegalConnection, match=r"shape \(5, 1\), expected \(1, 5\)"):
        nest.Connect(a, b, "all_to_all", {"synapse_model": "eprop_synapse", "weight": np.ones((5, 1))})
    nest.Connect(a, b, "all_to_all", {"synapse_model": "eprop_synapse", "weight": np.ones((1, 5))})
    assert nest.GetKernelStatus("num_connections") == 5


def test_recorder_with_eprop_synapse_is_refused():
    a = nest.Create("eprop_iaf")
    sr = nest.Create("spike_recorder")
    with pytest.raises(nest.IllegalConnection, match="recorders connect with static_synapse"):
        nest.Connect(a, sr, "all_to_all", {"synapse_model": "eprop_synapse"})


def test_num_connections_before_and_after_build():
    a = nest.Create("eprop_iaf", 10)
    nest.Connect(a, a, {"rule": "fixed_indegree", "indegree": 3}, {"synapse_model": "eprop_synapse"})
    nest.Connect(a[:2], a[2:4], "one_to_one")
    assert nest.GetKernelStatus("num_connections") == 32
    assert nest.kernel()._sim is None
    assert len(nest.GetConnections()) == 32 == nest.GetKernelStatus()["num_connections"]


def test_synapse_collection_indexing_and_attributes():
    h = small_net()
    conns = nest.GetConnections(h["par"], h["rec"])
    full = conns.get()
    assert len(conns) == 12 and np.all(np.diff(full["source"]) >= 0)
    c0 = conns[0]
    assert len(c0) == 1
    assert c0.get("source") == full["source"][0] and c0.get("target") == full["target"][0]
    assert c0.weight == full["weight"][0]
    np.testing.assert_array_equal(conns.weight, full["weight"])
    np.testing.assert_array_equal(conns[3:7].get("weight"), full["weight"][3:7])
    assert conns[-1].get("target") == full["target"][-1]
    with pytest.raises(IndexError):
        conns[12]
    with pytest.raises(AttributeError, match="weigth"):
        conns.weigth  # noqa: B018
    new = np.linspace(-1.0, 1.0, 12)
    conns.weight = new
    np.testing.assert_array_equal(nest.GetConnections(h["par"], h["rec"]).get("weight"), new)
    conns[2:4].set([{"weight": 5.0}, {"weight": 6.0}])
    got = conns.get("weight")
    assert got[2] == 5.0 and got[3] == 6.0 and got[4] == new[4]
    with pytest.raises(nest.BadProperty, match="3 values for 12 connections"):
        conns.set(weight=[1.0, 2.0, 3.0])
    with pytest.raises(nest.BadProperty, match="finite"):
        conns.set(weight=np.nan)
    with pytest.raises(nest.BadProperty, match="2 parameter dicts for 12"):
        conns.set([{"weight": 1.0}] * 2)
    np.testing.assert_array_equal(conns.get("weight")[5:], new[5:])       # refused sets changed nothing
    with pytest.raises(nest.BadProperty, match="output='pandas'"):
        conns.get(output="pandas")
    with pytest.raises(nest.BadProperty, match="output='pandas'"):
        h["rec"].get("V_m", output="pandas")


def test_json_output_of_nodes_and_connections():
    h = small_net()
    d = json.loads(h["rec"][0].get(["V_th", "tau_m"], output="json"))
    assert d == {"V_th": 0.03, "tau_m": 30.0}
    c = json.loads(nest.GetConnections(h["rec"], h["out"]).get(["source", "weight"], output="json"))
    assert c["source"] == h["rec"].tolist()


# ---- weight_recorder filters -------------------------------------------------------------------
def test_weight_recorder_senders_targets_start_stop():
    h = small_net()
    nest.Simulate(60.0)
    all_ev = h["wr"].get("events")
    assert all_ev["times"].size > 20
    sel_s, sel_t = h["par"][:2] + h["rec"][:1], h["rec"][1:] + h["out"]
    nest.ResetKernel()
    h2 = small_net({"senders": sel_s, "targets": sel_t, "start": 10.0, "stop": 40.0})
    assert h2["wr"].get("senders") == sel_s and h2["wr"].get("stop") == 40.0
    nest.Simulate(60.0)
    got = h2["wr"].get("events")
    keep = (np.isin(all_ev["senders"], sel_s.gids) & np.isin(all_ev["targets"], sel_t.gids)
            & (all_ev["times"] > 10.0) & (all_ev["times"] <= 40.0))
    assert 0 < keep.sum() < all_ev["times"].size
    for key in ("senders", "targets", "times", "weights"):
        np.testing.assert_array_equal(got[key], all_ev[key][keep], err_msg=key)
    with pytest.raises(nest.BadProperty, match="senders must be a NodeCollection or node ids"):
        h2["wr"].set(senders=[0.5])


# ---- learning that diverges stops with a message ------------------------------------------------
def test_infinite_learning_rate_is_refused_up_front():
    with pytest.raises(nest.BadProperty, match="eta = inf"):
        nest.SetDefaults("eprop_synapse", {"optimizer": {"eta": float("inf")}})
    assert nest.GetDefaults("eprop_synapse")["optimizer"]["eta"] == 1e-4


def test_non_finite_weight_stops_training():
    small_net(eta=1e306, wmax=np.inf)
    with pytest.raises(nest.KernelException, match="became non-finite"):
        nest.Simulate(60.0)


# ---- Simulate of any multiple of the resolution --------------------------------------------------
def delayed_net(comm_window=None):
    nest.ResetKernel()
    if comm_window is not None:
        nest.set(comm_window=comm_window)
    gen = nest.Create("spike_generator", 3)
    par = nest.Create("parrot_neuron", 3)
    rec = nest.Create("eprop_iaf", 4, {"V_th": -69.5})
    sr = nest.Create("spike_recorder")
    nest.Connect(gen, par, "one_to_one", {"delay": 3.0})
    nest.Connect(par, rec, "all_to_all", {"synapse_model": "eprop_synapse", "weight": 40.0, "delay": 3.0})
    nest.Connect(rec, rec, {"rule": "all_to_all", "allow_autapses": False},
                 {"synapse_model": "eprop_synapse", "weight": 5.0, "delay": 4.0})
    nest.Connect(par + rec, sr)
    gen.set([{"spike_times": [1.0, 4.0, 9.0]}, {"spike_times": [2.0, 7.0]}, {"spike_times": [5.0, 11.0, 13.0]}])
    return sr


def test_simulate_any_multiple_of_the_resolution():
    """Minimum delay 3 ms: Simulate(20.0) runs (NEST semantics) with windows of 3 steps and a last one
    of 2; split as 20 + 1 + 6 ms it equals one Simulate(27.0) (same last window 24..27: everything
    equal) and a one-step window (events up to the 24 ms the D = 3 runs have collected)."""
    runs = []
    for cw, parts in ((None, (20.0, 1.0, 6.0)), (None, (27.0,)), (1, (27.0,)), (1, (20.0, 7.0))):
        sr = delayed_net(cw)
        for ms in parts:
            nest.Simulate(ms)
        assert nest.biological_time == 27.0 and nest.GetKernelStatus("comm_window") == (cw or 3)
        runs.append((sr.get("events"), nest.GetConnections().get("weight")))
    ev0, w0 = runs[0]
    assert ev0["times"].size > 10 and ev0["times"].max() <= 24.0
    np.testing.assert_array_equal(runs[1][1], w0)
    for ev, _ in runs[1:]:
        keep = ev["times"] <= 24.0
        np.testing.assert_array_equal(ev["times"][keep], ev0["times"])
        np.testing.assert_array_equal(ev["senders"][keep], ev0["senders"])
    np.testing.assert_array_equal(runs[3][1], runs[2][1])


def test_kernel_status_does_not_build_a_bernoulli_network():
    a = nest.Create("eprop_iaf", 20)
    nest.Connect(a, a, {"rule": "pairwise_bernoulli", "p": 0.3}, {"synapse_model": "eprop_synapse"})
    st = nest.GetKernelStatus()
    assert "num_connections" not in st and nest.kernel()._sim is None
    assert nest.resolution == 1.0 and nest.kernel()._sim is None
    b = nest.Create("eprop_iaf", 2)                  # still possible: nothing was built
    nest.Connect(b, a[:2], "one_to_one", {"synapse_model": "eprop_synapse"})
    n = nest.GetKernelStatus("num_connections")      # builds this rank's share to count
    assert n == len(nest.GetConnections()) and 2 + 0.15 * 400 < n < 2 + 0.45 * 400
